package balancer

import "sync/atomic"

// P2CEWMA is the power of two choices over a latency average: each pick
// draws two distinct available backends at random and takes the cheaper,
// the cost being (requests in flight + 1) × latency EWMA, divided by weight
// and by the slow-start ramp factor. Two random candidates are enough to
// keep every backend's load within a small constant of the mean (Mitzenmacher,
// "The power of two choices in randomized load balancing"), without the
// herd that picking the global best causes when every gateway instance sees
// the same best backend; the latency term sends less to a backend that has
// become slow, the in-flight term reacts before the average does.
//
// A backend with no latency yet (new, never answered, or with fewer than
// warmSamples answers) is costed with the
// other candidate's latency, so it competes on its in-flight count alone:
// it gets a fair share at once rather than a flood (as a small fixed
// default would give it while its first requests run) or nothing (as a
// large one would). The state is one atomic random source: no lock, no
// allocation.
//
// The latency average moves only with samples, so an average no pick has
// confirmed for a while counts as unknown (staleRounds): a backend that
// looked slow once still gets the odd request that shows it recovered.
type P2CEWMA struct {
	rnd  random
	slow slowStart
	// picks counts this policy's picks; a backend records the count when
	// it is chosen (Backend.pickedAt), so a pick can tell a latency average
	// that no recent request has confirmed (see stale).
	picks atomic.Uint64
}

// staleRounds is how many rounds of picks (one round is one pick per
// backend) a backend may go unchosen before its latency average is treated
// as unknown. The average only moves with samples: a backend that a few
// slow requests made look slow would otherwise lose every comparison at low
// load, when all in-flight counts are 0, and never get the request that
// shows it has recovered. Treated as unknown, it competes on its in-flight
// count alone and gets a probe now and then: about one pick in
// staleRounds×n while it stays slow.
const staleRounds = 16

// drawTries is how many random draws a pick makes for one candidate before
// it scans for an available backend instead; with few backends down the
// scan is almost never needed, with most down it bounds the cost.
const drawTries = 3

// Pick implements Policy.
func (p *P2CEWMA) Pick(backends []*Backend, _ []byte) *Backend {
	first := p.draw(backends, nil)
	if first == nil {
		return nil
	}
	second := p.draw(backends, first)
	now := p.picks.Add(1)
	if second != nil && p.cheaper(second, first, now, uint64(len(backends))*staleRounds) {
		first = second
	}
	if first.pickedAt.Load() != now {
		first.pickedAt.Store(now)
	}
	return first
}

// draw returns a random available backend other than not, or nil.
func (p *P2CEWMA) draw(backends []*Backend, not *Backend) *Backend {
	n := len(backends)
	if n == 0 || (n == 1 && not != nil) {
		return nil
	}
	for range drawTries {
		b := backends[p.rnd.below(n)]
		if b != not && b.Available() {
			return b
		}
	}
	i := p.rnd.below(n)
	for range n {
		if b := backends[i]; b != not && b.Available() {
			return b
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil
}

// cheaper reports whether x costs less than y; on a tie it is false, so the
// first candidate, itself random, wins.
func (p *P2CEWMA) cheaper(x, y *Backend, now, staleAfter uint64) bool {
	lx, ly := x.LatencyEWMA(), y.LatencyEWMA()
	if !x.LatencyKnown() || now-x.pickedAt.Load() > staleAfter {
		lx = 0
	}
	if !y.LatencyKnown() || now-y.pickedAt.Load() > staleAfter {
		ly = 0
	}
	switch {
	case lx == 0 && ly == 0:
		lx, ly = 1, 1
	case lx == 0:
		lx = ly
	case ly == 0:
		ly = lx
	}
	// cost(x) < cost(y), multiplied out of the divisions.
	if lx < latencyMargin*ly && ly < latencyMargin*lx {
		lx, ly = 1, 1
	}
	cx := float64(x.InFlight()+1) * float64(lx) * float64(y.Weight()) * p.slow.factor(y)
	cy := float64(y.InFlight()+1) * float64(ly) * float64(x.Weight()) * p.slow.factor(x)
	return cx < cy
}

// latencyMargin is how far apart two latency averages must be to count.
// Averages of equal backends differ by noise, and the first request to each
// includes its TCP connect; compared strictly, at low load (every in-flight
// count 0) whichever looked fastest would take nearly every request. Within
// the margin the in-flight counts alone decide (ties to the first
// candidate, itself random), so equal backends share evenly, while one
// really slower, or busier, still loses.
const latencyMargin = 2
