package balancer

import "time"

// rampFloor is the share a backend gets at the start of its slow start: a
// tenth, enough to warm its caches and connections, little enough that a
// backend which recovered only in part hurts few requests.
const rampFloor = 0.1

// rampFactor returns how much of its normal share the backend should get at
// now (Unix nanoseconds) for a slow start of window: rampFloor just after it
// recovered, rising linearly to 1 at window. It is 1 for a backend that
// never recovered (it started up) and after the window, and the first call
// that finds the window over clears the timestamp so later picks skip the
// clock. A wall clock stepped back by more than window ends the ramp too.
func (b *Backend) rampFactor(now int64, window time.Duration) float64 {
	at := b.recoveredAt.Load()
	if at == 0 || window <= 0 {
		return 1
	}
	elapsed := now - at
	if elapsed >= int64(window) || elapsed < -int64(window) {
		b.recoveredAt.CompareAndSwap(at, 0)
		return 1
	}
	if elapsed < 0 { // another core's clock read a little ahead
		elapsed = 0
	}
	return rampFloor + (1-rampFloor)*float64(elapsed)/float64(window)
}

// slowStart applies the pool's slow_start to a policy. Its zero value is
// "off" and costs one comparison per pick.
type slowStart struct {
	window time.Duration
	// now returns the time in Unix nanoseconds; nil means the wall clock.
	// Tests inject a fixed one.
	now func() int64
}

// factor is b's rampFactor now. It reads the clock only while b ramps.
func (s *slowStart) factor(b *Backend) float64 {
	if s.window <= 0 || b.recoveredAt.Load() == 0 {
		return 1
	}
	now := s.now
	if now == nil {
		return b.rampFactor(time.Now().UnixNano(), s.window)
	}
	return b.rampFactor(now(), s.window)
}

// admits reports whether b takes a pick it was offered: always, unless it
// ramps, when it takes a share equal to its factor and passes the rest on.
func (s *slowStart) admits(b *Backend, r *random) bool {
	f := s.factor(b)
	return f >= 1 || r.float() < f
}
