package cache

import (
	"sync/atomic"
	"time"
)

// BreakerState is the state of the Redis breaker.
type BreakerState int32

// Breaker states.
const (
	// BreakerClosed: Redis is asked.
	BreakerClosed BreakerState = iota
	// BreakerOpen: Redis failed BreakerFailures times in a row and is not
	// asked until BreakerCooldown has passed.
	BreakerOpen
	// BreakerHalfOpen: one probe call is on its way; its outcome closes or
	// reopens the breaker, and other calls skip Redis meanwhile.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

// breaker stops asking Redis after failures consecutive failures, for
// cooldown, then lets one probe through. It is lock-free: allow is on every
// L2 call.
type breaker struct {
	failures int32
	cooldown time.Duration
	now      func() time.Time // real time; a field so tests can drive it
	// onChange, if not nil, hears when Redis is given up on (true: the
	// breaker opened from closed) and when it answers again (false), not
	// each failed probe of an outage.
	onChange func(open bool)

	state       atomic.Int32 // BreakerState
	consecutive atomic.Int32 // failures in a row while closed
	openedAt    atomic.Int64 // Unix nanoseconds
	opens       atomic.Uint64
}

func newBreaker(failures int, cooldown time.Duration, onChange func(open bool)) *breaker {
	return &breaker{failures: int32(failures), cooldown: cooldown, now: time.Now, onChange: onChange}
}

// allow reports whether a call may go to Redis. When it lets the probe of
// an open breaker through, the breaker is half open until the probe reports.
func (b *breaker) allow() bool {
	switch BreakerState(b.state.Load()) {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if b.now().UnixNano()-b.openedAt.Load() < int64(b.cooldown) {
			return false
		}
		return b.state.CompareAndSwap(int32(BreakerOpen), int32(BreakerHalfOpen))
	}
	return false
}

// success records a call Redis answered. Only the probe of a half-open
// breaker closes it: a call let through before the breaker opened may answer
// after, and closing on that would skip the cooldown, so that a Redis slow
// rather than down flipped the breaker (and the log) on every few calls.
func (b *breaker) success() {
	switch BreakerState(b.state.Load()) {
	case BreakerClosed:
		b.consecutive.Store(0)
	case BreakerHalfOpen:
		if b.state.CompareAndSwap(int32(BreakerHalfOpen), int32(BreakerClosed)) {
			b.consecutive.Store(0)
			if b.onChange != nil {
				b.onChange(false)
			}
		}
	}
}

// failure records a call that failed or timed out.
func (b *breaker) failure() {
	switch BreakerState(b.state.Load()) {
	case BreakerHalfOpen:
		b.open()
	case BreakerClosed:
		if b.consecutive.Add(1) >= b.failures {
			b.open()
		}
	}
}

func (b *breaker) open() {
	b.openedAt.Store(b.now().UnixNano())
	was := BreakerState(b.state.Swap(int32(BreakerOpen)))
	if was != BreakerOpen {
		b.opens.Add(1)
	}
	b.consecutive.Store(0)
	if was == BreakerClosed && b.onChange != nil {
		b.onChange(true)
	}
}

func (b *breaker) State() BreakerState { return BreakerState(b.state.Load()) }
