package balancer

import "sync/atomic"

// LeastConn picks the healthy backend with the fewest requests in flight.
// Ties, common at low load where every count is 0, go in turn: the scan
// starts one place further each call, so idle backends share the traffic
// instead of the first one taking it all. Cost: one pass over the backends
// and one atomic counter per pool.
type LeastConn struct {
	next atomic.Uint64
}

// Pick implements Policy.
func (p *LeastConn) Pick(backends []*Backend, _ []byte) *Backend {
	n := uint64(len(backends))
	if n == 0 {
		return nil
	}
	return leastLoaded(backends, (p.next.Add(1)-1)%n, nil)
}

// leastLoaded returns the healthy backend other than not with the fewest
// requests in flight, scanning from index start so that ties go to the
// first one found from there.
func leastLoaded(backends []*Backend, start uint64, not *Backend) *Backend {
	n := uint64(len(backends))
	var best *Backend
	var bestLoad int64
	i := start
	for range n {
		if b := backends[i]; b != not && b.Healthy() {
			if load := b.InFlight(); best == nil || load < bestLoad {
				best, bestLoad = b, load
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	return best
}
