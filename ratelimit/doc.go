// Package ratelimit decides whether a client's request may pass a named
// limit: Local enforces it on one instance, Global across every instance
// sharing one Redis, without a Redis round trip on the request path. It
// knows nothing about HTTP: the gateway builds the client's key (peer
// address, header value, …) and writes the headers from a Decision.
//
// # How the gateway uses it
//
// At start-up and on every reload, one limiter per configured limit:
//
//	l, err := ratelimit.New(opts, rdb, prev) // prev: the limiter of that name before, or nil
//	policy := ratelimit.AppendPolicy(nil, opts.Name, l.Policy()) // once, for RateLimit-Policy
//
// Per request, for each limit of the route in order (a request must pass
// all; a token taken by an earlier limit is not given back when a later
// one refuses):
//
//	d := l.Allow(key)
//	if !d.Allowed {
//		// 429 with Retry-After: AppendRetryAfter(buf, d),
//		// RateLimit-Policy: the member precomputed above,
//		// RateLimit: AppendRateLimit(buf, name, d)
//	}
//
// An allowed response carries RateLimit-Policy and RateLimit too when the
// route asks for them. Several limits join their members with ", ".
//
// After swapping the routing table, Close every limiter of the old table
// (Close does nothing for one whose state a new limiter took over). Stats
// feeds the metrics; State(key) answers GET /admin/ratelimits/{limit}?key=….
//
// Allow is safe for concurrent use, does not keep key, never blocks on the
// network and allocates nothing once the client is known: under 200ns on
// the 2-core test machine for a local and a global limit
// (BenchmarkLocalAllow, BenchmarkGlobalAllow; TestAllowDoesNotAllocate).
// A limit's clients are split into 256 shards by a seeded hash of the key,
// each with its own mutex and map, so requests of different clients rarely
// meet on a lock and none is shared by all requests.
//
// # Local limits: a token bucket per client
//
// Each client has a golang.org/x/time/rate bucket of Burst tokens refilled
// at the rate; a request takes one token or is refused. A bucket unused for
// the time it needs to refill completely (Burst / rate) is full, the state
// of a client never seen, so it is forgotten: a new client's insert looks at
// 8 buckets of its shard (Go's map iteration starts at a random place) and
// evicts the idle ones. That keeps the limit to about the clients seen in
// the last refill time, with no background goroutine; eviction work is
// paid by new clients only. MaxKeys bounds the rest: a full shard also
// evicts the fullest of the sampled buckets, whose client may get back at
// most the tokens it had used, never more than one burst. At most
// BytesPerKey (224) bytes per key, so the default MaxKeys of 1,000,000
// bounds a local limit at 224 MB; TestMemoryOfAMillionClients sends
// 1,000,000 distinct clients within a minute and measures about 170 bytes
// per key (Go maps do not shrink: the memory of a past peak stays
// reserved, within the bound).
//
// # Global limits: leases from a cluster-wide token bucket
//
// A global limit is one token bucket per client, in Redis, shared by every
// instance: the hash sluice:rl:{<limit>:<client>} holds its level and the
// time of that level, and expires when the bucket would be full again (a
// missing key is a full bucket, so the TTL loses nothing). Instances never
// ask Redis on the request path. Each holds, per client, a lease of tokens
// taken from the cluster bucket and admits from it locally. A sync loop per
// limit renews the leases with one Lua script per client in a pipeline:
//
//   - every SyncInterval (100ms) for each client used since the last round,
//     and at once (an early sync, at most every SyncInterval/4) for a client
//     whose lease ran out;
//   - the script refills the bucket for the time passed, adds back returned
//     tokens, subtracts reported debt, and leases whole tokens: about two
//     intervals of the client's recent demand on this instance (refused
//     requests count, so a client held back asks for more), never more than
//     the bucket holds. Leased tokens are gone from the bucket, so leases
//     alone can never admit more than the bucket grants;
//   - a client idle for an interval gives its lease back, so tokens held by
//     an instance it left return to the others.
//
// Leases need one sync, which a request must not wait for. So a client
// without a lease (new on this instance, or back after an idle spell) is
// admitted from this instance's share of the limit: a local token bucket
// of rate/n and ⌈Burst/n⌉, n the instances alive; and a client whose lease
// ran out may use, the same way, its 1/n part of what the cluster bucket
// has refilled since the last sync. Such admissions are reported at the
// next sync as debt: the cluster bucket goes below zero and leases nothing
// until the refill has paid it. Fewer requests are refused while a lease is
// renewed, and the share bounds what this can cost.
//
// Bound. Let B be the burst, R the rate, n the instances, δ the largest
// clock difference between them (the script runs on the caller's clock,
// and never moves a bucket's time backwards). Over any interval of length
// τ, one client is admitted at most
//
//	B + R·τ + n·⌈B/n⌉ + R·δ
//
// times across the cluster, against B + R·τ for a single bucket: the
// worst-case overshoot is n·⌈B/n⌉ + R·δ, about one burst. (Admissions
// without a lease come only from the shares, at most n·⌈B/n⌉ + R·τ over τ,
// and are all charged to the bucket as debt, which the refill pays back;
// so the bucket is never more than n·⌈B/n⌉ in debt.) With the issue's
// example of 100/s and a burst of 100 on 3 instances, 10s admit at most
// 1,100 + 102: +9%. The worst case needs every instance to meet the client
// fresh when the bucket is empty; TestGlobalAccuracy (3 instances, traffic
// at 3× the limit for 3s with a burst that weighs as much as in 10s)
// measures within ±1% of B + R·τ, with the traffic spread evenly or all on
// one instance. Unused leases make the error negative: at most one lease
// per instance when traffic stops.
//
// Cost: each client active on an instance costs Redis one script call per
// SyncInterval, plus up to four early ones while its lease keeps running
// out. That suits limits keyed by API key or tenant; a per-IP limit over
// millions of addresses belongs in local scope. A global client costs this
// instance about 170 bytes, plus a share bucket while it has no lease.
//
// # Instances and degraded mode
//
// Each round also heartbeats: the instance's id is added to the ZSET
// sluice:rl:instances:{<limit>} with its time, members older than
// 10×SyncInterval (at least 1s) are dropped, and the count is n. The ZSET
// expires too. n is 1 until the first heartbeat answers.
//
// A round that fails, or one of whose pipelines (512 clients each) takes
// longer than SyncTimeout, puts the limit in degraded mode: every request
// is decided by the share alone (rate/n, ⌈B/n⌉ with the last n seen), or
// refused with FailClosed. A pipeline runs apart from the loop and is
// given up on at SyncTimeout, whatever the client's own timeouts, so a
// stopped or frozen Redis (SIGSTOP) is noticed in SyncTimeout. While degraded, each round only heartbeats; three
// successes in a row end it, so a flapping Redis does not flip the mode at
// every round. Leases from before are then void, and clients start again
// from the share until their first sync. Admissions while degraded are not
// reported: Redis may have lost or kept the buckets, and charging a long
// outage's traffic at once would refuse clients for as long. The cluster
// admits at most the sum of the shares while degraded, B + R·τ when n is
// right, plus up to one burst on each transition. Each transition is logged
// once (Warn entering, Info leaving, to Options.Logger) and Stats.Degraded
// is the metric.
//
// # Reloads
//
// New with prev of the same name and scope takes prev's state over: the
// clients' buckets (and for a global limit, their leases, the instance id
// and the degraded mode; prev's sync loop stops and the new one starts). A
// changed rate or burst applies at once, to every bucket, without refilling
// any: a smaller burst caps the tokens, a larger one grants nothing until
// the refill. In Redis the next script call carries the new values.
//
// # Headers
//
// The helpers write draft-ietf-httpapi-ratelimit-headers (-09/-10) members.
// A token bucket is described by the quota it allows at once and the time
// to refill it: RateLimit-Policy: "<name>";q=<Burst>;w=<Burst/rate in
// seconds, rounded up>, so "100/s" with a burst of 200 is q=200;w=2 and
// "6000/m" with the default burst is q=6000;w=60. RateLimit:
// "<name>";r=<Remaining>;t=<seconds until full again>. Retry-After is the
// time until one request passes, rounded up, at least 1.
package ratelimit
