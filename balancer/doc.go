// Package balancer sends requests to the backends of a pool: it chooses a
// backend (Pool, Policy), exchanges the request with it over pooled
// connections (Backend), and keeps track of which backends are up (Checker).
//
// # A request's path
//
// The gateway calls Pool.Pick, then Backend.Do with the route's deadline.
// Pick is a policy's pass over an immutable slice, with atomics for state
// (round_robin, least_conn) or one per-pool mutex (weighted_round_robin);
// Do counts the request in flight, runs it, and classifies a failure as
// ErrConnect (nothing sent, any method may be retried elsewhere), ErrTimeout
// (504) or a bad response (502). Neither allocates once connections are
// warm. Backend.Do retries in one case only: an idempotent request whose
// reused connection the backend closed before answering (the keep-alive race
// of RFC 9112 §9.3.1) is sent once more on a new connection. Every other
// retry is the gateway's: only it knows the retry budget, and it has
// PickExcept to choose another backend.
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
// # Pipelining
//
// With upstream.pipeline on, Backend.Do sends GET, HEAD and OPTIONS requests
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
// # Reloads
//
// A reload builds a new Pool with the previous one as prev: every address
// it keeps, with unchanged connection settings, keeps its *Backend, so warm
// connections, health and counters carry over and a backend that was down
// is not sent traffic because the file changed. The old Pool's Retire then
// closes only the backends nobody uses any more; a request still running on
// one finishes normally and its connection is closed rather than pooled.
package balancer
