package balancer

import "sync/atomic"

// LeastConn picks the available backend with the fewest requests in flight.
// Ties, common at low load where every count is 0, go in turn: the scan
// starts one place further each call, so idle backends share the traffic
// instead of the first one taking it all. Cost: one pass over the backends
// and one atomic counter per pool. During a slow start a recovering backend
// joins a pick's comparison only with the probability of its ramp factor.
type LeastConn struct {
	next atomic.Uint64
	slow slowStart
	rnd  random
}

// Pick implements Policy.
func (p *LeastConn) Pick(backends []*Backend, _ []byte) *Backend {
	n := uint64(len(backends))
	if n == 0 {
		return nil
	}
	return leastLoadedAdmitted(backends, (p.next.Add(1)-1)%n, nil, &p.slow, &p.rnd)
}

// leastLoaded returns the available backend other than not with the fewest
// requests in flight, scanning from index start so that ties go to the
// first one found from there.
func leastLoaded(backends []*Backend, start uint64, not *Backend) *Backend {
	return leastLoadedAdmitted(backends, start, not, &slowStart{}, nil)
}

// leastLoadedAdmitted is leastLoaded among the backends slow start admits,
// or among all available ones when it admits none.
func leastLoadedAdmitted(backends []*Backend, start uint64, not *Backend, slow *slowStart, rnd *random) *Backend {
	n := uint64(len(backends))
	var best, fallback *Backend
	var bestLoad, fallbackLoad int64
	i := start
	for range n {
		if b := backends[i]; b != not && b.Available() {
			load := b.InFlight()
			switch {
			case slow.admits(b, rnd):
				if best == nil || load < bestLoad {
					best, bestLoad = b, load
				}
			case fallback == nil || load < fallbackLoad:
				fallback, fallbackLoad = b, load
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	if best == nil {
		return fallback
	}
	return best
}
