// Package balancer sends requests to the backends of a pool: it chooses a
// backend (Pool, Policy), exchanges the request with it over pooled
// connections (Backend), and keeps track of which backends are up (Checker).
//
// # A request's path
//
// The gateway calls Pool.Acquire, then Backend.Do with the route's deadline,
// then Pool.Release with the outcome. Acquire asks the policy (a pass over
// an immutable slice with atomics for its state, never a lock) for an
// Available backend and reserves a place on it (in flight +1); Do runs the
// exchange and classifies a failure as
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
// # Policies
//
// round_robin and least_conn keep one atomic counter. weighted_round_robin
// computes nginx's smooth interleaving for one cycle ahead and walks it with
// one counter, so its cost does not grow with the pool. p2c_ewma compares two
// random backends by (in flight + 1) × latency EWMA: it sends less to a
// backend that slows down (one ten times slower gets about 0.1% of the traffic
// in TestP2CEWMA, least_conn about 4%, round_robin 25%), and drawing two rather than
// taking the best avoids every gateway instance piling onto the same one.
// consistent_hash places a key (hash_key) on a ring of xxhash points, with
// Mirrokni's bounded loads so a hot key spills to the next backend instead
// of overloading its own; xxhash, not hash/maphash, because every instance
// must place a key alike. JumpHash over HashKey does the same for the
// gateway's shard maps, where the buckets are pools.
//
// Random draws come from a wyrand over one atomic counter per policy, not
// math/rand's locked global source; the time (slow start) and the draws are
// injectable, so the policies are tested as pure functions over a slice of
// backends, with no network.
//
// Slow start (slow_start) ramps a backend that comes back from being out
// (the moment its down bits clear, Backend.setDown) from a tenth to its full
// share: p2c_ewma divides by the ramp factor in its cost, consistent_hash
// lets it take the part of its keys whose hash falls below the factor (the
// same keys on every instance), and the others pass a part of its turns on
// at random. A backend that is up when the gateway starts gets no ramp.
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
// between users, so Backend uses its own transport, built on HostClient's
// exported connection pool (Backend.DoAt calls it directly, not through
// HostClient.Do, whose clock reads cost more than the transport's logic;
// the health checker goes through HostClient): a connection whose reader still
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
// # Streaming
//
// With resp.StreamBody set, Backend.Do reads the head, and a body larger
// than buffer_response or of unknown length is left as a Stream
// (stream.go) that owns the connection until it is ended: it re-checks the
// framing as it reads (Content-Length, chunked coding, max_response_body),
// extends the read deadline by stream_timeout per piece, hands a body with
// a length to a writer's ReadFrom straight from the socket (splice), and
// gives the connection back to the pool only when the body ended exactly
// where its framing said. A stream that is not read to its end closes its
// connection. A streamed request body is never resent on a stale
// connection, since it is consumed as it is written.
//
// # Pipelining
//
// With upstream.pipeline on, Backend.Do sends GET and OPTIONS requests
// without a body through a HostClient of its own whose transport is the
// pipeline (pipeline.go): fasthttp prepares requests exactly as on the
// ordinary path, and whatever is not pipelined is handed to the ordinary
// transport. Each pipelined connection has a writer goroutine, which writes
// queued requests in batches (pipeline_writer.go), and a reader goroutine,
// which reads responses in order (pipeline_reader.go); pipeline_conn.go
// holds what they share and settles every request of a connection that
// ends. Callers render their request into a pooled work item first
// (pipeline_work.go), so neither goroutine touches a caller's Request, and a
// caller whose deadline passes leaves its work item behind. It is our own
// code rather than fasthttp's PipelineClient because that one fails every
// pending request when a connection breaks, where a request that had
// received no byte of response must be replayed (once, alone on a new
// connection), and it has no per-connection depth or head-of-line
// protection. Bytes are attributed by position; the bytes after a response
// must begin the next one before it is delivered, which catches a wrong
// Content-Length, and a body delimited by the connection's end must have no
// request written after it. A backend that closes pipelined connections
// early or answers out of framing has pipelining turned off.
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
