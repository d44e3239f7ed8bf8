package cache

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBreaker(2, time.Second)
	b.now = func() time.Time { return now }
	steps := []struct {
		name  string
		do    func()
		allow bool
		state BreakerState
	}{
		{"closed allows", func() {}, true, BreakerClosed},
		{"one failure keeps it closed", b.failure, true, BreakerClosed},
		{"a success resets the count", b.success, true, BreakerClosed},
		{"one failure again", b.failure, true, BreakerClosed},
		{"the second failure in a row opens it", b.failure, false, BreakerOpen},
		{"within the cooldown it stays open", func() { now = now.Add(999 * time.Millisecond) }, false, BreakerOpen},
		{"after the cooldown one probe goes", func() { now = now.Add(time.Millisecond) }, true, BreakerHalfOpen},
		{"a failed probe reopens it", b.failure, false, BreakerOpen},
		{"after another cooldown, a probe", func() { now = now.Add(time.Second) }, true, BreakerHalfOpen},
		{"a successful probe closes it", b.success, true, BreakerClosed},
	}
	for _, s := range steps {
		s.do()
		if got := b.allow(); got != s.allow {
			t.Fatalf("%s: allow = %v, want %v", s.name, got, s.allow)
		}
		if got := b.State(); got != s.state {
			t.Fatalf("%s: state = %s, want %s", s.name, got, s.state)
		}
	}
}
