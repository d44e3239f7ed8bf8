// Package cache is the gateway's HTTP cache: a shared cache in the sense of
// RFC 9111, in two tiers — ristretto in process (L1, Local) and Redis shared
// by every instance (L2, Redis) — with concurrent misses of a key merged
// into one fetch, on one instance and across the cluster (Tiered). It knows
// HTTP only as plain values (Request, Response, Field, CacheControl) and
// never imports fasthttp: the gateway translates.
//
// # How the gateway calls it
//
// Once per route, when the table is built: NewPolicy(route.Cache, opts).
// Once per process: NewLocal, NewRedis on the shared client (omit it to run
// on L1 alone), NewTiered. Close in the reverse order.
//
// A GET or HEAD on a cache-enabled route (requests with If-Match,
// If-Unmodified-Since or If-Range bypass the cache: it must not evaluate
// those; a GET's Range is answered from a stored 200 by the caller, with
// ParseRange):
//
//	s.creq = cache.Request{Method, Scheme, Host, Path, Query, Fields: s,
//		Policy: route.Cache, CacheControl: cache.ParseCacheControl(cc),
//		Authorization: hasAuth, IfNoneMatch: inm, IfModifiedSince: ims}
//	s.key = cache.AppendKey(s.key[:0], &s.creq)
//	res := tiered.Get(&s.creq, s.key, s) // s implements Filler
//	switch {
//	case res.OnlyIfCached: reply 504
//	case res.Entry == nil: send what s.Fill left in the response (not stored)
//	case res.NotModified:  304 with res.Entry's NotModifiedField fields
//	default:               res.Entry: Status, Header, Body; Age from res.Age
//	}
//	if res.Refresh { go tiered.Refresh(copyOfReq, copyOfKey, detachedFiller) }
//
// Get does every step: L1; on a miss or an unusable entry, L2 (a hit fills
// L1); then the fill — Filler.Fill(stale) is called with nil for a plain
// fetch or with the stored entry to revalidate (send its Validators, not
// the client's conditionals), in the request's own goroutine. Tiered decides
// storability (Storable), builds the Entry, applies a 304 to the stored
// entry (RFC 9111 §4.3.4), serves stale under stale-if-error (the
// response's, the request's or the route's, Policy.StaleIfError) when the
// origin fails, stores in L1 at once and in L2 through the write queue, and
// evaluates the client's own If-None-Match/If-Modified-Since. Result says
// which tier answered (Tier), why the origin was asked (Fwd, RFC 9211's
// fwd), what it said (FwdStatus), whether the response was Stored and if
// not why (NotStored), whether the request waited on another's fill
// (Collapsed), and the Age and TTL, which is all a Cache-Status needs:
// "sluice; hit; detail=l1", "sluice; fwd=miss; stored; detail=origin",
// "sluice; fwd=stale; fwd-status=304; stored".
//
// The Filler fills Response from the upstream answer: Status (0 when there
// was none), the end-to-end Header fields, Body, or Streamed when the body
// was too large (Content-Length over Policy.MaxEntry) or of unknown length
// and was not buffered. The cache copies what it keeps before Get returns.
//
// After a successful unsafe request (POST, PUT, PATCH, DELETE, …):
//
//	for _, target := range cache.Invalidated(method, status, host, target, location, contentLocation) {
//		if target != nil { tiered.Invalidate(host, normalised(target)) }
//	}
//
// Invalidate empties L1 before it returns and queues the L2 deletion and
// the broadcast. Admin purges are PurgeURL, PurgePrefix and PurgeTag, which
// are synchronous and return Purged counts (see Purged for what they mean).
// Stats returns the counters for the metrics collector.
//
// # Keys
//
// AppendKey writes the method class (GET and HEAD share entries), scheme,
// host, path, query and the route's key parts, each length-prefixed, into
// a caller's buffer: two different requests cannot produce the same key,
// whatever bytes they carry (FuzzAppendKey). A response with Vary is stored
// under a secondary key: the primary key, then each Vary field name with
// the request's value (lines combined, list members trimmed); the primary
// key holds a small Vary index entry naming the fields. L1 and Redis address
// entries by the 64-bit xxhash of the key, but every entry carries its full
// key and every lookup compares it, so a hash collision is a miss, never
// another request's response.
//
// # The tiers
//
// L1 is a ristretto cache whose cost is Entry.Size: the entry's bytes as
// allocated plus a fixed overhead that stands for the Entry struct and
// ristretto's and the URL index's per-entry bookkeeping. Hits do not
// allocate (alloc_test.go). L1 keeps an index from URL to keys so that
// invalidating a URL, which unsafe requests do constantly, costs no scan;
// prefix and tag purges, which are rare, scan L1.
//
// L2 keeps an entry in "sluice:c:{<hash>}" as a compact versioned binary
// value (codec.go; a corrupt or truncated value is a counted miss,
// FuzzDecodeEntry). Every key has a TTL: what is left of the freshness
// lifetime plus the longest stale-* window, or Options.KeepStale when the
// entry can be revalidated. Reads on the request path run under
// RedisTimeout (20ms) — bounded by a timer even when the client ignores
// context deadlines — and under a breaker that stops asking a failing Redis
// for BreakerCooldown. Writes go through a bounded queue to writer
// goroutines that pipeline them; a full queue drops, and counts. So Redis
// being slow, paused, killed or restarted costs a request at most a few
// timeouts and never an error (TestRedisFailingDuringTrafficFailsNoRequest).
// The gateway should still build the client with ContextTimeoutEnabled and
// without retries so that abandoned calls stop early.
//
// # Coalescing and the cluster-wide lease
//
// Concurrent misses of a key on one instance make one Filler call; the
// others wait (at most LockTimeout) and get the leader's entry only if it
// was stored and, for a Vary response, if their own values of the Vary
// fields select it. Otherwise each fetches for itself: a private or
// Set-Cookie response is never handed to another request. Before filling,
// the leader takes "sluice:lease:{<hash>}" with SET NX PX. An instance that
// finds the lease taken polls L2 (entry and lease in one round trip, one
// Cluster slot thanks to the hash tag) every LeasePoll for at most half
// the lock timeout, and takes the other instance's result when it appears;
// if the lease goes without a result, or Redis fails, it fills itself. The
// holder queues the release behind its L2 write, so pollers see the entry
// before the lease goes. 200 concurrent misses on two instances make one
// origin request (TestConcurrentMissesFillOnce).
//
// # Purges and their indexes in Redis
//
// Purges reach other instances on the pub/sub channel Options.PurgeChannel;
// each applies them to its L1. A purge published while an instance was
// disconnected would be lost to it, so an instance clears its L1 whenever
// its subscription is re-established. Redis holds three kinds of index,
// each a sorted set scored by expiry, trimmed on every write and expiring
// with its last member: "sluice:url:{<url hash>}" (the entry keys of a URL,
// for PurgeURL and invalidations), "sluice:host:{<host hash>}" (the paths of
// a host, for PurgePrefix, which ZSCANs it: its cost grows with the URLs
// cached for the host, and a very busy host's index is one hot key of one
// Cluster slot) and "sluice:tag:{<tag>}" (Surrogate-Key tags). Updating them
// costs a few commands in the write pipeline per stored entry. A purge that
// could not reach Redis returns an error: L2 and the other instances may
// still hold what it named.
//
// # Rules and policies
//
// The rules are pure functions over parsed values (Storable, Lifetime,
// InitialAge, CurrentAge, Usable, StaleIfError, NotModified, Selects304,
// UpdateHeader, Invalidated), tested table by table with the RFC section
// in each test's name. Where the RFCs leave a choice:
//
//   - Never stored: responses with Set-Cookie (one user's session must not
//     reach another; the origin can send the cookie on an uncached route),
//     responses to anything but GET, a 206 other than one range of a
//     known length (such a part answers only ranges inside it, while
//     fresh; parts are never combined, and ranges are cut from whole
//     responses too), Vary: *,
//     private or no-store, Authorization without public, s-maxage or
//     must-revalidate (§3.5), and responses stale at once with no validator
//     and no stale-* window (they could never be served).
//   - Heuristic freshness (§4.2.2) for status codes cacheable by default
//     and public responses: the route's default_ttl when set, else a tenth
//     of the time since Last-Modified, capped by heuristic_max (1h by
//     default; 0: off).
//   - Repeated directives resolve to the most restrictive value; invalid
//     delta-seconds count as 0 (stale), overflow as 2^31; an invalid Expires
//     has expired; an Age that is not one non-negative integer (a list, a
//     second line, a sign, a fraction, a parameter) makes the response
//     stale: §5.1 allows taking a list's first member or ignoring an invalid
//     value, both of which can make a response look younger than it is.
//   - Qualified no-cache and private act as their unqualified forms.
//   - s-maxage implies proxy-revalidate (no max-stale), but an explicit
//     stale-while-revalidate or stale-if-error from the origin still
//     applies; must-revalidate and proxy-revalidate forbid both.
//   - A 304 without any validator updates the entry it revalidated (many
//     origins omit them); one with a different validator does not, and the
//     fill is repeated unconditionally.
//   - When the origin answers a revalidation with a response that may not be
//     stored, the old entry is dropped.
//
// # Measured (2-core VM, Go 1.26, shared with other work)
//
// Zero allocations for ParseCacheControl, ParseMeta, AppendKey, Local.Get
// and Tiered.Get on an L1 hit, with or without Vary and If-None-Match.
// Parallel throughput, both cores: Local.Get 74 ns/op, Tiered.Get L1 hit
// with its AppendKey 150 ns/op (300 ns/op through Vary), ParseCacheControl
// 140 ns, AppendKey 64 ns; an L2 hit (Redis.Get, loopback redis-server) 50
// µs and 20 allocations. Memory (BenchmarkLocalMemory1M): 1,000,000 distinct
// keys offered to an L1 bounded to 64 MiB leave a live heap of 59.0 MiB
// with 128-byte bodies, 59.3 MiB with 512-byte bodies and 64.8 MiB with
// 4 KiB bodies, so the live heap stays within Memory plus about 1 MiB
// (ristretto's counters and buffers); TestL1HeapStaysWithinMemory checks
// that bound at 8 MiB. The process's RSS is larger by what the Go collector
// lets garbage grow to (GOGC=100 allows up to twice the live heap between
// collections): set GOMEMLIMIT to about 1.3 × Memory plus the rest of the
// process to keep it close. Measured on the whole gateway with
// bench/cache_rss.sh (1,000,000 distinct 300-byte responses through a route
// with cache.memory 64 MiB, about 620,000 evicted for size, the L1 at 64.0
// MiB): peak RSS 168 MiB without GOMEMLIMIT (18 MiB before the load), and
// 104 MiB with GOMEMLIMIT=96MiB, that is Memory plus 40 MiB.
package cache
