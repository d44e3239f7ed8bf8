// Package gateway is Sluice's request path: the fasthttp front server, the
// compiled routing Table that a reload swaps atomically, the proxy step, the
// admin listener, Prometheus metrics and the access log.
//
// A request goes through one readable pipeline (Server.handle), each step
// one function given the pooled per-request state (request.go): check
// (refuse what is unsafe — framing, Host, path: package httpsafe — and
// identify the client), route (package route: most specific rule wins),
// limit (the route's rate limits, package ratelimit, keyed on the client),
// fromCache (GET/HEAD of a cache-enabled route through package cache: L1,
// L2, then one coalesced fill whose upstream exchange is the same as
// below), then rewrite the request once in place (hop-by-hop headers out,
// X-Forwarded-* and Via in, strip_prefix), exchange with a backend (one
// retry where safe; every outcome reported to the backend), invalidate what
// a successful unsafe request made stale, and respond (the response's
// hop-by-hop headers out, the request id in). The backend's response is
// read straight into the client's response: there is no copy; a cache hit
// hands the stored body to fasthttp without one either.
//
// Large and open-ended bodies stream (README "Streaming"): a request body
// over server.buffer_request goes to the backend as it arrives (reqbody.go,
// the takeBody step, right after check), and a response body over the
// pool's buffer_response, or of unknown length, is left unread by
// balancer.Backend.Do and carried to the client by a responseStream after
// the handler returns (stream.go); the request's state, its metrics and its
// access-log line then wait for the stream to end. Small bodies keep the
// buffered path; a buffered response pays one nil test for streaming.
//
// A route that lists protocols in upgrade answers their handshakes before
// the cache step (upgrade.go): the handshake goes to a backend on a
// connection of its own (handshake.go), and only a checked 101 turns both
// connections into a tunnel that copies bytes until either side closes or
// a timeout or the drain ends it (tunnel.go, tunnelset.go). Routes without
// upgrade pay one nil test for it.
//
// The Table is immutable. A reload compiles a new one, handing over the
// balancer.Backend of every unchanged address (its pooled connections, health
// and counters), and swaps a pointer; requests already running finish on the
// table they started with. A configuration that fails to load or validate
// changes nothing. Runtime changes to the pools (backends added, drained or
// removed through the admin API, the addresses DNS names resolve to) are
// an overlay applied to the file's pools at every build (dynamic.go), so
// each is a rebuild like a reload, and a reload keeps them. Names are
// resolved by one background goroutine (dns.go), never per request.
//
// Shutdown is built for rolling deploys (shutdown.go): /readyz fails and
// responses carry Connection: close while serving goes on for
// server.shutdown_delay; then the listener closes, each connection closes
// after its next answer, and the idle ones left are closed only once the
// clients still sending have moved off, since closing an idle keep-alive
// connection a client is writing on loses that request.
//
// What the hot path avoids, and why: per-request buffers come from a
// sync.Pool (a per-P cache, no shared lock); metric children are resolved
// when a Table is built, never with WithLabelValues per request; backend
// counters are atomics on the Backend read by a Prometheus collector at
// scrape time; the access log hands encoded lines to a writer goroutine and
// drops (and counts) lines rather than wait. A proxied GET allocates nothing
// in this package (TestProxiedRequestDoesNotAllocate), nor does a cache hit
// (TestCacheHitDoesNotAllocate) or a rate-limited request
// (limit_alloc_test.go).
package gateway
