package balancer

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestPipeWorkDeadlineRace races a caller's deadline timer against the
// pipeline side answering or letting go of the request: whichever way it
// goes, the caller learns the right verdict, no token is left behind for
// the item's next use, and the item ends in a state that names who
// recycles it.
func TestPipeWorkDeadlineRace(t *testing.T) {
	p := &pipeline{}
	p.works.New = func() any { return newPipeWork() }
	var resp fasthttp.Response
	for i := range 2000 {
		w := newPipeWork()
		w.prepare(&resp, false, time.Now().Add(time.Minute), false)
		answer := i%2 == 0 // else the reader found the caller gone and lets go
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(time.Duration(rand.IntN(40)) * time.Microsecond)
			if answer && w.claim() {
				w.finish(nil)
				return
			}
			if w.claim() {
				w.finish(errReplay)
				return
			}
			p.release(w)
		})
		expired := w.wait(p, time.Duration(rand.IntN(40))*time.Microsecond)
		wg.Wait()
		st := w.state.Load()
		switch {
		case !expired && st != workClaimed:
			t.Fatalf("round %d: answered, state %d, want claimed", i, st)
		case expired && st != workAbandoned && st != workDropped:
			t.Fatalf("round %d: expired, state %d, want abandoned or dropped", i, st)
		}
		if len(w.done) != 0 || len(w.fired) != 0 {
			t.Fatalf("round %d: tokens left behind: done %d, fired %d", i, len(w.done), len(w.fired))
		}
	}
}
