package cache

import (
	"sync"
	"sync/atomic"
)

// recentInvalidations is how many finished invalidations a read started
// before them can still be checked against; a read that overlapped more
// is a miss.
const recentInvalidations = 64

// invalidations tracks this instance's invalidations of URLs in Redis, so
// that a read of L2 cannot bring back an entry the instance has already
// dropped from L1: L1 forgets a URL at once, Redis when the URL's writer
// gets to it, and a GET right after the POST that invalidated the URL must
// miss in between (with the cache-tests suite's origin: 2 in 100 GETs
// right after their POST were L2 hits of the old response). A read is
// of an invalidated entry when an invalidation of its URL is queued when
// the read is checked, or finished after the read was sent: Redis may have
// answered before it applied the deletion.
type invalidations struct {
	mu      sync.Mutex
	pending map[uint64]int              // URL hash → invalidations queued
	recent  [recentInvalidations]uint64 // URL hashes of the last finished, by done
	queued  atomic.Int64                // sum of pending: reads skip the lock at 0
	done    atomic.Uint64               // invalidations finished
}

func newInvalidations() *invalidations {
	return &invalidations{pending: make(map[uint64]int)}
}

// start records a queued invalidation of URL hash h.
func (v *invalidations) start(h uint64) {
	v.queued.Add(1) // first: a read that finds it 0 skips pending
	v.mu.Lock()
	v.pending[h]++
	v.mu.Unlock()
}

// finish records that the invalidation of h is applied, failed or was
// dropped. A failed one leaves the entries in Redis until they expire
// (counted as a Redis error), as it did before this was tracked.
func (v *invalidations) finish(h uint64) {
	v.mu.Lock()
	if v.pending[h]--; v.pending[h] <= 0 {
		delete(v.pending, h)
	}
	d := v.done.Load() + 1
	v.recent[d%recentInvalidations] = h
	v.done.Store(d)
	v.mu.Unlock()
	v.queued.Add(-1)
}

// mark is taken before a read is sent and passed to dropped after.
func (v *invalidations) mark() uint64 { return v.done.Load() }

// dropped reports whether an entry of URL hash h, read by a read that
// took mark before it was sent, may have been invalidated here.
func (v *invalidations) dropped(h, mark uint64) bool {
	if v.queued.Load() == 0 && v.done.Load() == mark {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending[h] > 0 {
		return true
	}
	d := v.done.Load()
	if d-mark > recentInvalidations {
		return true
	}
	for s := mark + 1; s <= d; s++ {
		if v.recent[s%recentInvalidations] == h {
			return true
		}
	}
	return false
}
