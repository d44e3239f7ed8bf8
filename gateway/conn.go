package gateway

import (
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
	"github.com/sluice-gw/sluice/internal/rawio"
)

// yieldListener hands out the gateway's client connections. After a
// response the next request cannot be there yet: reading at once fails with
// EAGAIN and parks the goroutine, a system call for nothing. A connection
// avoids that read in one of two ways:
//
//   - it holds a whole response until the next read, then writes it and
//     waits for the request in one go (held.go), when the client waits for
//     each answer (most do);
//   - otherwise it yields to the other goroutines before the first read
//     after a write (Read): under load the request has usually arrived when
//     it reads (the balancer does the same upstream).
//
// Their deadlines are applied lazily and coarsely (deadline.go).
type yieldListener struct {
	net.Listener
	slack   time.Duration // see deadlineSlack
	readBuf int           // the size of fasthttp's read buffer (yieldConn.look)
}

func (l yieldListener) Accept() (net.Conn, error) {
	yc, err := l.accept()
	if err != nil {
		return nil, err // not a nil *yieldConn in an interface
	}
	return yc, nil
}

func (l yieldListener) accept() (*yieldConn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	yc := &yieldConn{Conn: c, slack: l.slack, peer: peerAddr(c.RemoteAddr()), heldWait: heldWaitMax,
		pending: true, readBuf: l.readBuf} // the first read begins a head
	yc.sent.L = &yc.mu
	yc.sentFn = yc.heldSent
	if tcp, ok := c.(*net.TCPConn); ok {
		if rio, err := rawio.New(tcp); err == nil {
			yc.rawio = rio
		}
	}
	return yc, nil
}

type yieldConn struct {
	net.Conn
	// wrote: a write happened since the last read. Atomic: a TLS
	// connection's close_notify is written by Close, which may come from
	// another goroutine, as do a tunnel's writes.
	wrote      atomic.Bool
	yieldReads uint32 // reads after a write, for yielding on every other one
	// upstream is how the last request waited for its backend, set by the
	// handler (upstreamWaited): it decides whether the next read yields.
	upstream upstreamWait
	// peer is the client's IP, read once at Accept (clientPeer).
	peer netip.Addr
	// rawio reads and writes a TCP connection with raw system calls
	// (internal/rawio says why); nil for other kinds of connection.
	rawio *rawio.Conn

	// Held responses (held.go). Under mu, because Close (and a TLS
	// connection's close_notify, written by Close) may come from another
	// goroutine: hold says whether writes are held, held is what is, and
	// sending is set while the connection's goroutine writes it, which
	// other writers wait out (sent, signalled by heldSent).
	mu      sync.Mutex
	hold    bool
	held    []byte
	sending bool
	sent    sync.Cond
	sentFn  func() // heldSent, made once
	// The rest is the connection's goroutine's own.
	heldWait    time.Duration // the bound on a wait after a held response (heldWaitMax)
	pipelined   bool          // the client sent a request before its last response: never hold
	holdOff     uint8         // requests left for which holding is off after an expired wait
	holdBackoff uint8         // what holdOff was set to last, doubled at each expiry
	reads       uint32        // Reads so far, and as of the last request: pipelining shows as no Read between requests
	readsSeen   uint32

	// bareHead: the bytes looked at last held a head fasthttp would wait
	// on for ever (httpsafe.BareLFHead), so the next read fails instead.
	// readBuf is the size of fasthttp's read buffer: a read into all of it
	// is one with nothing buffered before it.
	// headFresh: the request's head began the first read after the last
	// request, into an empty buffer: nothing of it or after it was
	// buffered, so fasthttp had written out the answers before it
	// (forwardInterim).
	// next: those bytes ended with another request's head that the
	// connection refuses (a bare-LF or bare-CR head, bytes that are no
	// request: httpsafe.HeadLook.Next), the error the read after the
	// answers returns; unlike bareHead it outlives the request they began.
	// bareTrailer: a chunked body's trailer section had a bare LF
	// (httpsafe.ErrBareLFTrailer); the read was cut short before it, so the
	// read after fails. body follows a body that the read of its head did
	// not hold whole.
	// bareCR: they held a head with bare CR line ends (httpsafe.ErrBareCRHead).
	// notHTTP: they cannot begin a request (httpsafe.ErrNotHTTP).
	// pending: they ended inside a head (httpsafe.HeadLook.Partial), kept
	// in stash and looked at again with the reads that bring the rest, or
	// at a request's end (an empty stash: the next read begins a head).
	// lost: a read went unfollowed (look), and nothing is looked at after.
	// behind: requests that began in that read behind its first, buffered
	// already: the answers to the requests before them are not followed by
	// a head's first read (holdResponse).
	// sealed: the connection carries TLS records, and tlsConn looks at
	// the plaintext instead (tls.go).
	bareHead, bareTrailer, bareCR, notHTTP, pending, stashFresh, lost, headFresh, sealed bool
	next                                                                                 error
	behind                                                                               int
	body                                                                                 httpsafe.ChunkWatch
	stash                                                                                []byte
	readBuf                                                                              int

	// linger: the gateway refused a request and closes the connection
	// with the client's bytes perhaps still unread (lingerClose).
	linger atomic.Bool

	// The deadlines (deadline.go): recorded, settled at the next Read or
	// Write within slack; applied at once after SetDeadline (direct).
	rd, wd deadline
	slack  time.Duration
	direct bool
}

