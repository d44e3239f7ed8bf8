package cache

import (
	"fmt"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	now := time.Unix(0, 0)
	var changes []bool // what onChange heard since the last step
	b := newBreaker(2, time.Second, func(open bool) { changes = append(changes, open) })
	b.now = func() time.Time { return now }
	steps := []struct {
		name    string
		do      func()
		allow   bool
		state   BreakerState
		changes []bool
	}{
		{"closed allows", func() {}, true, BreakerClosed, nil},
		{"one failure keeps it closed", b.failure, true, BreakerClosed, nil},
		{"a success resets the count", b.success, true, BreakerClosed, nil},
		{"one failure again", b.failure, true, BreakerClosed, nil},
		{"the second failure in a row opens it, said once", b.failure, false, BreakerOpen, []bool{true}},
		{"a late success while open closes nothing", b.success, false, BreakerOpen, nil},
		{"within the cooldown it stays open", func() { now = now.Add(999 * time.Millisecond) }, false, BreakerOpen, nil},
		{"after the cooldown one probe goes", func() { now = now.Add(time.Millisecond) }, true, BreakerHalfOpen, nil},
		{"a failed probe reopens it, unsaid: the same outage", b.failure, false, BreakerOpen, nil},
		{"after another cooldown, a probe", func() { now = now.Add(time.Second) }, true, BreakerHalfOpen, nil},
		{"a successful probe closes it, said once", b.success, true, BreakerClosed, []bool{false}},
		{"more successes say nothing", b.success, true, BreakerClosed, nil},
	}
	for _, s := range steps {
		changes = nil
		s.do()
		if fmt.Sprint(changes) != fmt.Sprint(s.changes) {
			t.Fatalf("%s: onChange heard %v, want %v", s.name, changes, s.changes)
		}
		if got := b.allow(); got != s.allow {
			t.Fatalf("%s: allow = %v, want %v", s.name, got, s.allow)
		}
		if got := b.State(); got != s.state {
			t.Fatalf("%s: state = %s, want %s", s.name, got, s.state)
		}
	}
}
