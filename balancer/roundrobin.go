package balancer

import "sync/atomic"

// RoundRobin picks backends in turn, skipping unavailable ones. Its only
// state is one atomic counter per pool: no lock, no allocation. Skipping
// means the backend after a dead one gets its turn too, so with one of n
// down its successor takes twice its share until the checker notices nothing
// else. During a slow start a recovering backend passes a random part of its
// turns on to the next one, the same way.
type RoundRobin struct {
	next atomic.Uint64
	slow slowStart
	rnd  random
}

// Pick implements Policy.
func (p *RoundRobin) Pick(backends []*Backend, _ []byte) *Backend {
	n := uint64(len(backends))
	if n == 0 {
		return nil
	}
	return firstAvailable(backends, (p.next.Add(1)-1)%n, &p.slow, &p.rnd)
}

// firstAvailable returns the first available backend from index start on
// that slow start admits, or failing that the first available one (a
// recovering backend that is all there is takes every request).
func firstAvailable(backends []*Backend, start uint64, slow *slowStart, rnd *random) *Backend {
	n := uint64(len(backends))
	var fallback *Backend
	i := start // one division, not one per step
	for range n {
		if b := backends[i]; b.Available() {
			if slow.admits(b, rnd) {
				return b
			}
			if fallback == nil {
				fallback = b
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	return fallback
}
