package gateway

import (
	"errors"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

// Held responses: a client connection keeps a finished response until the
// next read, then writes it and waits for the next request in one go
// (rawio.WriteThenWait), with no read that fails with EAGAIN in between.
//
// Reading right after writing a response usually finds nothing: the client
// has not even received it. The read fails with EAGAIN, then the goroutine
// waits in the poller; that read is a system call per request (0.6 to 1 per
// request under wrk -t1 -c64 even after the yield of conn.go). It cannot
// simply be skipped: the runtime forgets a socket's readiness when a read
// begins, so a wait without a read first would miss bytes that came before
// it. Writing the response inside the read, after that reset, closes the gap
// for a client that waits for each response: its next request can only come
// after the response, so its arrival is seen. Measured (wrk -t1 -c64, the
// proxy pinned, 8 rounds alternating with the build before): 3.97 → 2.98
// reads per request, 2.8% less CPU per request, p99 -17%; cache hits (6
// rounds) 8.7% less CPU per hit.
//
// A client that pipelines (sends its next request before the response to
// the last one) breaks that: its next request may have come before the
// reset. Three things keep it from waiting:
//
//   - a request read from what the last read brought, with no read of its
//     own, shows pipelining: the connection never holds again;
//   - the wait is bounded by heldWaitMax (a read deadline, moved coarsely):
//     when it expires the connection reads as usual, and if the bytes were
//     there all along it never holds again. A pipelining client whose
//     requests never come together waits up to heldWaitMax once;
//   - a client slower than heldWaitMax between requests pays for that
//     expiry (a timer, a wake and a read) instead of the read it saved, so
//     each expiry that found nothing turns holding off for the connection's
//     next 1, 2, 4 ... 64 requests.
//
// Only a whole response that the connection keeps open is held (holdResponse):
// streamed bodies, hijacked connections and Connection: close are written as
// they come, and so is every response once a shutdown has begun. A held
// response is written before anything else touches the connection: a Write
// that is not held, ReadFrom, SetDeadline (before a hijack) and Close. Close
// may come from another goroutine (fasthttp's Shutdown closes connections it
// sees as idle), and under TLS it writes the close_notify alert itself, so
// hold and held are under the connection's mutex, and a write waits while the
// connection's goroutine is writing a held response (sending).
const (
	// heldWaitMax bounds a wait for the next request after a held response.
	// The bound in force moves coarsely: a wait may be cut after 3/5 of it.
	heldWaitMax = 50 * time.Millisecond
	// maxHeld is the most a connection holds; a larger response is written
	// as it comes. The connection keeps its buffer, heldStart at first,
	// as fasthttp keeps its reader and writer.
	maxHeld   = 16 << 10
	heldStart = 4 << 10
	// maxHoldOff is the most requests holding stays off for after an expired
	// wait.
	maxHoldOff = 64
)

// testHookHeldTaken, if set, runs in readHeld once the held response is
// taken, before it is written.
var testHookHeldTaken func(*yieldConn)

// holdResponse decides, once the handler is done, whether ctx's response is
// held by its client connection until the next read, and notes pipelining:
// a request that came with the last one, no read between them. (Where the
// next request's head begins the connection knows from its looks: see
// yieldConn.look.) flush reports
// a request buffered behind this one whose body is still coming: fasthttp
// would keep this response in its writer until that body is read.
func holdResponse(ctx *fasthttp.RequestCtx) (flush bool) {
	c := clientConn(ctx)
	if c == nil {
		return false
	}
	if c.reads == c.readsSeen {
		c.pipelined = true
	}
	c.readsSeen = c.reads
	c.bareHead, c.bareCR, c.notHTTP, c.headFresh = false, false, false, false
	if ctx.Hijacked() {
		// What follows is the tunnel's, not a request.
		c.next, c.bareTrailer, c.behind, c.pending = nil, false, 0, false
		c.body.Stop()
	}
	// A request that came behind this one in the same read is buffered
	// already: the next read does not begin its head.
	behind := c.behind > 0
	if behind {
		c.behind--
		// That request's body is still coming (the watch follows it):
		// the caller makes fasthttp flush this response before it reads on.
		flush = c.body.Active() && !c.lost
	}
	hold := false
	switch {
	case c.pipelined || c.rawio == nil || c.direct || ctx.Hijacked() ||
		ctx.Response.IsBodyStream() || ctx.Response.ConnectionClose() || ctx.Request.Header.ConnectionClose():
		// written as it comes
	case c.holdOff > 0:
		c.holdOff--
	default:
		hold = true
	}
	c.mu.Lock()
	c.hold = hold
	c.mu.Unlock()
	return flush
}

// clientConn is ctx's connection from the gateway's listener, under TLS or
// not; nil for others (tests without a connection).
func clientConn(ctx *fasthttp.RequestCtx) *yieldConn {
	switch c := ctx.Conn().(type) {
	case *yieldConn:
		return c
	case *tlsConn:
		return c.y // a TLS client's records are read through it
	}
	return nil
}

// holdWrite keeps p to be written with the next read, if the response is
// held and p fits; it reports whether it did.
func (c *yieldConn) holdWrite(p []byte) bool {
	c.mu.Lock()
	for c.sending {
		c.sent.Wait()
	}
	ok := c.hold && len(c.held)+len(p) <= maxHeld
	if ok {
		if c.held == nil {
			c.held = make([]byte, 0, heldStart)
		}
		c.held = append(c.held, p...)
	}
	c.mu.Unlock()
	return ok
}

// takeHeld returns what is held, nil if nothing is, once no held response
// is being written, and marks it as being written (sending) until the
// caller's heldSent: until then nothing is held or written beside it, and
// the buffer is the connection's again after it. endResponse ends holding
// for the response (a read: the next request has begun).
func (c *yieldConn) takeHeld(endResponse bool) []byte {
	c.mu.Lock()
	for c.sending {
		c.sent.Wait()
	}
	if endResponse {
		c.hold = false
	}
	b := c.held
	if len(b) > 0 {
		c.held = b[:0]
		c.sending = true
	} else {
		b = nil
	}
	c.mu.Unlock()
	return b
}

// heldSent ends what takeHeld began: other writers may go on.
func (c *yieldConn) heldSent() {
	c.mu.Lock()
	c.sending = false
	c.sent.Broadcast()
	c.mu.Unlock()
}

// flushHeld writes what is held, as a Write would.
func (c *yieldConn) flushHeld() error {
	if b := c.takeHeld(false); b != nil {
		return c.writeHeld(b)
	}
	return nil
}

// writeHeld writes b, which takeHeld returned. The write deadline in force
// is the response's: the Write that held it settled it.
func (c *yieldConn) writeHeld(b []byte) error {
	_, err := c.write(b)
	c.heldSent()
	return err
}

// readHeld writes the held response b, which takeHeld returned, and reads
// the next request into p (rawio.WriteThenWait, which calls heldSent once b
// is written), under the bound on the wait.
func (c *yieldConn) readHeld(b, p []byte) (int, error) {
	if testHookHeldTaken != nil {
		testHookHeldTaken(c)
	}
	n, sent, err := 0, 0, c.boundWait(time.Now())
	if err == nil {
		n, sent, err = c.rawio.WriteThenWait(b, p, c.sentFn)
	}
	if sent < len(b) {
		// The wait could not begin (a deadline already past) or the write
		// failed: the rest is written as a Write would, so that the
		// response is not lost with the error.
		_, _ = c.write(b[sent:])
		c.heldSent()
		return 0, err
	}
	if err == nil {
		c.holdBackoff = 0
		return n, nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.rd.set.Equal(c.rd.want) {
		return 0, err // the connection's own deadline, or it broke
	}
	return c.readAfterBound(p)
}

// boundWait puts a read deadline of at most now+c.heldWait in force, and
// no later than the one asked for; one already in force is kept while it
// is within that and 2/5 of heldWait or more away (or is the one asked
// for), so that it moves about once per 3/5 of heldWait, not per request.
func (c *yieldConn) boundWait(now time.Time) error {
	limit := now.Add(c.heldWait)
	if !c.rd.want.IsZero() && c.rd.want.Before(limit) {
		limit = c.rd.want
	}
	set := c.rd.set
	if !set.IsZero() && !set.After(limit) && (set.Sub(now) >= c.heldWait*2/5 || set.Equal(c.rd.want)) {
		return nil
	}
	if err := c.Conn.SetReadDeadline(limit); err != nil {
		return err
	}
	c.rd.set = limit
	return nil
}

// readAfterBound reads after a wait that the bound cut short, under the
// connection's own deadline. What the read finds at once was missed by the
// wait (the client pipelines): the connection holds no more. If it finds
// nothing the client is slow, and holding backs off.
func (c *yieldConn) readAfterBound(p []byte) (int, error) {
	if err := c.settleRead(); err != nil {
		return 0, err
	}
	n, err := c.rawio.Read(p)
	switch {
	case !c.rawio.Waited():
		if n > 0 {
			c.pipelined = true
		}
	default:
		c.holdBackoff = min(max(1, 2*c.holdBackoff), maxHoldOff)
		c.holdOff = c.holdBackoff
	}
	return n, err
}
