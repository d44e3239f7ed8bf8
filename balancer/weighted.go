package balancer

import (
	"sync/atomic"
	"unsafe"
)

// WeightedRoundRobin is nginx's smooth weighted round robin (each pick adds
// every backend's weight to its running score, takes the highest score and
// subtracts the total weight from it), computed once ahead instead of per
// pick: the schedule lists a whole cycle, in which each backend appears
// weight times, interleaved (5,1,1 gives a a b a c a a, not a a a a a b c),
// and picks walk it with one atomic counter. No lock, no allocation, and the
// cost does not grow with the number of backends (BenchmarkPick).
//
// An unavailable backend's turn is handed on by drawing the next turn of
// the shared counter, so over a cycle the others share its turns by weight.
// After len(backends) such draws in a row a pick walks the schedule on from
// there instead, which keeps a pool with one live backend among heavy dead
// ones cheap at the price of exactness. During a slow start a recovering
// backend hands on a random part (1 - its ramp factor) of its turns the same
// way, which amounts to weighting it by weight × factor.
//
// The schedule is rebuilt (racing rebuilds are harmless, the last one wins)
// when a pick meets a backend whose weight changed since, or a different
// slice. Weights are divided by their greatest common divisor; a cycle over
// maxSchedule turns is scaled down to about that, each weight kept at 1 or
// more, so very uneven large weights are honoured only approximately.
type WeightedRoundRobin struct {
	next  atomic.Uint64
	sched atomic.Pointer[schedule]
	slow  slowStart
	rnd   random
}

// maxSchedule bounds a cycle's length: 64 KiB of schedule per pool.
const maxSchedule = 1 << 14

// schedule is one cycle of turns for one backends slice and its weights.
type schedule struct {
	base    **Backend // &backends[0] of the slice it was built for
	weights []int     // backends[i].Weight() when it was built
	turns   []int32   // indexes into backends, in order
}

// Pick implements Policy.
func (p *WeightedRoundRobin) Pick(backends []*Backend, _ []byte) *Backend {
	if len(backends) == 0 {
		return nil
	}
	s := p.scheduleFor(backends)
	var turn uint64
	for range len(backends) {
		turn = (p.next.Add(1) - 1) % uint64(len(s.turns))
		k := s.turns[turn]
		b := backends[k]
		if b.Weight() != s.weights[k] {
			s = p.rebuild(backends)
			continue
		}
		if b.Available() && p.slow.admits(b, &p.rnd) {
			return b
		}
	}
	return p.walk(backends, s, turn)
}

// walk returns the first backend from turn on in s that is available and
// admitted, or failing that the first available one met; nil when none is.
func (p *WeightedRoundRobin) walk(backends []*Backend, s *schedule, turn uint64) *Backend {
	var fallback *Backend
	turn %= uint64(len(s.turns)) // it may come from a schedule since replaced
	for range len(s.turns) {
		if turn++; turn == uint64(len(s.turns)) {
			turn = 0
		}
		b := backends[s.turns[turn]]
		if !b.Available() || b == fallback {
			continue
		}
		if p.slow.admits(b, &p.rnd) {
			return b
		}
		if fallback == nil {
			fallback = b
		}
	}
	return fallback
}

// scheduleFor returns the schedule for backends, building it on first use
// and when the pool passes another slice.
func (p *WeightedRoundRobin) scheduleFor(backends []*Backend) *schedule {
	if s := p.sched.Load(); s != nil && s.base == unsafe.SliceData(backends) && len(s.weights) == len(backends) {
		return s
	}
	return p.rebuild(backends)
}

func (p *WeightedRoundRobin) rebuild(backends []*Backend) *schedule {
	s := newSchedule(backends)
	p.sched.Store(s)
	return s
}

// newSchedule runs nginx's smooth weighted round robin for one cycle.
func newSchedule(backends []*Backend) *schedule {
	s := &schedule{base: unsafe.SliceData(backends), weights: make([]int, len(backends))}
	g := 0
	for i, b := range backends {
		s.weights[i] = b.Weight()
		g = gcd(g, s.weights[i])
	}
	w := make([]int64, len(backends))
	var sum float64 // a float cannot overflow on absurd weights
	for i := range w {
		w[i] = int64(s.weights[i] / g)
		sum += float64(w[i])
	}
	if sum > maxSchedule {
		for i := range w {
			w[i] = max(1, int64(float64(w[i])*maxSchedule/sum))
		}
	}
	var total int64
	for _, x := range w {
		total += x
	}
	s.turns = make([]int32, total)
	score := make([]int64, len(w))
	for t := range s.turns {
		best := 0
		for i := range w {
			score[i] += w[i]
			if score[i] > score[best] {
				best = i
			}
		}
		score[best] -= total
		s.turns[t] = int32(best)
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
