package balancer

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// probation is how many responses a pipelined connection must have
// answered before the backend closing it with requests unanswered is put
// down to a keep-alive limit (nginx's keepalive_requests, Apache's
// MaxKeepAliveRequests: 100 or more) rather than to a backend that does not
// pipeline. Before that, it turns pipelining off.
const probation = 32

// Why a backend has pipelining turned off.
var (
	errPipeClosed  = errors.New("it closed a pipelined connection with requests unanswered")
	errPipeFraming = errors.New("it answered out of framing")
	errPipeStray   = errors.New("it sent bytes no request asked for")
)

// errMisframed fails a request whose response may hold, or be held in,
// another's bytes.
var errMisframed = errors.New("pipelined response out of framing: bytes after it do not start a response")

// pipeConn is one pipelined connection: a writer goroutine that writes
// queued requests in batches, and a reader goroutine that reads responses
// in order and hands each to its request. Whatever ends the connection, the
// reader settles every request still on it (finalize): a request whose
// response had begun fails, the others are replayed once on the ordinary
// path.
//
// Bytes on the connection are attributed by position: every byte after the
// end of response k belongs to request k+1. That is what "received no
// response byte" means when the connection breaks.
type pipeConn struct {
	p    *pipeline
	slot *pipeSlot
	conn net.Conn
	cr   countingReader
	br   *bufio.Reader // reader goroutine only
	bw   *bufio.Writer // writer goroutine only

	queue chan *pipeWork // reserved, not yet written
	sent  chan *pipeWork // written (or being written), in order
	kick  chan struct{}  // the reader says: everything written is answered
	stop  chan struct{}  // closed by shutdown

	// inflight counts reserved slots: queued, sent and being answered. At
	// most Depth; a slot is freed only after its request's verdict.
	inflight atomic.Int32
	// written and answered count requests handed to the socket (counted
	// just before the write) and responses read; equal means nothing is
	// awaited, so any byte that arrives is stray.
	written, answered atomic.Uint64
	// busySince is p.now() when the reader began waiting for its current
	// response, 0 while nothing is awaited (head-of-line protection).
	busySince atomic.Int64
	dead      atomic.Bool // takes no new requests

	stopOnce   sync.Once
	stopReason error         // why, set in stopOnce; read by finalize
	writerDone chan struct{} // closed when the writer has returned

	batch   []*pipeWork       // writer goroutine only
	scratch fasthttp.Response // reader only: responses nobody waits for
	kickTmr *time.Timer       // writer only: the batch window
	idleTmr *time.Timer       // writer only: max_idle_conn_duration
	used    bool              // writer only: a batch went out before
	_       [0]func()         // not comparable
}