// upstreamWait is how a request waited for its backend, if it went to one.
type upstreamWait uint8

const (
	upstreamNone    upstreamWait = iota // answered by the gateway (a cache hit, an error)
	upstreamYielded                     // the transport yielded before it read the response
	upstreamParked                      // it waited in the poller, or for a pipelined connection's reader
)

// Read writes a held response and waits for the next request (held.go).
// Otherwise it yields (runtime.Gosched) before a read that follows a write,
// so that under load the next request has usually arrived when it reads: a
// read made at once fails with EAGAIN and parks, one system call more. How often
// it yields depends on what the last request did, for one trip through the
// scheduler's global run queue per proxied request:
//
//   - after a request that waited for its response parked (in the
//     runtime's poller, as the transport's requests do when it holds them
//     until their response is read, or for a pipelined connection's
//     reader), always: it never went through the run queue. Measured (wrk
//     -t1 -c64, 6 alternating rounds on one core): pipelined GETs 7% less
//     CPU per request, 7.6% more requests per second and 2.76 system calls
//     per request against 3.25, with the same p99 (2.6 ms) as yielding on
//     every other read; proxied GETs, against not yielding, 1.6% less CPU
//     and 2.2% more requests per second, for a p99 8% higher;
//   - after a request the transport sent as it was written (a body stream,
//     one too large to hold), never: the transport yielded already. Two
//     trips per request kept the global run queue from ever being empty,
//     and the scheduler polls the network only when it is, so a ready
//     connection could wait for sysmon's 10 ms poll. Measured (wrk -t1
//     -c64, proxied GETs, 6 alternating rounds): p99 2.64 ms with the
//     backend's yield alone against 3.62 ms with both, for 0.7% more CPU;
//   - after any other request (a cache hit), on every other read. Yielding
//     before each one saved the most CPU but wrecked the tail: with nothing
//     else parking, the goroutines stayed in the global run queue, which a
//     busy scheduler serves one goroutine every 61 ticks (wrk -t1 -c64, cache
//     hits: p99 8-11 ms against 1.0 ms). Every other read keeps most of the
//     saving (6.0 → 6.4 µs per hit, against 6.9 without yielding) with the
//     p99 of not yielding.
func (c *yieldConn) Read(p []byte) (int, error) {
	if c.sealed {
		return c.read(p) // TLS records: tlsConn looks at what they hold
	}
	if err := c.refusal(); err != nil {
		return 0, err
	}
	n, err := c.read(p)
	return c.look(p, n), err
}

// refusal is the error a read fails with once an earlier read held what
// the connection refuses (look).
func (c *yieldConn) refusal() error {
	switch {
	case c.bareHead:
		return httpsafe.ErrBareLFHead
	case c.next != nil:
		return c.next
	case c.bareTrailer:
		return httpsafe.ErrBareLFTrailer
	case c.bareCR:
		return httpsafe.ErrBareCRHead
	case c.notHTTP:
		return httpsafe.ErrNotHTTP
	}
	return nil
}

