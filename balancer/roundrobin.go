package balancer

import "sync/atomic"

// RoundRobin picks backends in turn, skipping unhealthy ones. Its only state
// is one atomic counter per pool: no lock, no allocation. Skipping means the
// backend after a dead one gets its turn too, so with one of n down its
// successor takes twice its share until the checker notices nothing else.
type RoundRobin struct {
	next atomic.Uint64
}

// Pick implements Policy.
func (p *RoundRobin) Pick(backends []*Backend, _ []byte) *Backend {
	n := uint64(len(backends))
	if n == 0 {
		return nil
	}
	i := (p.next.Add(1) - 1) % n // one division, not one per step
	for range n {
		if b := backends[i]; b.Healthy() {
			return b
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil
}
