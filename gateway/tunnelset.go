package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// tunnelSet is the server's open tunnels, which a shutdown drains. The zero
// value is ready.
type tunnelSet struct {
	mu     sync.Mutex
	open   map[*tunnel]struct{}
	closed bool // the drain is over: no new tunnel
	n      atomic.Int64
}

// add registers t and reports whether it may run: false once the drain is
// over.
func (ts *tunnelSet) add(t *tunnel) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	if ts.open == nil {
		ts.open = make(map[*tunnel]struct{})
	}
	ts.open[t] = struct{}{}
	ts.n.Add(1)
	return true
}

func (ts *tunnelSet) remove(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.open[t]; ok {
		delete(ts.open, t)
		ts.n.Add(-1)
	}
}

// active is the number of open tunnels.
func (ts *tunnelSet) active() int64 { return ts.n.Load() }

// drain waits for the open tunnels to end on their own until ctx is done,
// then closes those left and refuses new ones.
func (ts *tunnelSet) drain(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for ts.active() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	ts.mu.Lock()
	ts.closed = true
	left := make([]*tunnel, 0, len(ts.open))
	for t := range ts.open {
		left = append(left, t)
	}
	ts.mu.Unlock()
	for _, t := range left {
		t.close(resultShutdown)
	}
}
