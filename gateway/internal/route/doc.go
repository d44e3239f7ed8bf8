// Package route is the gateway's route matcher: a list of [Rule]s compiled
// once into an immutable [Table] that answers "which route serves this
// request?" without allocating. It knows nothing of routes' upstreams,
// caches or limits: [Table.Match] returns the index of the winning rule and
// the caller keeps its per-route data in a slice with the same order. A
// reload compiles a new Table and swaps it atomically; a Table is safe for
// concurrent use and never changes.
//
// # What a rule matches
//
// Host "" matches any host, "api.example.com" that host, and
// "*.example.com" any host with at least one more label ("a.example.com",
// "a.b.example.com") but not "example.com". Rule hosts are lower-cased at
// Compile; the request host must arrive lower-cased, without port and
// without trailing dot (the caller strips "example.com." to "example.com":
// the table does not, so a trailing dot never matches).
//
// PathPrefix matches whole segments: "/api/orders" matches "/api/orders"
// and "/api/orders/..." but not "/api/ordersX"; a prefix ending in "/"
// matches everything under it but not the path without the slash; "/"
// matches every path. Path matches one path exactly. A rule with neither
// acts as PathPrefix "/". The request path must already be normalised
// (decoded, no "//", no dot segments), which is why Compile refuses rule
// paths that a normalised path could never equal.
//
// Methods are exact, case-sensitive tokens; none means any method. Header
// conditions compare the request's first value of the header byte for byte
// (names case-insensitively); an absent header, or nil [Headers], fails them.
//
// # Validation
//
// This package is the one place route rules are validated: the gateway
// compiles them when it starts, when it reloads, and when `sluice validate`
// checks a file (gateway.Check), so the three cannot disagree. Compile
// refuses a rule that could never match a request as the gateway hands it
// over (a path that normalisation would change, a host with a port, a
// method no client sends, an empty header value) and reports every problem
// as an [*Error] naming the rule and the key. What is legal but suspect (a
// method missing from the IANA registry, such as "GETT") is not an error:
// [Table.Warnings] lists it for the caller to print or log.
//
// # The most specific match wins
//
// Among the rules matching a request, the winner is decided by these
// criteria in order, each consulted only when the previous ones tie:
//
//  1. host: exact > wildcard (the longer suffix wins: "*.b.example.com"
//     beats "*.example.com") > any host;
//  2. path: exact path > path prefix, and a longer prefix beats a shorter;
//  3. a rule with methods beats one without;
//  4. more header conditions beat fewer;
//  5. the rule earlier in the file wins.
//
// So the host always dominates: "api.example.com" with prefix "/" beats
// a host-less rule for the exact path "/api/orders".
//
// # How it is fast
//
// Compile sorts rules into buckets by host: one per exact host, one per
// wildcard suffix, one for every other host. Each bucket holds every rule
// that can match a host of that class (an exact host's bucket also holds the
// wildcards covering it and the host-less rules), sorted most specific first.
// Match picks the bucket with one map lookup (m[string(b)] does not
// allocate), or, for wildcards, one lookup per dot of the host from the left
// (the first hit is the longest suffix), then scans the bucket and returns
// the first rule whose path, method and headers match. Because of the sort,
// the first match is the winner. Buckets duplicate the host-less and
// wildcard rules, which costs memory proportional to hosts × rules; that is
// small for the hundreds of routes a gateway holds.
//
// The scan is linear: with 200 rules in one bucket a miss costs about
// 300–450 ns on a 2-core machine, a hit near the front tens of ns (see
// table_bench_test.go). A path trie would only pay off at thousands of
// routes.
//
// # 404 or 405
//
// [Table.MatchOrAllowed] tells a missing path from a refused method: when no
// rule matches it appends to the caller's buffer the methods of every rule
// matching the request in all but its method (host, path and headers), as
// an Allow value "GET, POST". A grown buffer means 405 with that Allow
// header; an unchanged one means 404. Methods are listed as written: a rule
// for GET does not imply HEAD here.
package route
