package gateway

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/rawio"
)

// yieldListener hands out client connections that yield to other goroutines
// before the first read after a write. After a response is written the next
// request cannot be there yet: reading at once fails with EAGAIN and parks
// the goroutine. Under load, letting the other ready goroutines run first
// means the request has usually arrived when this one reads: one system call
// and one park fewer per request (the balancer does the same upstream).
//
// Their deadlines are applied lazily and coarsely (deadline.go).
type yieldListener struct {
	net.Listener
	slack time.Duration // see deadlineSlack
}

func (l yieldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	yc := &yieldConn{Conn: c, slack: l.slack, peer: peerAddr(c.RemoteAddr())}
	if tcp, ok := c.(*net.TCPConn); ok {
		if rio, err := rawio.New(tcp); err == nil {
			yc.rawio = rio
		}
	}
	return yc, nil
}

type yieldConn struct {
	net.Conn
	wrote bool   // a write happened since the last read
	reads uint32 // reads after a write, for yielding on every other one
	// yielded is set by the handler when the request let the other
	// goroutines run already (upstreamYielded): the next read does not.
	yielded bool
	// peer is the client's IP, read once at Accept (clientPeer).
	peer netip.Addr
	// rawio reads and writes a TCP connection with raw system calls
	// (internal/rawio says why); nil for other kinds of connection.
	rawio *rawio.Conn

	// The deadlines (deadline.go): recorded, settled at the next Read or
	// Write within slack; applied at once after SetDeadline (direct).
	rd, wd deadline
	slack  time.Duration
	direct bool
}

// Read yields before every other read that follows a write. Yielding before
// each one saved the most CPU but wrecked the tail: runtime.Gosched puts the
// goroutine on the global run queue, which a busy scheduler serves one
// goroutine every 61 ticks, so with 64 connections on one core a yielded
// connection could wait ~10 ms (wrk -t1 -c64, cache hits: p99 8-11 ms against
// 1.0 ms). Every other read keeps most of the saving (6.0 → 6.4 µs per hit,
// against 6.9 without yielding) with the p99 of not yielding.
//
// A request that went to a backend yielded there already (upstreamYielded),
// and its connection does not yield again: two trips through the global
// run queue per request kept it from ever being empty, and the scheduler
// polls the network only when it is, so a ready connection could wait for
// sysmon's 10 ms poll. Measured (wrk -t1 -c64, proxied GETs, 6 alternating
// rounds): p99 2.64 ms with the backend's yield alone against 3.62 ms with
// both, for 0.7% more CPU per request.
func (c *yieldConn) Read(p []byte) (int, error) {
	if err := c.settleRead(); err != nil {
		return 0, err
	}
	if c.wrote {
		c.wrote = false
		if c.yielded {
			c.yielded = false
		} else if c.reads++; c.reads&1 == 0 {
			runtime.Gosched()
		}
	}
	if c.rawio != nil {
		return c.rawio.Read(p)
	}
	return c.Conn.Read(p)
}

func (c *yieldConn) Write(p []byte) (int, error) {
	if err := c.settleWrite(); err != nil {
		return 0, err
	}
	c.wrote = true
	if c.rawio != nil {
		return c.rawio.Write(p)
	}
	return c.Conn.Write(p)
}

// ReadFrom is the TCP connection's, so that a streamed response body moves
// from the backend's socket to the client's with splice (stream.go).
func (c *yieldConn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.settleWrite(); err != nil {
		return 0, err
	}
	c.wrote = true
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// upstreamYielded tells ctx's client connection that the request let the
// other goroutines run while it waited for its backend (Backend.DoAt yields
// before it reads a response), so the connection reads the next request at
// once.
func upstreamYielded(ctx *fasthttp.RequestCtx) {
	conn := ctx.Conn()
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn() // a TLS client's records are read through it
	}
	if c, ok := conn.(*yieldConn); ok {
		c.yielded = true
	}
}
