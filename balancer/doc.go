// Package balancer sends requests to the backends of a pool: it chooses a
// backend (Pool, Policy), exchanges the request with it over pooled
// connections (Backend), and keeps track of which backends are up (Checker).
//
// # A request's path
//
// The gateway calls Pool.Acquire, then Backend.Do with the route's deadline,
// then Pool.Release with the outcome. Acquire asks the policy (a pass over
// an immutable slice, with atomics for state, or one per-pool mutex for
// weighted_round_robin) for an available backend and reserves a place on it
// (in flight +1); Do runs the exchange and classifies a failure as
// ErrConnect (nothing sent, any method may be retried elsewhere), ErrTimeout
// (504) or a bad response (502); Release gives the place back and feeds the
// outcome to the latency average and outlier detection. None of them locks
// or allocates below the circuit breaker's caps once connections are warm.
// Backend.Do retries in one case only: an idempotent request whose reused
// connection the backend closed before answering (the keep-alive race of RFC
// 9112 §9.3.1) is sent once more on a new connection. Every other retry is
// the gateway's: only it knows the method, and it keeps a RetryBudget per
// route so that retries stay a bounded share of the traffic; Acquire with
// the failed backend as not chooses another.
//
// # Overload
//
// circuit_breaker caps the requests in flight per backend and per pool. A
// backend at its cap is not Available, so policies pass over it; when no
// healthy backend has room, the request waits in a bounded FIFO queue for a
// Release, up to queue_timeout and its deadline, and is refused with
// ErrOverloaded rather than piling onto a backend that is already slow. The
// fast path reads one atomic to see that nobody waits; only waiting, and
// releasing while others wait, take the pool's lock.
//
// # Why a transport of our own
//
// A response must only ever be delivered to the request that caused it (RFC
// 9112 §9.3). fasthttp's default transport pools a connection after a
// response even if the backend sent more bytes than that response, and it
// never looks at a pooled connection before reusing it; so a backend that
// writes a stray response on an idle keep-alive connection (a bug, a
// late answer to a timed-out request, a proxy in between misbehaving) gets
// it read as the answer to the next client's request. That is a data leak
// between users, so Backend uses its own fasthttp.RoundTripper, built on
// HostClient's exported connection pool: a connection whose reader still
// holds bytes after a response is closed, and before a pooled connection is
// reused one non-blocking recvfrom(MSG_PEEK|MSG_DONTWAIT) checks that the
// backend has sent nothing and has not closed it. A dirty or closed
// connection is replaced, never failed, and counted (BackendStats.StrayBytes).
// The peek costs one system call per reused connection: 2-4 µs on the
// shared 2-core test VM, where a whole loopback exchange costs 35-100 µs, so
// under 10% (BenchmarkConnCheck, BenchmarkBackendDo). It cannot close the
// window in which stray bytes arrive after the peek, only the much wider one
// of the idle time. The peek also turns the common keep-alive race (the backend
// closed an idle connection) into a fresh dial instead of an error.
//
// # Health
//
// A new Backend starts healthy: with checks disabled it must be usable, and
// with checks enabled the alternative would be a pool that answers 503 for
// the first Rise intervals after every start. Passive failures (connect
// errors) are the gateway's to act on at once, by retrying elsewhere. The
// Checker sees a backend only through Target, probes it with a client of its
// own (never queued behind traffic), and changes its verdict only after
// Rise passes or Fall failures in a row.
//
// Passive outlier detection watches real traffic instead: a backend whose
// exchanges fail consecutive_failures times in a row (5xx, connect failure,
// timeout) is ejected for a period that grows with each ejection and is
// forgiven while it behaves, with never more than max_ejection_percent of
// the pool out at once; a timer lets it back. Each source owns its own bit
// of the backend's state, so passing probes do not end an ejection and the
// end of an ejection does not bring back a backend whose probes fail.
//
// # Reloads
//
// A reload builds a new Pool with the previous one as prev: every address
// it keeps, with unchanged connection settings, keeps its *Backend, so warm
// connections, health and counters carry over and a backend that was down
// is not sent traffic because the file changed. The old Pool's Retire then
// closes only the backends nobody uses any more; a request still running on
// one finishes normally and its connection is closed rather than pooled.
// An ejection lives in its Backend and the new pool takes over its timer;
// the pool-wide in-flight count and the breaker's counters are shared by the
// old and new pool, so the cap holds while requests of both run.
package balancer
