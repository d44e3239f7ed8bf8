package balancer

import (
	"bufio"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Work item states. The caller waits in workWaiting; whoever moves it on
// owns it: the pipeline side (workClaimed: it may write the response and
// must then signal done) or the caller (workAbandoned: its deadline passed
// and it left; the pipeline side puts the item back in the pool when it
// comes across it).
const (
	workWaiting int32 = iota
	workClaimed
	workAbandoned
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
	timer    *time.Timer
	wire     wireBuffer
	bw       *bufio.Writer // renders into wire
}

func newPipeWork() *pipeWork {
	w := &pipeWork{done: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	w.timer.Stop()
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
func (w *pipeWork) prepare(resp *fasthttp.Response, head bool, deadline time.Time, keepHeaderCase bool) {
	w.state.Store(workWaiting)
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
// reports whether the caller abandoned w (the pipeline then owns it). Once
// the pipeline side has claimed w it is writing the response, bounded by the
// connection's read deadline (this same deadline), so the caller waits for
// that.
func (w *pipeWork) wait(timeLeft time.Duration) (abandoned bool) {
	w.timer.Reset(timeLeft)
	select {
	case <-w.done:
		w.timer.Stop()
		return false
	case <-w.timer.C:
		if w.state.CompareAndSwap(workWaiting, workAbandoned) {
			return true
		}
		<-w.done
		return false
	}
}

// claim gives the pipeline side the right to answer w; false means the
// caller abandoned it.
func (w *pipeWork) claim() bool { return w.state.CompareAndSwap(workWaiting, workClaimed) }

// finish gives a claimed w its verdict. w must not be touched afterwards.
func (w *pipeWork) finish(err error) {
	w.err = err
	w.done <- struct{}{}
}
