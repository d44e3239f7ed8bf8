package gateway

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A tunnel is what an upgraded connection becomes once the backend has
// switched protocols: bytes copied both ways, unchanged, until either side
// closes, nothing moves for the route's idle_timeout, max_duration passes,
// or a shutdown's drain deadline comes.
//
// Closing: when one side closes its end (EOF), its peer's write side is
// half-closed so the peer sees the end at once, and the other direction
// gets tunnelCloseGrace to finish what it was sending (a WebSocket close
// frame answering the other's, say); then both connections are closed. An
// error on either side closes both at once.
//
// The copy loops read into buffers of their own rather than letting io.Copy
// splice: the idle timeout has to see bytes go by, and a splice moves them
// without the gateway seeing any. tunnelBufSize bounds the memory a tunnel
// holds (two buffers), whatever it carries.
type tunnel struct {
	srv     *Server
	rule    *upgradeRule
	route   string
	backend string
	start   time.Time
	pending []byte   // what the backend sent after its 101 head, for the client first
	up      net.Conn // the backend's connection

	// last is when a byte last went by, as time since start (monotonic).
	last atomic.Int64
	// upBytes and downBytes count what went client→backend and back.
	upBytes, downBytes atomic.Int64
	ended              atomic.Int32 // directions that have ended (pipe)

	mu     sync.Mutex
	client net.Conn       // set by run; nil before
	reason string         // why it closed; "" while open
	timers [3]*time.Timer // idle, max duration, close grace
}

const (
	// tunnelBufSize is each direction's copy buffer: a message of any size
	// goes through in pieces of this size. The copy buffers of 10,000 open
	// tunnels take 160 MiB; fasthttp's read buffer and request state, which
	// it keeps for a hijacked connection, come on top.
	tunnelBufSize = 8 << 10
	// tunnelCloseGrace is how long the other direction may go on after one
	// side closed its end.
	tunnelCloseGrace = 2 * time.Second
)

// Why a tunnel ended: the result label of sluice_tunnels_total.
const (
	resultClosed   = "closed"       // a side closed, or broke, its connection
	resultIdle     = "idle_timeout" // no byte either way for tunnel.idle_timeout
	resultMaxLife  = "max_duration" // open for tunnel.max_duration
	resultShutdown = "shutdown"     // the drain deadline came
)

// newTunnel prepares the tunnel of a checked handshake. Its timers start at
// once, so a tunnel whose 101 never reached the client (run never called)
// still ends within the idle timeout.
func newTunnel(s *Server, rq *request, up net.Conn, pending []byte) *tunnel {
	t := &tunnel{srv: s, rule: rq.route.upgrade, route: rq.route.name, backend: rq.backend.Addr(),
		start: time.Now(), pending: pending, up: up}
	// Under the lock: a timer that fires at once must find itself set.
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timers[0] = time.AfterFunc(t.rule.idle, t.checkIdle)
	if t.rule.maxLife > 0 {
		t.timers[1] = time.AfterFunc(t.rule.maxLife, func() { t.close(resultMaxLife) })
	}
	return t
}

// run is the hijack handler: it copies both ways until the tunnel ends.
// hc is fasthttp's hijacked connection, whose reads start with what the
// client sent after its handshake; fasthttp closes it when run returns.
func (t *tunnel) run(hc net.Conn) {
	raw := hc
	if u, ok := hc.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	if y, ok := raw.(*yieldConn); ok {
		raw = y.Conn // the TCP connection itself, for CloseWrite
	}
	t.mu.Lock()
	closed := t.reason != ""
	if !closed {
		t.client = raw
	}
	t.mu.Unlock()
	if closed {
		return
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		t.pipe(t.up, hc, &t.upBytes, nil)
	}()
	t.pipe(raw, t.up, &t.downBytes, t.pending)
	<-done // fasthttp recycles hc once run returns
}

// pipe copies one direction, first (if any) then src, to dst. When the
// direction ends it ends the tunnel, or, if it was the first to end and
// ended cleanly, half-closes dst so that the peer sees the end and gives
// the other direction tunnelCloseGrace to finish.
func (t *tunnel) pipe(dst net.Conn, src io.Reader, n *atomic.Int64, first []byte) {
	var err error
	if len(first) > 0 {
		var nw int
		nw, err = dst.Write(first)
		n.Add(int64(nw))
		t.touch()
	}
	if err == nil {
		err = t.copy(dst, src, n)
	}
	if t.ended.Add(1) == 2 || err != nil {
		t.close(resultClosed)
		return
	}
	closeWrite(dst)
	t.mu.Lock()
	if t.reason == "" {
		t.timers[2] = time.AfterFunc(tunnelCloseGrace, func() { t.close(resultClosed) })
	}
	t.mu.Unlock()
}

// copy moves bytes from src to dst until src ends (nil) or either fails.
func (t *tunnel) copy(dst io.Writer, src io.Reader, n *atomic.Int64) error {
	buf := make([]byte, tunnelBufSize)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			t.touch()
			nw, werr := dst.Write(buf[:nr])
			n.Add(int64(nw))
			if werr != nil {
				return werr
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

// touch records that bytes went by now.
func (t *tunnel) touch() { t.last.Store(int64(time.Since(t.start))) }

// checkIdle closes the tunnel when nothing went by for the idle timeout,
// and otherwise comes back when it would next be due.
func (t *tunnel) checkIdle() {
	quiet := time.Since(t.start) - time.Duration(t.last.Load())
	if quiet >= t.rule.idle {
		t.close(resultIdle)
		return
	}
	t.mu.Lock()
	if t.reason == "" {
		t.timers[0].Reset(t.rule.idle - quiet)
	}
	t.mu.Unlock()
}

// close ends the tunnel for reason, once: both connections closed, timers
// stopped, the tunnel counted and forgotten. Later calls do nothing.
func (t *tunnel) close(reason string) {
	t.mu.Lock()
	if t.reason != "" {
		t.mu.Unlock()
		return
	}
	t.reason = reason
	for _, tm := range t.timers {
		if tm != nil {
			tm.Stop()
		}
	}
	client := t.client
	t.mu.Unlock()

	_ = t.up.Close()
	if client != nil {
		_ = client.Close()
	}
	t.srv.tunnels.remove(t)
	t.rule.m.result(reason).Inc()
	t.srv.log.Debug("tunnel closed", "route", t.route, "backend", t.backend, "reason", reason,
		"duration", time.Since(t.start).String(), "bytes_up", t.upBytes.Load(), "bytes_down", t.downBytes.Load())
}

// closeWrite half-closes c when it can (TCP, TLS), and closes it otherwise.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	_ = c.Close()
}
