package balancer

// Available reports whether a policy may pick the backend now: it is healthy
// (its checks pass, it is not ejected) and below its in-flight cap
// (circuit_breaker.max_requests_per_backend). Two atomic loads, no lock.
//
// A true answer is a hint, not a reservation: another request may take the
// last place first, which Pool.Acquire finds out when it reserves one.
func (b *Backend) Available() bool {
	if b.down.Load() != 0 {
		return false
	}
	limit := b.maxInFlight.Load()
	return limit <= 0 || b.inFlight.Load() < limit
}

// reserve takes a place on b: in flight +1, unless that goes over the cap.
// The increment comes first so that two requests racing for the last place
// cannot both get it; the loser's brief over-count can make a third request
// see b full, which only sends that one the slow way (see Pool.Acquire).
func (b *Backend) reserve() bool {
	n := b.inFlight.Add(1)
	if limit := b.maxInFlight.Load(); limit > 0 && n > limit {
		b.inFlight.Add(-1)
		return false
	}
	return true
}
