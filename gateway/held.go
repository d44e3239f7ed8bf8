package gateway

import (
	"crypto/tls"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Held responses: a client connection keeps a finished response until the
// next read, then writes it and waits for the next request in one go
// (rawio.WriteThenWait), with no read that fails with EAGAIN in between.
//
// Reading right after writing a response usually finds nothing: the client
// has not even received it. The read fails with EAGAIN, then the goroutine
// waits in the poller; that read is a system call per request (about 0.6
// per request under wrk -t1 -c64 even after the yield of conn.go). It cannot
// simply be skipped: the runtime forgets a socket's readiness when a read
// begins, so a wait without a read first would miss bytes that came before
// it. Writing the response inside the read, after that reset, closes the gap
// for a client that waits for each response: its next request can only come
// after the response, so its arrival is seen.
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
// they come. A held response is written before anything else touches the
// connection: a Write that is not held, ReadFrom, SetDeadline (before a
// hijack) and Close, which fasthttp's Shutdown calls from its own goroutine
// on a connection it sees as idle, whose response may still be held.
const (
	// heldWaitMax bounds a wait for the next request after a held response.
	heldWaitMax = 50 * time.Millisecond
	// heldWaitRenew: the bound in force is kept while at least this much of
	// it is left, so that it moves once per ~30ms per connection, not per
	// request.
	heldWaitRenew = 20 * time.Millisecond
	// maxHeld is the most a connection holds; a larger response is written
	// as it comes.
	maxHeld = 16 << 10
	// heldCloseWait is how long Close waits to write a held response.
	heldCloseWait = 250 * time.Millisecond
	// maxHoldOff is the most requests holding stays off for after an expired
	// wait.
	maxHoldOff = 64
)

var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// holdResponse decides, once the handler is done, whether ctx's response is
// held by its client connection until the next read, and notes pipelining:
// a request that came with the last one, no read between them.
func holdResponse(ctx *fasthttp.RequestCtx) {
	c := clientConn(ctx)
	if c == nil {
		return
	}
	if c.reads == c.readsSeen {
		c.pipelined = true
	}
	c.readsSeen = c.reads
	c.hold = false
	switch {
	case c.pipelined || c.rawio == nil || c.direct || ctx.Hijacked() ||
		ctx.Response.IsBodyStream() || ctx.Response.ConnectionClose() || ctx.Request.Header.ConnectionClose():
	case c.holdOff > 0:
		c.holdOff--
	default:
		c.hold = true
	}
}

// clientConn is ctx's connection from the gateway's listener, under TLS or
// not; nil for others (tests without a connection).
func clientConn(ctx *fasthttp.RequestCtx) *yieldConn {
	conn := ctx.Conn()
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn() // a TLS client's records are read through it
	}
	c, _ := conn.(*yieldConn)
	return c
}

// holdWrite keeps p to be written with the next read, if the response is
// held and p fits; it reports whether it did.
func (c *yieldConn) holdWrite(p []byte) bool {
	if !c.hold {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		c.held = heldBufs.Get().(*[]byte)
	}
	if len(*c.held)+len(p) > maxHeld {
		return false
	}
	*c.held = append(*c.held, p...)
	return true
}

// takeHeld returns what is held, leaving nothing; nil if nothing is.
func (c *yieldConn) takeHeld() *[]byte {
	c.mu.Lock()
	b := c.held
	c.held = nil
	c.mu.Unlock()
	if b != nil && len(*b) == 0 {
		putHeld(b)
		return nil
	}
	return b
}

func putHeld(b *[]byte) {
	*b = (*b)[:0]
	heldBufs.Put(b)
}

// flushHeld writes what is held, as a Write would.
func (c *yieldConn) flushHeld() error {
	b := c.takeHeld()
	if b == nil {
		return nil
	}
	defer putHeld(b)
	_, err := c.write(*b)
	return err
}

// readHeld writes the held response b and reads the next request into p
// (rawio.WriteThenWait), under the bound on the wait; it puts b back.
func (c *yieldConn) readHeld(b *[]byte, p []byte) (int, error) {
	defer putHeld(b)
	if err := c.boundWait(time.Now()); err != nil {
		return 0, err
	}
	n, sent, err := c.rawio.WriteThenWait(*b, p)
	if err == nil {
		c.holdBackoff = 0
		return n, nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.rd.set.Equal(c.rd.want) {
		return 0, err // the connection's own deadline, or it broke
	}
	if sent < len(*b) { // the bound had passed before the wait began
		if _, err := c.write((*b)[sent:]); err != nil {
			return 0, err
		}
	}
	return c.readAfterBound(p)
}

// boundWait puts a read deadline of at most now+heldWaitMax in force, and
// no later than the one asked for; one already in force is kept while it
// is within that and heldWaitRenew or more away (or is the one asked for).
func (c *yieldConn) boundWait(now time.Time) error {
	limit := now.Add(heldWaitMax)
	if !c.rd.want.IsZero() && c.rd.want.Before(limit) {
		limit = c.rd.want
	}
	set := c.rd.set
	if !set.IsZero() && !set.After(limit) && (set.Sub(now) >= heldWaitRenew || set.Equal(c.rd.want)) {
		return nil
	}
	if err := c.Conn.SetReadDeadline(limit); err != nil {
		return err
	}
	c.rd.set = limit
	return nil
}

// readAfterBound reads after a wait that heldWaitMax cut short, under the
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