// countingReader counts the bytes read from the connection: with the
// reader's buffered count it tells whether a response had begun. It keeps
// the first error too: a response read without error after one had a body
// delimited by the connection's end.
type countingReader struct {
	c   net.Conn
	n   int64
	err error
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.c.Read(b)
	r.n += int64(n)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

func newPipeConn(p *pipeline, s *pipeSlot, conn net.Conn) *pipeConn {
	depth := p.opts.Depth
	c := &pipeConn{
		p:          p,
		slot:       s,
		conn:       conn,
		cr:         countingReader{c: conn},
		bw:         bufio.NewWriterSize(conn, 4096),
		queue:      make(chan *pipeWork, depth),
		sent:       make(chan *pipeWork, depth),
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		batch:      make([]*pipeWork, 0, depth),
		kickTmr:    time.NewTimer(time.Hour),
		idleTmr:    time.NewTimer(p.maxIdle),
	}
	c.kickTmr.Stop()
	c.br = bufio.NewReaderSize(&c.cr, readBufferSize)
	c.scratch.Header.DisableNormalizing()
	go c.write()
	go c.read()
	return c
}

// reserve takes a slot for one request, unless depth are taken or the
// connection is ending.
func (c *pipeConn) reserve(depth int32) bool {
	for {
		n := c.inflight.Load()
		if n >= depth {
			return false
		}
		if c.inflight.CompareAndSwap(n, n+1) {
			break
		}
	}
	// finalize waits for inflight to reach 0 after setting dead: a request
	// that reserved before it saw dead is drained from the queue.
	if c.dead.Load() {
		c.unreserve()
		return false
	}
	return true
}

func (c *pipeConn) unreserve() {
	if c.inflight.Add(-1) == 0 && c.dead.Load() {
		c.shutdown(nil)
	}
}

// retire takes no new requests and closes the connection once those it
// carries are answered.
func (c *pipeConn) retire() {
	c.dead.Store(true)
	if c.inflight.Load() == 0 {
		c.shutdown(nil)
	}
}

// shutdown ends the connection: both goroutines stop, the reader settles
// what is left. reason (nil for a normal end) is kept only from the first
// call.
func (c *pipeConn) shutdown(reason error) {
	c.stopOnce.Do(func() {
		c.stopReason = reason
		c.dead.Store(true)
		close(c.stop)
		_ = c.conn.Close()
	})
}

// write is the writer goroutine.
func (c *pipeConn) write() {
	defer close(c.writerDone)
	defer c.idleTmr.Stop()
	for {
		var w *pipeWork
		select {
		case w = <-c.queue:
		case <-c.idleTmr.C:
			if c.inflight.Load() == 0 {
				c.retire()
			}
			c.idleTmr.Reset(c.p.maxIdle)
			continue
		case <-c.stop:
			return
		}
		c.batch = append(c.batch[:0], w)
		idle := c.written.Load() == c.answered.Load()
		c.collect(idle)
		if !c.send(idle) {
			return
		}
		c.idleTmr.Reset(c.p.maxIdle)
	}
}

// collect adds to the batch what is queued once the other runnable
// goroutines (the gateway's handlers) have had a turn to queue theirs. While
// earlier requests are unanswered it waits up to BatchDelay for more, until
// the connection's depth is used or everything written is answered; an idle
// connection writes at once.
func (c *pipeConn) collect(idle bool) {
	runtime.Gosched()
	c.drainQueue()
	if idle || c.p.opts.BatchDelay <= 0 {
		return
	}
	select {
	case <-c.kick: // a stale token from an earlier idle moment
	default:
	}
	if c.written.Load() == c.answered.Load() {
		return
	}
	depth := uint64(c.p.opts.Depth)
	c.kickTmr.Reset(c.p.opts.BatchDelay)
	defer c.kickTmr.Stop()
	for c.written.Load()-c.answered.Load()+uint64(len(c.batch)) < depth {
		select {
		case w := <-c.queue:
			c.batch = append(c.batch, w)
			c.drainQueue()
		case <-c.kick:
			return
		case <-c.kickTmr.C:
			return
		case <-c.stop:
			return
		}
	}
}

func (c *pipeConn) drainQueue() {
	for {
		select {
		case w := <-c.queue:
			c.batch = append(c.batch, w)
		default:
			return
		}
	}
}

// send writes the batch, and reports whether the connection goes on. On a
// connection that was idle it first checks, as the ordinary transport does
// before reusing a connection, that the backend has neither sent anything
// nor closed it; the batch is never written on one that it did.
func (c *pipeConn) send(idle bool) bool {
	// Requests whose callers left are dropped here, unwritten. The write
	// may take as long as the latest deadline: one request close to its
	// own must not fail the others.
	n := 0
	var last time.Time
	for _, w := range c.batch {
		if w.state.Load() == workAbandoned {
			c.p.works.Put(w)
			c.unreserve()
			continue
		}
		if w.deadline.After(last) {
			last = w.deadline
		}
		c.batch[n] = w
		n++
	}
	c.batch = c.batch[:n]
	if n == 0 {
		return true
	}
	if idle && c.used {
		// The reader is waiting on sent, not reading: the socket is ours.
		_ = c.conn.SetReadDeadline(last)
		if state := connStateOf(c.conn); state != connClean {
			var reason error
			if state == connStray {
				c.p.tr.strayBytes.Add(1)
				reason = errPipeStray
			}
			c.shutdown(reason) // first: the reader must not read for these
			c.handBack()
			return false
		}
	}
	c.used = true
	_ = c.conn.SetWriteDeadline(last)
	for _, w := range c.batch {
		_, _ = c.bw.Write(w.wire.b) // a failure shows again at Flush
	}
	// Into sent before the flush: the reader must know what it awaits
	// before any response can arrive.
	c.written.Add(uint64(n))
	c.handBack()
	if err := c.bw.Flush(); err != nil {
		// The backend closed or reset the connection (or shutdown did, or
		// it stopped reading). No response byte of these has been read:
		// each is replayed.
		var reason error
		if !c.stopping() && c.pipelined() && !isTimeout(err) {
			reason = errPipeClosed
		}
		c.shutdown(reason)
		return false
	}
	return true
}

// handBack moves the batch to sent, in order (finalize settles it there
// when the connection is ending). It never blocks: sent holds Depth.
func (c *pipeConn) handBack() {
	for i, w := range c.batch {
		c.sent <- w
		c.batch[i] = nil
	}
	c.batch = c.batch[:0]
}

// connStateOf peeks at conn; a connection not dialled by us passes.
func connStateOf(conn net.Conn) connState {
	bc, ok := conn.(*backendConn)
	if !ok {
		return connClean
	}
	return bc.check()
}

// read is the reader goroutine: one response per request in sent, in
// order. Every way out goes through finalize.
func (c *pipeConn) read() {
	var (
		head      *pipeWork
		owned     bool  // head claimed: its caller waits for finish
		headBytes bool  // a byte of head's response arrived
		headErr   error // why head's exchange failed
		failNext  bool  // bytes after head's response belong to the next
		offReason error
	)
	defer func() { c.finalize(head, owned, headBytes, headErr, failNext, offReason) }()
	for {
		select {
		case head = <-c.sent:
		case <-c.stop:
			return
		}
		c.busySince.Store(c.p.now())
		start := c.cr.n - int64(c.br.Buffered())
		resp, deadline := &c.scratch, head.deadline
		if owned = head.claim(); owned {
			resp = head.resp
		} else {
			// Its caller left at its deadline, but the response must still
			// be read for the connection to stay in step: it gets a whole
			// pool timeout more, like a request of its own.
			resp.Reset()
			resp.SkipBody = head.head
			deadline = time.Now().Add(c.p.timeout)
		}
		_ = c.conn.SetReadDeadline(deadline)
		err := resp.ReadLimitBody(c.br, c.p.maxBody)
		if err != nil {
			headBytes = c.cr.n > start
			headErr = err
			if headBytes && !isTimeout(err) && !errors.Is(err, fasthttp.ErrBodyTooLarge) {
				offReason = fmt.Errorf("%w: %w", errPipeFraming, err)
			} else if !headBytes && c.pipelined() && !isTimeout(err) && !c.stopping() {
				offReason = errPipeClosed
			}
			return
		}
		answered := c.answered.Add(1)
		if owned {
			resp.ParseNetConn(c.conn)
		}

		// Framing: a body that ran to the connection's end may hold the
		// responses to requests written after it; bytes already here after
		// this response must be the start of the next one, and there must
		// be a next one.
		closeDelimited := c.cr.err != nil
		if closeDelimited && c.written.Load() != answered {
			headErr, headBytes, failNext = errMisframed, true, true
			offReason = errPipeFraming
			return
		}
		if n := c.br.Buffered(); n > 0 {
			if c.written.Load() == answered {
				c.p.tr.strayBytes.Add(1)
				offReason = errPipeStray
			} else if !startsResponse(c.br, n) {
				headErr, headBytes, failNext = errMisframed, true, true
				offReason = errPipeFraming
				return
			}
		}
		final := closeDelimited || resp.StatusCode() < 200 || resp.ConnectionClose()
		if final && c.written.Load() != answered && answered < probation {
			offReason = errPipeClosed
		}
		if offReason != nil {
			c.p.turnOff(offReason) // before the verdict, as in finalize
		}
		c.settle(head, owned, nil)
		head = nil
		if offReason != nil || final {
			return
		}
		if c.written.Load() == answered {
			c.busySince.Store(0)
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
	}
}

// pipelined reports whether the connection carried requests that a
// backend closing it left unanswered, early in its life (see probation).
func (c *pipeConn) pipelined() bool {
	answered := c.answered.Load()
	return answered < probation && answered < c.written.Load()
}

// stopping reports whether shutdown was called: a read error is then ours.
func (c *pipeConn) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// startsResponse reports whether the n bytes buffered in br can begin a
// status line. A Content-Length that is too short leaves the rest of the
// body here; one that is too long has swallowed the next response's start.
// Either way what follows is not "HTTP/1.".
func startsResponse(br *bufio.Reader, n int) bool {
	const prefix = "HTTP/1."
	b, _ := br.Peek(min(n, len(prefix)))
	return string(b) == prefix[:len(b)]
}

// settle gives w its verdict (or recycles it if its caller left) and frees
// its slot.
func (c *pipeConn) settle(w *pipeWork, owned bool, err error) {
	if owned {
		w.finish(err)
	} else {
		c.p.works.Put(w)
	}
	c.unreserve()
}

// replay settles a request that received no byte of response on this
// connection: its caller sends it once more on the ordinary path.
func (c *pipeConn) replay(w *pipeWork) {
	c.settle(w, w.claim(), errReplay)
}

// finalize runs when the reader stops: it ends the connection, settles the
// request being read (head) and every other request still on it, turns
// pipelining off when the backend earned it, and frees the slot.
func (c *pipeConn) finalize(head *pipeWork, owned, headBytes bool, headErr error, failNext bool, offReason error) {
	c.shutdown(offReason)
	<-c.writerDone
	if offReason == nil {
		offReason = c.stopReason
	}
	if offReason != nil {
		// Before any verdict: a caller that sees one sees the turn-off too.
		c.p.turnOff(offReason)
	}
	if head != nil {
		switch {
		case headBytes:
			c.settle(head, owned, fmt.Errorf("pipelined response: %w", headErr))
		case owned:
			c.settle(head, true, errReplay)
		default:
			c.settle(head, false, nil)
		}
	}
	// A reservation made before dead was set may still be on its way to the
	// queue: drain until every slot is free.
	for c.inflight.Load() > 0 {
		select {
		case w := <-c.sent:
			if failNext {
				failNext = false
				c.settle(w, w.claim(), errMisframed)
				continue
			}
			c.replay(w)
		case w := <-c.queue:
			c.replay(w)
		default:
			runtime.Gosched()
		}
	}
	c.slot.conn.CompareAndSwap(c, nil)
}