// look follows the request bytes p[:n] just read: a head that begins
// with them (pending: the connection's first read, or the last look ended
// where a request did) or goes on from the reads before (the stash), and
// the requests behind it (httpsafe.LookAtHead), or a body's framing
// (httpsafe.ChunkWatch). So the connection knows where every head begins,
// pipelined or not. It returns how many of the bytes the read hands on:
// fewer when a chunked trailer has a bare LF.
func (c *yieldConn) look(p []byte, n int) int {
	switch {
	case n <= 0:
	case c.lost:
		// A read went unfollowed before: where a head begins is unknown
		// from then on, and a look would guess.
	case c.pending:
		// The rest of a head: looked at with what came of it before, as
		// if it had come whole. Only a head fasthttp's buffer can hold
		// is kept; fasthttp refuses a larger one.
		kept := len(c.stash)
		c.pending = false
		if kept == 0 {
			// The last look ended where a request did: this read begins
			// a head, looked at in place (fresh into an empty buffer).
			return c.lookAt(p[:n], 0, n, len(p) == c.readBuf)
		}
		if kept+n > c.readBuf {
			c.stash, c.lost = nil, true
			return n
		}
		c.stash = append(c.stash, p[:n]...)
		return c.lookAt(c.stash, kept, n, c.stashFresh)
	case c.body.Active():
		// A body's bytes, whatever the connection expected: never looked
		// at as a head.
		end, lf := c.body.Feed(p[:n])
		switch {
		case lf >= 0:
			n = c.cutAtBareTrailer(lf)
		case end >= 0 && end < n:
			// The body ended within the read, and the next request
			// begins behind it, buffered already: looked at as the
			// first read of a head would be, its refusal kept for the
			// read after this request's answer.
			c.behind++
			return c.lookAt(p[end:n], -end, n, false)
		case end == n:
			// The body ended with the read: the next bytes begin a head.
			c.pending, c.stashFresh, c.stash = true, false, c.stash[:0]
		}
	default:
		// Bytes no look placed (after a head the walk could not frame,
		// which the checks refuse, or a chunked body whose framing the
		// watch gave up on): from here on nothing is looked at, or a
		// body could be judged as a head.
		c.lost = true
	}
	return n
}

// stashKeep is the most a connection keeps of its stash's buffer once a
// head in pieces has been looked at whole.
const stashKeep = 1 << 10

// lookAt looks at b, bytes that begin a request head, and records what it
// finds: in the first read of a head into an empty buffer (fresh), in a
// read after the end of a body (the head of a request behind the one
// being read: its refusal waits for the read after that one's answer), or
// a kept head with the read that goes on with it (fresh when the kept
// bytes began a fresh read). The read's own n bytes begin at offset from
// in b (negative: b begins inside the read). It returns how many of them
// the read hands on.
func (c *yieldConn) lookAt(b []byte, from, n int, fresh bool) int {
	look := httpsafe.LookAtHead(b)
	behind := from < 0
	switch {
	case !behind:
		c.headFresh = fresh && look.Starts
		c.bareHead, c.bareCR, c.notHTTP = look.Bare, look.BareCR, look.NotHTTP
		c.next = look.Next
	case look.Bare:
		c.next = httpsafe.ErrBareLFHead
	case look.BareCR:
		c.next = httpsafe.ErrBareCRHead
	case look.NotHTTP:
		c.next = httpsafe.ErrNotHTTP
	default:
		c.next = look.Next
	}
	c.body = look.Body
	c.behind += look.Behind
	if look.Partial >= 0 {
		// A head that goes on in the reads that follow: kept (moved to
		// the front of the stash when b is the stash already).
		c.stash = append(c.stash[:0], b[look.Partial:]...)
		c.stashFresh = fresh && look.Partial == 0
		c.pending = true
	} else if cap(c.stash) > stashKeep {
		c.stash = nil // a large head was rare: its buffer goes
	} else {
		c.stash = c.stash[:0]
	}
	if look.TrailerLF >= 0 {
		return c.cutAtBareTrailer(look.TrailerLF - from)
	}
	return n
}

// cutAtBareTrailer ends a read at the bare LF at lf, which ends a line of a
// chunked body's trailer section: fasthttp would end the trailer there and
// read what follows as a request. It gets the bytes before it, waits for
// the rest of the line, and the read after fails (ErrBareLFTrailer): a 400
// for the request, and nothing after it read.
func (c *yieldConn) cutAtBareTrailer(lf int) int {
	c.bareTrailer = true
	return lf
}

