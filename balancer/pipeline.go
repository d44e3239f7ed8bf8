package balancer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// pipeline sends a backend's pipelinable requests (see pipelinable) over a
// few pipelined connections (pipeConn). Backend.DoAt prepares each request
// and response as for the ordinary path; whatever the pipeline will not
// carry (every connection full, stalled or dialling, pipelining turned off,
// a replay) it hands to the backend's ordinary transport and connection
// pool.
//
// A request's path: reserve a slot on the first connection that has one
// and is not stalled (packing requests onto few connections makes the
// batches large), render the request into the work item's own buffer, queue
// it to the connection's writer, wait for the reader's verdict or the
// deadline. No lock is shared by all requests: a connection's queue is a
// channel, its counters atomics.
type pipeline struct {
	addr           string
	opts           PipelineOptions
	maxBody        int
	maxIdle        time.Duration
	timeout        time.Duration // the pool's: bounds reading a response nobody waits for
	connectTimeout *atomic.Int64

	normal *fasthttp.HostClient // the backend's ordinary client
	tr     *transport           // and its transport, shared: stray counts add up

	epoch time.Time // now() counts from it, on the monotonic clock
	slots []pipeSlot
	works sync.Pool // *pipeWork

	closed atomic.Bool
	// offReason is set once, when the backend shows it cannot be trusted
	// with pipelining; from then on every request takes the ordinary path.
	offReason atomic.Pointer[error]
	onOff     atomic.Pointer[func(addr string, reason error)]
	// dialFailed is now() of the last failed dial; no dial is tried for
	// redialPause after it, so a dead backend costs one connect per request
	// (the ordinary path's), not two.
	dialFailed atomic.Int64

	pipelined atomic.Uint64
	replayed  atomic.Uint64
}

// redialPause is how long the pipeline leaves a backend alone after a
// failed dial.
const redialPause = time.Second

// pipeSlot holds one pipelined connection, or nil until one is needed.
type pipeSlot struct {
	conn    atomic.Pointer[pipeConn]
	dialing atomic.Bool
}

func newPipeline(addr string, o Options, normal *fasthttp.HostClient, tr *transport, connectTimeout *atomic.Int64) *pipeline {
	p := &pipeline{
		addr:           addr,
		opts:           o.Upstream.Pipeline,
		maxBody:        int(o.MaxResponseBody),
		maxIdle:        o.MaxIdleConnDuration,
		timeout:        o.Timeout,
		connectTimeout: connectTimeout,
		normal:         normal,
		tr:             tr,
		epoch:          time.Now(),
		slots:          make([]pipeSlot, o.Upstream.Pipeline.Conns),
	}
	p.works.New = func() any { return newPipeWork() }
	return p
}

// pipelinable reports whether req may share a connection with others:
// idempotent and safe (RFC 9112 §9.3.2 allows pipelining only such
// requests), no body, no upgrade, no Connection: close, and not HEAD. A
// HEAD's response is the one whose framing depends on the request: a
// backend that sends a body anyway (a common bug) has it read as the next
// pipelined request's response, which then goes to another client, before
// anything can tell. On its own connection the transport sees the extra
// bytes and closes it.
func pipelinable(req *fasthttp.Request) bool {
	h := &req.Header
	if !h.IsGet() && !h.IsOptions() {
		return false
	}
	// ContentLength: above 0 a length, -1 chunked; 0 or -2 (none) no body.
	if cl := h.ContentLength(); cl > 0 || cl == -1 || req.IsBodyStream() || len(req.Body()) != 0 {
		return false
	}
	return !h.ConnectionUpgrade() && !h.ConnectionClose()
}

// eligible reports whether req goes through the pipeline.
func (p *pipeline) eligible(req *fasthttp.Request) bool {
	return p.offReason.Load() == nil && !p.closed.Load() && pipelinable(req)
}

// errReplay is a work item's verdict when its connection ended before any
// byte of its response arrived: it is sent once more, on the ordinary path.
var errReplay = errors.New("pipelined connection ended before the response began")

// do is one exchange for Backend.DoAt (which has prepared resp), over a
// pipelined connection or, failing one, the ordinary transport. now is a
// recent reading of the clock: the stall check and the timer count from it.
// yielded is the ordinary transport's when it made the exchange (a
// pipelined request waits on its work item, and does not yield). interim
// is the ordinary transport's alone: a pipelined connection's reader skips
// interim responses.
func (p *pipeline) do(req *fasthttp.Request, resp *fasthttp.Response, now, deadline time.Time, interim Interim) (yielded bool, err error) {
	if p.offReason.Load() != nil || p.closed.Load() {
		return p.tr.do(p.normal, req, resp, now, deadline, interim)
	}
	c := p.reserve(now, deadline)
	if c == nil {
		return p.tr.do(p.normal, req, resp, now, deadline, interim)
	}
	w := p.works.Get().(*pipeWork)
	if err := w.render(req); err != nil {
		c.unreserve()
		p.works.Put(w)
		return false, err
	}
	skipBody := resp.SkipBody
	w.prepare(resp, req.Header.IsHead(), deadline, p.normal.DisableHeaderNamesNormalizing)
	w.timeout = deadline.Sub(now)
	w.start(w.timeout)
	c.queue <- w // never blocks: the slot is reserved
	if w.wait(p) {
		// The deadline passed first; w is released.
		resp.SkipBody = skipBody
		return false, fmt.Errorf("%w: waiting for a pipelined response", ErrTimeout)
	}
	err = w.err
	p.works.Put(w)
	resp.SkipBody = skipBody
	if err == errReplay { //nolint:errorlint // our own sentinel, never wrapped
		p.replayed.Add(1)
		prepareExchange(req, resp)
		resp.SkipBody = skipBody
		return false, p.replay(req, resp, deadline)
	}
	if err == nil {
		p.pipelined.Add(1)
	}
	return false, err
}

