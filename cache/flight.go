package cache

import (
	"sync"
	"time"
)

// flights coalesces concurrent fills of one key: the first request to miss
// leads, the others wait for its outcome. It is sharded by key hash so that
// misses on different keys do not contend; the zero value is ready.
type flights struct {
	shards [32]flightShard
}

type flightShard struct {
	mu sync.Mutex
	m  map[string]*flight // primary key → fill in progress; guarded by mu
}

// flight is one fill in progress. The leader writes out and then closes
// done; waiters read out only after done is closed.
type flight struct {
	done chan struct{}
	out  flightOutcome
}

// flightOutcome is what waiters learn from their leader.
type flightOutcome struct {
	entry  *Entry // stored and shareable; nil otherwise
	tier   Tier   // where entry came from: TierOrigin, or TierL2 for another instance's fill
	status int    // the origin's status, for Result.FwdStatus
	failed bool   // the origin failed: waiters may serve stale-if-error instead of retrying
}

// join returns the flight of key and whether the caller leads it (and must
// call land).
func (f *flights) join(h uint64, key []byte) (*flight, bool) {
	s := &f.shards[h%uint64(len(f.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if fl, ok := s.m[string(key)]; ok {
		return fl, false
	}
	if s.m == nil {
		s.m = make(map[string]*flight)
	}
	fl := &flight{done: make(chan struct{})}
	s.m[string(key)] = fl
	return fl, true
}

// land publishes the leader's outcome and ends the flight: later misses
// start a new one.
func (f *flights) land(h uint64, key []byte, fl *flight, out flightOutcome) {
	s := &f.shards[h%uint64(len(f.shards))]
	s.mu.Lock()
	if s.m[string(key)] == fl {
		delete(s.m, string(key))
	}
	s.mu.Unlock()
	fl.out = out
	close(fl.done)
}

// wait blocks until the flight lands or timeout passes; ok is false on
// timeout.
func (fl *flight) wait(timeout time.Duration) (out flightOutcome, ok bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-fl.done:
		return fl.out, true
	case <-t.C:
		return flightOutcome{}, false
	}
}
