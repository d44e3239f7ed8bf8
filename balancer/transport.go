package balancer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/sluice-gw/sluice/internal/rawio"
)

// readBufferSize is the size of the buffered reader a response is parsed
// from. fasthttp needs the whole status line and header block in that buffer,
// so this is what lets a backend send up to 16 KiB of response headers, with
// room for the status line.
const readBufferSize = 16<<10 + 1<<10

// clientSettings are the parts of Options that fasthttp's HostClient reads
// without synchronisation. A backend is reused across a reload only when they
// are unchanged; the rest (connect timeout, connection limit, the pool
// timeout, which only bounds each request's deadline) is applied to a reused
// backend in place, so its pooled connections survive.
type clientSettings struct {
	maxIdle  time.Duration
	maxBody  int64
	pipeline PipelineOptions // a change builds a new Backend (and pipeline)
	// Read by the transport (stream.go).
	bufferResponse int64
	streamTimeout  time.Duration
}

func settingsOf(o Options) clientSettings {
	return clientSettings{maxIdle: o.MaxIdleConnDuration, maxBody: o.MaxResponseBody, pipeline: o.Upstream.Pipeline,
		bufferResponse: o.BufferResponse, streamTimeout: o.StreamTimeout}
}

// maxConnWait bounds the wait for a free connection when a request has no
// deadline; with one (the gateway always sets it) AcquireConn waits for the
// time the request has left.
const maxConnWait = time.Minute

// newHostClient builds the fasthttp client of one backend, with tr as its
// transport. It never retries on its own: the gateway decides retries, and
// only it knows whether the request may be sent twice (the one exception is
// errStaleConn, below). connectTimeout is read at each dial, so a reload can
// change it.
func newHostClient(addr string, s clientSettings, maxConns int, connectTimeout *atomic.Int64, tr *transport) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:      addr,
		Transport: tr,
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			return dial(addr, time.Duration(connectTimeout.Load()), timeout)
		},
		MaxConns:            maxConns,
		MaxConnWaitTimeout:  maxConnWait,
		MaxIdleConnDuration: s.maxIdle,
		MaxResponseBodySize: int(s.maxBody),
		ReadBufferSize:      readBufferSize,
		// LIFO keeps the few hottest connections busy and lets the rest go
		// idle and expire; it is also O(1) where FIFO shifts the slice.
		ConnPoolStrategy:              fasthttp.LIFO,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		SecureErrorLogMessage:         true,
		// One more attempt, and only for errStaleConn: an idempotent
		// request whose reused connection the backend closed before
		// answering. Every other retry is the gateway's decision. Only
		// HostClient.Do reads these (the health checker, whose probes
		// close their connection, so the case cannot arise there);
		// Backend.DoAt makes the same one retry in transport.do.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(_ *fasthttp.Request, _ int, err error) (bool, bool) {
			return false, errors.Is(err, errStaleConn)
		},
	}
}

