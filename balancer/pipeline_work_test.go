package balancer

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// prepareFor readies w for a request with timeout from now, as RoundTrip does.
func prepareFor(w *pipeWork, resp *fasthttp.Response, timeout time.Duration) {
	w.prepare(resp, false, time.Now().Add(timeout), false)
	w.timeout = timeout
}

// testWorkPool returns a pipeline with only its work-item pool, and an item.
func testWorkPool() (*pipeline, *pipeWork) {
	p := &pipeline{}
	p.works.New = func() any { return newPipeWork() }
	return p, newPipeWork()
}

// TestPipeWorkDeadlineRace races a caller's deadline timer against the
// pipeline side answering or letting go of the request, on one work item
// used again and again: whichever way it goes, the caller learns the right
// verdict, no token is left behind for the item's next use, and the item
// ends in a state that names who recycles it.
func TestPipeWorkDeadlineRace(t *testing.T) {
	p, w := testWorkPool()
	var resp fasthttp.Response
	for i := range 2000 {
		timeout := time.Duration(rand.IntN(40)) * time.Microsecond
		prepareFor(w, &resp, timeout)
		w.start(timeout)
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(time.Duration(rand.IntN(40)) * time.Microsecond)
			if w.claim() {
				w.finish(nil)
				return
			}
			p.release(w) // the caller left (or is leaving)
		})
		expired := w.wait(p)
		wg.Wait()
		st := w.state.Load()
		switch {
		case !expired && st != workClaimed:
			t.Fatalf("round %d: answered, state %d, want claimed", i, st)
		case expired && st != workAbandoned && st != workDropped:
			t.Fatalf("round %d: expired, state %d, want abandoned or dropped", i, st)
		}
		if len(w.done) != 0 {
			t.Fatalf("round %d: a done token left behind", i)
		}
	}
}

func TestPipeWorkTimer(t *testing.T) {
	const timeout = 16 * time.Second // a slack of 1s
	var resp fasthttp.Response
	t.Run("a request within the slack of the last keeps its timer", func(t *testing.T) {
		w := newPipeWork()
		prepareFor(w, &resp, timeout)
		w.arm(timeout)
		first := w.armed
		w.deadline = first.Add(500 * time.Millisecond)
		w.arm(timeout)
		if !w.armed.Equal(first) {
			t.Errorf("armed moved from %v to %v", first, w.armed)
		}
		w.timer.Stop()
	})
	t.Run("a request due before the timer sets it again: never late", func(t *testing.T) {
		w := newPipeWork()
		prepareFor(w, &resp, timeout)
		w.arm(timeout)
		w.deadline = w.armed.Add(-time.Millisecond)
		w.arm(timeout)
		if !w.armed.Equal(w.deadline) {
			t.Errorf("armed %v, want the new deadline %v", w.armed, w.deadline)
		}
		w.timer.Stop()
	})
	t.Run("a request due well after the timer sets it again: not too early", func(t *testing.T) {
		w := newPipeWork()
		prepareFor(w, &resp, timeout)
		w.arm(timeout)
		w.deadline = w.armed.Add(2 * time.Second)
		w.arm(timeout)
		if !w.armed.Equal(w.deadline) {
			t.Errorf("armed %v, want the new deadline %v", w.armed, w.deadline)
		}
		w.timer.Stop()
	})
	t.Run("a reused item's caller leaves by its own deadline", func(t *testing.T) {
		p := &pipeline{}
		p.works.New = func() any { return newPipeWork() }
		w := newPipeWork()
		prepareFor(w, &resp, time.Hour)
		w.arm(time.Hour) // set for an earlier request with a long timeout
		prepareFor(w, &resp, 30*time.Millisecond)
		start := time.Now()
		w.start(30 * time.Millisecond)
		if !w.wait(p) {
			t.Fatal("answered, want expired")
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("left after %v, want about 30ms", took)
		}
	})
}

// TestPipeWorkKeptTimerNeverExpiresALaterRequest answers requests on one
// reused item whose timer, set for the request before, fires around the
// moment the next one starts: the next one, with a long timeout, must never
// be expired by it.
func TestPipeWorkKeptTimerNeverExpiresALaterRequest(t *testing.T) {
	p, w := testWorkPool()
	var resp fasthttp.Response
	for i := range 2000 {
		short := time.Duration(rand.IntN(30)) * time.Microsecond
		prepareFor(w, &resp, short)
		w.start(short)
		if w.claim() {
			w.finish(nil)
		} else {
			p.release(w)
		}
		if w.wait(p) {
			w = p.works.Get().(*pipeWork) // expired: w went back to the pool
		}
		time.Sleep(time.Duration(rand.IntN(30)) * time.Microsecond)
		prepareFor(w, &resp, time.Hour)
		w.start(time.Hour)
		if !w.claim() {
			t.Fatalf("round %d: a request with an hour left was expired by the last one's timer", i)
		}
		w.finish(nil)
		if w.wait(p) {
			t.Fatalf("round %d: answered, but the caller saw its deadline pass", i)
		}
	}
	w.timer.Stop()
}
