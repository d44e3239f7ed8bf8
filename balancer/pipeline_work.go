package balancer

import (
	"bufio"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/coarse"
)

// Work item states. The caller waits in workWaiting; whoever moves it on
// owns it: the pipeline side (workClaimed: it may write the response and
// must then signal done) or the caller's deadline timer (workExpired: the
// caller leaves with ErrTimeout). An expired item is held by both sides
// until each is done with it; the second to let go puts it back in the
// pool: the caller, leaving, moves workExpired to workAbandoned (the
// pipeline side recycles it when it comes across it), or the pipeline side,
// done first, moves it to workDropped (the caller recycles it).
const (
	workWaiting int32 = iota
	workClaimed
	workExpired
	workAbandoned
	workDropped
)

// pipeWork is one pipelined request, pooled. The request is rendered into
// wire by the caller, so the connection's goroutines never touch the
// caller's Request, and after an abandonment not its Response either.
type pipeWork struct {
	state    atomic.Int32
	done     chan struct{} // one token per verdict
	err      error         // the verdict, written before done
	resp     *fasthttp.Response
	head     bool // HEAD: the response has no body whatever it announces
	deadline time.Time
	timeout  time.Duration // deadline less the time the request was queued
	// timer runs expire at armed, a deadline within a sixteenth of the
	// timeout before this request's (coarse.Due, the rule the connection's
	// deadlines follow): an item back from the pool keeps the timer set for
	// its last request when that fits, so a steady stream of requests with
	// the same timeout sets no timer at all. fired has a token once expire
	// has run. A function timer, not a channel one, so that the caller waits
	// on done alone: a plain receive, not a two-way select with a timer
	// channel to block on and unblock from.
	timer *time.Timer
	armed time.Time // caller only; zero when the timer is not set
	fired chan struct{}
	wire  wireBuffer
	bw    *bufio.Writer // renders into wire
}

func newPipeWork() *pipeWork {
	w := &pipeWork{done: make(chan struct{}, 1), fired: make(chan struct{}, 1)}
	w.timer = time.AfterFunc(time.Hour, w.expire)
	w.timer.Stop()
	// At rest, as after an answer: a timer that fires before start has
	// made w wait must find nobody waiting (workWaiting is the zero value).
	w.state.Store(workClaimed)
	w.bw = bufio.NewWriterSize(&w.wire, 4096)
	return w
}

// wireBuffer collects what a bufio.Writer flushes into it.
type wireBuffer struct{ b []byte }

func (wb *wireBuffer) Write(p []byte) (int, error) {
	wb.b = append(wb.b, p...)
	return len(p), nil
}

// render writes req as it goes on the wire into w.
func (w *pipeWork) render(req *fasthttp.Request) error {
	w.wire.b = w.wire.b[:0]
	w.bw.Reset(&w.wire)
	if err := req.Write(w.bw); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	return w.bw.Flush()
}

// prepare readies w and resp for the reader. HostClient has reset resp.
// w is not waiting yet: start does that.
func (w *pipeWork) prepare(resp *fasthttp.Response, head bool, deadline time.Time, keepHeaderCase bool) {
	w.err = nil
	w.resp = resp
	w.head = head
	w.deadline = deadline
	if head {
		resp.SkipBody = true
	}
	// The whole body is read: a streamed one would hold the connection.
	resp.StreamBody = false
	if keepHeaderCase {
		resp.Header.DisableNormalizing()
	}
}

// wait waits for the verdict or the deadline, timeLeft from now, and
// reports whether the deadline passed first: the caller then leaves, and w
// is released (see the states) and must not be touched. The caller may
// leave up to a sixteenth of its timeout early (see timer), as the
// connection's read deadline may end the exchange. Once the pipeline side
// has claimed w it is writing the response, bounded by the connection's
// read deadline (this same deadline), so the caller waits for that.
func (w *pipeWork) wait(p *pipeline) (expired bool) {
	<-w.done
	if w.state.Load() == workClaimed {
		return false // the timer stays set: the next request may keep it
	}
	<-w.fired // expire sent done: let it finish with w
	w.armed = time.Time{}
	if !w.state.CompareAndSwap(workExpired, workAbandoned) {
		p.works.Put(w) // workDropped: the pipeline side let go first
	}
	return true
}

// start arms the timer for w's request, timeLeft from now, then makes w
// wait for its verdict. The order matters: a timer kept from w's last
// request that fires before w is waiting must not expire this request
// unless it fits it (arm), and one that fires between arm and the store
// found the last request's state and did nothing; it is set again.
func (w *pipeWork) start(timeLeft time.Duration) {
	w.arm(timeLeft)
	w.state.Store(workWaiting)
	select {
	case <-w.fired:
		if w.state.Load() != workWaiting {
			w.fired <- struct{}{} // expire ran for this request: wait takes it
			break
		}
		w.timer.Reset(timeLeft)
		w.armed = w.deadline
	default:
	}
}

// arm makes sure the timer runs expire by w.deadline, timeLeft from now, and
// no more than a sixteenth of w.timeout before it.
func (w *pipeWork) arm(timeLeft time.Duration) {
	select {
	case <-w.fired: // it ran after the last request was answered
		w.armed = time.Time{}
	default:
	}
	if !coarse.Due(w.deadline, w.armed, coarse.Slack(w.timeout)) {
		return
	}
	if !w.timer.Stop() && !w.armed.IsZero() {
		<-w.fired // it is running: it must not meet this request's state
	}
	w.timer.Reset(timeLeft)
	w.armed = w.deadline
}

// expire runs on the timer at w's deadline: unless the pipeline side has
// claimed w, its caller is told to leave.
func (w *pipeWork) expire() {
	if w.state.CompareAndSwap(workWaiting, workExpired) {
		w.done <- struct{}{}
	}
	w.fired <- struct{}{}
}

// abandoned reports whether w's caller has left or is leaving: nobody waits
// for its verdict.
func (w *pipeWork) abandoned() bool {
	st := w.state.Load()
	return st == workExpired || st == workAbandoned
}

// release lets go of w on the pipeline side when its caller has left or is
// leaving: w goes back to the pool now, or by the caller's hand once it has
// left.
func (p *pipeline) release(w *pipeWork) {
	if !w.state.CompareAndSwap(workExpired, workDropped) {
		p.works.Put(w) // workAbandoned
	}
}

// claim gives the pipeline side the right to answer w; false means the
// caller's deadline passed (see release).
func (w *pipeWork) claim() bool { return w.state.CompareAndSwap(workWaiting, workClaimed) }

// finish gives a claimed w its verdict. w must not be touched afterwards.
func (w *pipeWork) finish(err error) {
	w.err = err
	w.done <- struct{}{}
}