// dial connects with connectTimeout, or with the time the request has left
// when that is shorter. A failure wraps ErrConnect (nothing was sent), except
// when it was the request's own deadline that ran out: that is ErrTimeout.
func dial(addr string, connectTimeout, reqTimeout time.Duration) (net.Conn, error) {
	timeout := connectTimeout
	requestBound := reqTimeout > 0 && reqTimeout < timeout
	if requestBound {
		timeout = reqTimeout
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		var ne net.Error
		if requestBound && errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%w: connect: %w", ErrTimeout, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return newBackendConn(tcp)
}

// backendConn is an upstream TCP connection that can tell, without
// blocking, whether the backend has sent bytes nobody asked for or has
// closed it: by a peek, or by the read rawio.WriteThenRead tries before it
// writes a held request (which consumes what it finds; the connection is
// closed then). Everything the check needs is allocated once here, so the
// check itself is allocation-free.
type backendConn struct {
	*net.TCPConn             // embedded pointer: keeps ReadFrom/WriteTo (sendfile, splice)
	rawio        *rawio.Conn // Read and Write (rawio.go)
	raw          syscall.RawConn
	fd           uintptr // the socket, for checkOwned
	peekFn       func(fd uintptr) bool
	peekN        int
	peekErr      error
	requests     int // requests sent on it, this one included once ready
	buf          [1]byte
	// A request's bytes are held (held), not written, while sendOnRead is
	// set: the first Read checks the connection, writes them and waits for
	// the answer in one go (rawio.WriteThenRead). See transport.ready.
	sendOnRead bool
	held       []byte
	unsent     error // see takeUnsent
	// rd and wd are the read and write deadlines settled last; rdMoved and
	// wdMoved are set when another was set since (conndeadline.go).
	rd, wd           time.Time
	rdMoved, wdMoved atomic.Bool
}

func newBackendConn(c *net.TCPConn) (*backendConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	rio, err := rawio.New(c)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	bc := &backendConn{TCPConn: c, rawio: rio, raw: raw}
	bc.peekFn = bc.peek
	if err := raw.Control(func(fd uintptr) { bc.fd = fd }); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	return bc, nil
}

// Read and Write make their system calls raw (internal/rawio): the requests
// and responses the HostClient's buffers move are small, and the socket
// never blocks. Bodies spliced by ReadFrom and WriteTo keep the TCP
// connection's own.
func (c *backendConn) Read(p []byte) (int, error) {
	if !c.sendOnRead || len(p) == 0 {
		return c.rawio.Read(p)
	}
	c.sendOnRead = false
	n, err := c.rawio.WriteThenRead(c.held, p)
	c.dropHeld()
	if err != nil && notSent(err) {
		c.unsent = err // fasthttp reports any error on a response's first byte as io.EOF
	}
	return n, err
}

// takeUnsent returns, once, the *rawio.NotSentError the connection's last
// exchange ended with, or nil (also for a nil c: a connection not dialled
// by us).
func (c *backendConn) takeUnsent() error {
	if c == nil {
		return nil
	}
	err := c.unsent
	c.unsent = nil
	return err
}

func (c *backendConn) Write(p []byte) (int, error) {
	if c.sendOnRead {
		if len(c.held)+len(p) <= maxHeld {
			c.held = append(c.held, p...)
			return len(p), nil
		}
		if err := c.sendHeld(); err != nil {
			return 0, err
		}
	}
	return c.rawio.Write(p)
}

// maxHeld is the most of a request a connection holds back (sendOnRead):
// a larger one is sent as it is written, after a peek (sendHeld).
// keepHeld is the most it keeps allocated between requests.
const (
	maxHeld  = 64 << 10
	keepHeld = 16 << 10
)

// sendHeld writes what is held, for a request too large to hold whole:
// first the check that WriteThenRead would have made, as a peek. A
// connection that fails it gets nothing: the error is a
// *rawio.NotSentError.
func (c *backendConn) sendHeld() error {
	c.sendOnRead = false
	defer c.dropHeld()
	switch c.checkOwned() {
	case connStray:
		c.unsent = &rawio.NotSentError{Unsolicited: true}
		return c.unsent
	case connClosed:
		c.unsent = &rawio.NotSentError{Err: io.EOF}
		return c.unsent
	}
	_, err := c.rawio.Write(c.held)
	return err
}

// dropHeld empties the held bytes, keeping a modest buffer for the next
// request.
func (c *backendConn) dropHeld() {
	if cap(c.held) > keepHeld {
		c.held = nil
		return
	}
	c.held = c.held[:0]
}

// peek is recvfrom(fd, buf, 1, MSG_PEEK|MSG_DONTWAIT, NULL, NULL). It calls
// the system call directly because unix.Recvfrom makes its unused source
// address escape: one 112-byte allocation per request.
func (c *backendConn) peek(fd uintptr) bool {
	// RawSyscall: with MSG_DONTWAIT the call cannot block, so the runtime's
	// syscall bookkeeping (and a possible P hand-off) is pure cost.
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.buf[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	c.peekN, c.peekErr = int(n), nil
	if errno != 0 {
		c.peekN, c.peekErr = 0, errno
	}
	return true // never wait for readiness: this is a probe, not a read
}

// connState is what a peek found on an idle connection.
type connState int

const (
	connClean  connState = iota // nothing to read: safe to send a request
	connStray                   // the backend sent bytes while idle
	connClosed                  // closed or reset by the backend, or unusable
)

// check peeks at the socket. The read deadline must not be in the past:
// the runtime refuses to even try a read after its deadline.
func (c *backendConn) check() connState {
	c.peekN, c.peekErr = 0, nil
	if err := c.raw.Read(c.peekFn); err != nil {
		return connClosed
	}
	return c.peeked()
}

// checkOwned is check for the goroutine that holds the connection out of
// the pool for a request, when nothing else can close it: the peek is made
// on the descriptor directly, without RawConn.Read's descriptor lock and
// poller reset, which cost about as much as the call itself (a peek never
// waits, so it needs neither).
func (c *backendConn) checkOwned() connState {
	c.peek(c.fd)
	return c.peeked()
}

// peeked is what the last peek found.
func (c *backendConn) peeked() connState {
	switch {
	case c.peekErr == unix.EAGAIN: //nolint:errorlint // an Errno, compared directly
		return connClean
	case c.peekErr != nil:
		return connClosed
	case c.peekN > 0:
		return connStray
	default: // 0 bytes and no error: the backend closed its side
		return connClosed
	}
}

// transport is the fasthttp.RoundTripper of a backend. It differs from
// fasthttp's default in what it refuses to do, so that a response is only
// ever delivered to the request that caused it (RFC 9112 §9.3):
//
//   - a connection with bytes left in the reader after a response is closed,
//     not pooled (the backend sent more than one response's worth);
//   - a pooled connection is checked before a request is sent on it (ready);
//     one that has unread bytes or that the backend has closed gets nothing,
//     is closed and another taken, so the request does not fail because of
//     it;
//   - it never asks HostClient for a retry: RoundTrip makes do's.
type transport struct {
	// strayBytes counts connections closed because the backend sent bytes
	// no request asked for.
	strayBytes atomic.Uint64
	// closed is set when the backend is retired: connections still in use
	// are closed when their request ends instead of going back to the pool.
	closed atomic.Bool
	// bufferResponse and streamTimeout are the pool's buffer_response and
	// stream_timeout (stream.go), fixed for the backend's life.
	bufferResponse int64
	streamTimeout  time.Duration
}

// do is one exchange for Backend.DoAt: roundTrip, once more when the
// backend closed a reused connection before answering an idempotent request
// (errStaleConn), as HostClient.Do would with MaxIdemponentCallAttempts 2,
// and again on another connection, whatever the method, as long as the
// connection taken was found unfit before anything was sent on it
// (*rawio.NotSentError: each such turn closes an idle connection, and a new
// connection found unfit is an error instead, so the loop ends). yielded
// reports whether an attempt let the other goroutines run before it read
// (see roundTrip).
func (t *transport) do(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, now, deadline time.Time,
	interim Interim) (yielded bool, err error) {
	stream := resp.StreamBody // roundTrip clears it
	stale := false
	for {
		retry, y, err := t.roundTrip(hc, req, resp, now, deadline, interim)
		yielded = yielded || y
		switch {
		case err == nil:
			return yielded, nil
		case notSent(err):
		case retry && !stale:
			stale = true
		default:
			return yielded, err
		}
		prepareExchange(req, resp)
		resp.StreamBody = stream
		now = time.Now()
	}
}

// notSent reports whether err says that nothing of the request was sent.
// (A function of its own: the target of errors.As escapes, and would cost
// an allocation on every call of the caller.)
func notSent(err error) bool {
	var ns *rawio.NotSentError
	return errors.As(err, &ns)
}

// RoundTrip implements fasthttp.RoundTripper, for the health checker's
// HostClient: do, with the request's timeout from now as the deadline (none
// without one).
func (t *transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	now := time.Now()
	var deadline time.Time
	if timeout := req.GetTimeOut(); timeout > 0 {
		deadline = now.Add(timeout)
	}
	_, err = t.do(hc, req, resp, now, deadline, nil)
	return false, err
}

// roundTrip sends req on a pooled or new connection and reads its response,
// by deadline (zero: none); now is a recent reading of the clock, from which
// the time left is counted without another. retry reports errStaleConn.
//
// The request goes out with its response read when the connection allows
// (ready: a whole request, no body stream), and the goroutine waits for
// the answer in the poller, with no read that would fail with EAGAIN. When
// it goes out as it is written, the goroutine lets the others run
// (runtime.Gosched) before it reads, so that under load the answer has
// usually arrived: yielded.
func (t *transport) roundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, now, deadline time.Time,
	interim Interim) (retry, yielded bool, err error) {
	var timeout time.Duration // what is left: AcquireConn's wait, the connection deadline's slack
	if !deadline.IsZero() {
		if timeout = deadline.Sub(now); timeout <= 0 {
			return false, false, fasthttp.ErrTimeout
		}
	}
	sendOnRead := !req.IsBodyStream()

	// Take a connection that is safe to send on. For a request sent as it
	// is written, a pooled connection that the backend wrote to or closed
	// while idle is closed and replaced here (ready's peek); the loop ends
	// because each turn removes one idle connection, and once none is left
	// AcquireConn dials. A held request's connection is checked when it is
	// sent, and replaced by do. (The steps are inline because AcquireConn's
	// result type is unexported and cannot be named in a helper.)
	cc, err := hc.AcquireConn(timeout, req.ConnectionClose())
	for err == nil {
		ready, rerr := t.ready(cc.Conn(), deadline, timeout, sendOnRead)
		if ready {
			break
		}
		hc.CloseConn(cc)
		if rerr != nil {
			return false, false, rerr
		}
		wait, terr := timeLeft(deadline)
		if terr != nil {
			return false, false, terr
		}
		cc, err = hc.AcquireConn(wait, req.ConnectionClose())
	}
	if err != nil {
		return false, false, err
	}
	conn := cc.Conn()
	bc, _ := conn.(*backendConn) // nil: not dialled by us, never held
	// A streamed request body is consumed as it is written: such a request
	// can never be sent again, stale connection or not.
	reused := wasReused(conn) && !req.IsBodyStream()
	resp.ParseNetConn(conn)

	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		if unsent := bc.takeUnsent(); unsent != nil { // too large to hold, and the peek failed
			return false, false, t.unfit(bc.requests > 1, unsent)
		}
		retry, err = staleRetry(reused, req, err)
		return retry, false, err
	}

	skipBody := resp.SkipBody
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	// The caller's StreamBody says it can take a Stream (see Backend.Do);
	// fasthttp's own streaming is never used: the body is read below, or
	// by the Stream, which knows when the connection may be reused.
	mayStream := resp.StreamBody && t.bufferResponse > 0
	resp.StreamBody = false
	if hc.DisableHeaderNamesNormalizing {
		resp.Header.DisableNormalizing()
	}
	// Sent as it was written, the answer cannot be there yet: a read now
	// would fail with EAGAIN and park. Letting the other ready goroutines
	// run first means that under load the response has usually arrived
	// when this one reads. Measured with perf stat on a saturated
	// single-core gateway: 7.1 → 6.1 system calls and about 6% less CPU
	// per request; neutral at moderate load. Held until the read, the
	// request goes out and the goroutine parks at once instead.
	if bc == nil || !bc.sendOnRead { // not held, or no longer: too large to hold
		runtime.Gosched()
		yielded = true
	}
	br := hc.AcquireReader(conn)
	if mayStream {
		err = readHead(resp, br, interim)
		if err == nil && streams(resp, br, resp.SkipBody, t.bufferResponse) {
			resp.SkipBody = skipBody
			// Copies, so that only this branch pays for the closure: cc
			// is reassigned above and would otherwise move to the heap.
			sc, sbr := cc, br
			release := func(reuse bool) {
				hc.ReleaseReader(sbr)
				if reuse && !t.closed.Load() {
					hc.ReleaseConn(sc)
				} else {
					hc.CloseConn(sc)
				}
			}
			reuse := !req.ConnectionClose() && !resp.ConnectionClose()
			return false, yielded, t.startStream(conn, sbr, resp, int64(hc.MaxResponseBodySize), reuse, release)
		}
		if err == nil {
			err = readBody(resp, br, hc.MaxResponseBodySize)
		}
	} else {
		err = readResponse(resp, br, hc.MaxResponseBodySize, interim)
	}
	err = QuietResponseError(err)
	stray := br.Buffered() > 0
	hc.ReleaseReader(br)
	resp.SkipBody = skipBody
	if err != nil {
		hc.CloseConn(cc)
		if unsent := bc.takeUnsent(); unsent != nil { // the check found the connection unfit
			return false, yielded, t.unfit(bc.requests > 1, unsent)
		}
		if err == io.EOF { // fasthttp: closed before the first response byte
			retry, err = staleRetry(reused, req, err)
			return retry, yielded, err
		}
		return false, yielded, err
	}

	if stray {
		t.strayBytes.Add(1)
	}
	// A final status below 200 (101 Switching Protocols: fasthttp passes the
	// other 1xx by) means the backend stopped speaking HTTP/1.1 on this
	// connection; it can never carry another request.
	if stray || resp.StatusCode() < 200 || req.ConnectionClose() || resp.ConnectionClose() || t.closed.Load() {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return false, yielded, nil
}

// unfit is the error for a connection found unfit before anything was sent
// on it (unsent, a *rawio.NotSentError). On a reused connection it is
// unsent itself, and do sends the request on another. A new one is not
// replaced: the backend spoke first, or closed it at once, and would do
// the same on the next. That is a failure to connect (ErrConnect): nothing
// was sent, so the gateway may send any request to another backend.
// Unsolicited bytes are counted either way.
func (t *transport) unfit(reused bool, unsent error) error {
	var ns *rawio.NotSentError
	if !errors.As(unsent, &ns) {
		return unsent
	}
	if ns.Unsolicited {
		t.strayBytes.Add(1)
	}
	switch {
	case reused:
		return unsent
	case ns.Unsolicited:
		return fmt.Errorf("%w: %w: the backend sent bytes before any request", ErrConnect, errMalformedResponse)
	}
	return fmt.Errorf("%w: the backend closed a new connection before any request: %w", ErrConnect, ns.Err)
}

// errStaleConn marks an idempotent request whose reused connection the
// backend closed before sending a byte of response: the keep-alive race of
// RFC 9112 §9.3.1, where a backend's idle timeout closes a connection just as
// a request is sent on it. It is retried once on a new connection.
var errStaleConn = errors.New("backend closed a reused connection before answering")

// staleRetry classifies a failure to send on, or hear back from, a
// connection: on a reused connection and for an idempotent request it is
// errStaleConn (retry on a fresh connection), otherwise err as it is.
func staleRetry(reused bool, req *fasthttp.Request, err error) (bool, error) {
	if reused && Idempotent(req) {
		return true, fmt.Errorf("%w: %w", errStaleConn, err)
	}
	return false, err
}

// errMalformedResponse replaces fasthttp's error for a response it could not
// parse, which quotes the bytes it got. fasthttp leaves them out only of
// responses a HostClient marked (SecureErrorLogMessage), and Backend.DoAt
// prepares responses itself; what a backend sent can be anything (a session
// cookie, a token), and the error ends up in the log.
var errMalformedResponse = errors.New("malformed response from backend")

// QuietResponseError is the error of reading a backend's response
// (fasthttp's ReadLimitBody, or readHead and readBody) without the
// backend's bytes, for whatever reads one (the gateway's upgrade handshake
// too): the kinds the gateway and the pipeline tell apart or an operator
// wants to read (timeouts, network errors, EOF and a body cut short, the
// body limit, broken chunks, the balancer's own) keep their kind, and any
// other is a parse error: errMalformedResponse. fasthttp's texts quote
// what the backend sent (a read error in the middle of a head comes
// wrapped with "buffer size=78, contents: ...", a broken chunk with its
// size line: a session cookie, a token), so only the balancer's own errors
// pass whole; of fasthttp's, the network error inside or a sentinel.
func QuietResponseError(err error) error {
	if err == nil || err == io.EOF {
		return err // before the targets of errors.As, which escape
	}
	var (
		ne     net.Error
		small  *fasthttp.ErrSmallBuffer
		broken fasthttp.ErrBrokenChunk // returned as a value
	)
	switch {
	case errors.Is(err, ErrConnect), errors.Is(err, ErrTimeout), errors.Is(err, errStaleConn),
		errors.Is(err, ErrBrokenChunked), errors.Is(err, errTooManyInterim), errors.Is(err, ErrBodyTooLarge):
		return err
	case errors.As(err, &ne):
		return ne
	case errors.Is(err, fasthttp.ErrTimeout):
		return fasthttp.ErrTimeout
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fasthttp.ErrNoFreeConns
	case errors.As(err, &broken):
		return errBrokenChunk
	case errors.Is(err, io.ErrUnexpectedEOF):
		return io.ErrUnexpectedEOF
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.ErrBodyTooLarge
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return fasthttp.ErrConnectionClosed
	case errors.As(err, &small):
		return fmt.Errorf("%w: response head larger than the read buffer", errMalformedResponse)
	}
	return errMalformedResponse
}

// errBrokenChunk is QuietResponseError's fasthttp.ErrBrokenChunk.
var errBrokenChunk = fmt.Errorf("%w: bad chunk size line or chunk end", ErrBrokenChunked)

// Idempotent reports whether req's method may be sent twice (RFC 9110
// §9.2.2): GET, HEAD, PUT, DELETE, OPTIONS, TRACE.
func Idempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return h.IsGet() || h.IsHead() || h.IsPut() || h.IsDelete() || h.IsOptions() || h.IsTrace()
}

