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
	errPipeStalled = errors.New("it did not answer a pipelined request in time after answering the one before it")
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

// settle gives w its verdict (or recycles it if its caller left) and frees
// its slot.
func (c *pipeConn) settle(w *pipeWork, owned bool, err error) {
	if owned {
		w.finish(err)
	} else {
		c.p.release(w)
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
