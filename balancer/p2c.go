package balancer

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
// A backend with no latency yet (new, or never answered) is costed with the
// other candidate's latency, so it competes on its in-flight count alone:
// it gets a fair share at once rather than a flood (as a small fixed
// default would give it while its first requests run) or nothing (as a
// large one would). The state is one atomic random source: no lock, no
// allocation.
//
// The cost of this choice: the latency average moves only with samples, and
// has no decay with time. A backend whose average a few slow requests
// pushed up gets a trickle under load (enough to bring it back), but at low
// load, where every in-flight count is 0, it loses every comparison and so
// gets no request to correct its average until load rises.
type P2CEWMA struct {
	rnd  random
	slow slowStart
}

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
	if second != nil && p.cheaper(second, first) {
		return second
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
func (p *P2CEWMA) cheaper(x, y *Backend) bool {
	lx, ly := x.LatencyEWMA(), y.LatencyEWMA()
	switch {
	case lx == 0 && ly == 0:
		lx, ly = 1, 1
	case lx == 0:
		lx = ly
	case ly == 0:
		ly = lx
	}
	// cost(x) < cost(y), multiplied out of the divisions.
	cx := float64(x.InFlight()+1) * float64(lx) * float64(y.Weight()) * p.slow.factor(y)
	cy := float64(y.InFlight()+1) * float64(ly) * float64(x.Weight()) * p.slow.factor(x)
	return cx < cy
}