// wasReused reports whether conn carried a request before this one. ready
// has already marked it used for this request, so it looks at the count.
func wasReused(conn net.Conn) bool {
	bc, ok := conn.(*backendConn)
	return ok && bc.requests > 1
}

// ready sets conn's deadlines and reports whether a request may be sent on
// it.
//
// Every reuse is checked for bytes the backend sent while it was idle, and
// for its close, though that is one system call per request (a sixth of a
// proxied GET's). Skipping it for a GET on a connection reused within 3 ms
// was measured (1.01 → 0.06 peeks per request under wrk -c64) and dropped:
// a backend that writes bytes right after a response, in a separate write,
// gets them in a few microseconds, and a client's next request reuses the
// connection later than that, so the check reliably catches them; without
// it they would be the next client's response.
//
// With sendOnRead (a request without a body stream) the check is the read
// that would otherwise fail with EAGAIN after the request is written: the
// request is held until its response is read, and rawio.WriteThenRead
// checks, writes and waits (backendConn.Read). A reused connection that
// fails the check gets nothing and do takes another; a new one is checked
// too (a backend that speaks first), and counts as a failed connect
// (transport.unfit). Otherwise the check is a peek, here.
// A zero deadline clears the previous request's one; it is set before the
// check, which the runtime refuses to try after a past deadline. The
// deadline is coarse (conndeadline.go): it may be up to a sixteenth of
// timeout early.
func (t *transport) ready(conn net.Conn, deadline time.Time, timeout time.Duration, sendOnRead bool) (bool, error) {
	if err := setExchangeDeadline(conn, deadline, timeout); err != nil {
		return false, err
	}
	bc, ok := conn.(*backendConn)
	if !ok {
		return true, nil // not dialled by us: nothing to check with
	}
	bc.requests++
	bc.sendOnRead = sendOnRead
	bc.held = bc.held[:0]
	if sendOnRead || bc.requests == 1 {
		return true, nil // checked by the probe, or fresh: it cannot hold a stale response
	}
	switch bc.checkOwned() { // AcquireConn gave it to this request alone
	case connClean:
		return true, nil
	case connStray:
		t.strayBytes.Add(1)
	}
	return false, nil
}

// timeLeft is the wait AcquireConn should allow: 0 (no limit) without a
// deadline, ErrTimeout once it has passed.
func timeLeft(deadline time.Time) (time.Duration, error) {
	if deadline.IsZero() {
		return 0, nil
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return 0, fasthttp.ErrTimeout
	}
	return wait, nil
}