func (c *yieldConn) read(p []byte) (int, error) {
	c.reads++
	if b := c.takeHeld(true); b != nil {
		if c.rawio != nil && !c.direct && len(p) > 0 {
			// The wait after the write replaces the yield.
			c.wrote.Store(false)
			c.upstream = upstreamNone
			return c.readHeld(b, p)
		}
		if err := c.writeHeld(b); err != nil {
			return 0, err
		}
	}
	if err := c.settleRead(); err != nil {
		return 0, err
	}
	if !c.direct && c.yieldNow() { // direct: a tunnel's, whose two directions run at once
		runtime.Gosched()
	}
	if c.rawio != nil {
		return c.rawio.Read(p)
	}
	return c.Conn.Read(p)
}

// yieldNow reports whether this read yields first, by the rule above, and
// moves the rule on.
func (c *yieldConn) yieldNow() bool {
	if !c.wrote.Load() {
		return false
	}
	c.wrote.Store(false)
	up := c.upstream
	c.upstream = upstreamNone
	switch up {
	case upstreamParked:
		return true
	case upstreamYielded:
		return false
	}
	c.yieldReads++
	return c.yieldReads&1 == 0
}

func (c *yieldConn) Write(p []byte) (int, error) {
	if err := c.settleWrite(); err != nil {
		return 0, err
	}
	if c.holdWrite(p) {
		return len(p), nil
	}
	if err := c.flushHeld(); err != nil {
		return 0, err
	}
	c.wrote.Store(true)
	return c.write(p)
}

func (c *yieldConn) write(p []byte) (int, error) {
	if c.rawio != nil {
		return c.rawio.Write(p)
	}
	return c.Conn.Write(p)
}

// Close writes a held response first: fasthttp's Shutdown closes, from its
// own goroutine, connections whose response it has handed over, which may
// still be held (though hardly ever: from the start of a shutdown every
// response carries Connection: close, which is never held, and fasthttp
// closes idle connections after the drain). The write runs under the write
// deadline in force, the response's.
func (c *yieldConn) Close() error {
	if b := c.takeHeld(false); b != nil {
		// The net.Conn's own Write, with the fd's locks: this may not be
		// the connection's goroutine.
		_, _ = c.Conn.Write(b)
		c.heldSent()
	}
	if c.linger.Swap(false) {
		c.lingerClose()
	}
	return c.Conn.Close()
}

// How long, and how much, lingerClose reads before it closes.
const (
	lingerTime  = time.Second
	lingerBytes = 256 << 10
)

// lingerClose closes the connection in stages (RFC 9112 §9.6) after a
// refusal: the gateway's side first, so that the client reads the refusal
// and then the end of the stream, and then, once the client has stopped
// sending (its close), or after lingerTime or lingerBytes, the rest.
// Closing at once, with the client's bytes unread (the rest of a header
// block over the limit, a body never read), makes the kernel send a reset,
// which can destroy the refusal in flight before the client has read it.
// It blocks the connection's goroutine for at most lingerTime.
func (c *yieldConn) lingerClose() {
	tc, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || tc.CloseWrite() != nil {
		return
	}
	if c.Conn.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	buf := make([]byte, 4<<10) // refusals are rare; the connection is going
	for n := 0; n < lingerBytes; {
		m, err := c.Conn.Read(buf)
		n += m
		if err != nil {
			return
		}
	}
}

// ReadFrom is the TCP connection's, so that a streamed response body moves
// from the backend's socket to the client's with splice (stream.go).
func (c *yieldConn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.settleWrite(); err != nil {
		return 0, err
	}
	if err := c.flushHeld(); err != nil {
		return 0, err
	}
	c.wrote.Store(true)
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// upstreamWaited tells ctx's client connection how its request waited for
// the backend: yielded when the transport let the other goroutines run
// before it read the response (Backend.DoAt), parked otherwise. Read
// decides from it whether to yield.
func upstreamWaited(ctx *fasthttp.RequestCtx, yielded bool) {
	if c := clientConn(ctx); c != nil {
		c.upstream = upstreamParked
		if yielded {
			c.upstream = upstreamYielded
		}
	}
}