// replay sends req once more, alone on a new connection that is closed
// afterwards: a pooled one could be closed by the backend as the request
// goes out (the keep-alive race the ordinary path answers with a second
// try), and a replay must reach the backend at most once.
func (p *pipeline) replay(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	wait, err := timeLeft(deadline)
	if err != nil {
		return err
	}
	conn, err := dial(p.addr, time.Duration(p.connectTimeout.Load()), wait)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	bw := p.normal.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	p.normal.ReleaseWriter(bw)
	if err != nil {
		return err
	}
	if req.Header.IsHead() {
		skipBody := resp.SkipBody
		resp.SkipBody = true
		defer func() { resp.SkipBody = skipBody }()
	}
	if p.normal.DisableHeaderNamesNormalizing {
		resp.Header.DisableNormalizing()
	}
	br := p.normal.AcquireReader(conn)
	err = QuietResponseError(readResponse(resp, br, p.maxBody, nil))
	p.normal.ReleaseReader(br)
	if err == nil {
		resp.ParseNetConn(conn)
	}
	return err
}

// now is the pipeline's monotonic clock, in nanoseconds.
func (p *pipeline) now() int64 { return int64(time.Since(p.epoch)) }

// reserve returns a connection with a free slot reserved for one request,
// dialling one when a slot has none, or nil when every connection is full,
// stalled behind a slow response, or being dialled.
func (p *pipeline) reserve(at, deadline time.Time) *pipeConn {
	now := int64(at.Sub(p.epoch))
	slow := int64(p.opts.SlowResponse)
	for i := range p.slots {
		s := &p.slots[i]
		c := s.conn.Load()
		if c == nil {
			if c = p.open(s, deadline); c == nil {
				continue
			}
		}
		if since := c.busySince.Load(); since != 0 && now-since > slow {
			continue // head-of-line protection
		}
		if c.reserve(int32(p.opts.Depth)) {
			return c
		}
	}
	return nil
}

// open dials a connection for s, unless another request is doing so, the
// last dial failed moments ago, or the pipeline is closed.
func (p *pipeline) open(s *pipeSlot, deadline time.Time) *pipeConn {
	if p.closed.Load() || p.offReason.Load() != nil {
		return nil
	}
	if last := p.dialFailed.Load(); last != 0 && p.now()-last < int64(redialPause) {
		return nil
	}
	if !s.dialing.CompareAndSwap(false, true) {
		return nil
	}
	defer s.dialing.Store(false)
	conn, err := dial(p.addr, time.Duration(p.connectTimeout.Load()), time.Until(deadline))
	if err != nil {
		p.dialFailed.Store(p.now())
		return nil // the ordinary path dials too, and reports the error
	}
	c := newPipeConn(p, s, conn)
	s.conn.Store(c)
	if p.closed.Load() || p.offReason.Load() != nil {
		c.retire() // closed or turned off while dialling
	}
	return c
}

// turnOff stops pipelining to the backend for good: a new pipeline needs a
// reload that changes its options. Connections finish the requests they
// carry, then close.
func (p *pipeline) turnOff(reason error) {
	reason = fmt.Errorf("backend %s: pipelining turned off: %w", p.addr, reason)
	if !p.offReason.CompareAndSwap(nil, &reason) {
		return
	}
	p.retireAll()
	if fn := p.onOff.Load(); fn != nil {
		(*fn)(p.addr, reason)
	}
}

// off returns why pipelining was turned off, or nil.
func (p *pipeline) off() error {
	if r := p.offReason.Load(); r != nil {
		return *r
	}
	return nil
}

// close stops taking requests; connections close once their requests end.
func (p *pipeline) close() {
	p.closed.Store(true)
	p.retireAll()
}

func (p *pipeline) retireAll() {
	for i := range p.slots {
		if c := p.slots[i].conn.Load(); c != nil {
			c.retire()
		}
	}
}

// openConns counts the pipelined connections open now.
func (p *pipeline) openConns() int {
	n := 0
	for i := range p.slots {
		if p.slots[i].conn.Load() != nil {
			n++
		}
	}
	return n
}
