package balancer

import (
	"errors"
	"testing"
	"time"
)

func TestHealthChecksDoNotOverrideAnEjection(t *testing.T) {
	hs := startHealthServer(t)
	b := NewBackend(hs.addr, 1, testOptions())
	b.SetEjected(true)
	startChecker(t, fastChecks(), []Target{b}, nil)
	for hs.served[200].Load() < 4 {
		time.Sleep(10 * time.Millisecond)
	}
	if b.Healthy() {
		t.Fatal("passing probes brought back an ejected backend")
	}
	if !b.PassesChecks() {
		t.Fatal("the check's own verdict is not recorded")
	}
	if !b.SetEjected(false) || !b.Healthy() {
		t.Fatal("ending the ejection does not bring the backend back")
	}
}

func TestAnEjectionEndingDoesNotOverrideFailingChecks(t *testing.T) {
	b := NewBackend("127.0.0.1:1", 1, testOptions())
	b.SetHealthy(false)
	b.SetEjected(true)
	b.SetEjected(false)
	if b.Healthy() {
		t.Fatal("the end of an ejection brought back a backend whose checks fail")
	}
	if changed := b.SetHealthy(false); changed {
		t.Fatal("SetHealthy reports a change for the verdict it already holds")
	}
}

func TestObserveKeepsTheFailureRunAndLatencyAverage(t *testing.T) {
	b := NewBackend("127.0.0.1:1", 1, testOptions())
	steps := []struct {
		name    string
		o       Outcome
		streak  int64
		latency time.Duration
	}{
		{"the first success sets the average", Outcome{Status: 200, Latency: 8 * time.Millisecond}, 0, 8 * time.Millisecond},
		// The first samples are averaged plainly: (8+16)/2, then (8+16+9)/3.
		{"a 503 is a failure", Outcome{Status: 503, Latency: 16 * time.Millisecond}, 1, 12 * time.Millisecond},
		{"an error is a failure and leaves the average", Outcome{Err: errors.New("reset"), Latency: time.Second}, 2, 12 * time.Millisecond},
		{"a 404 is a success and ends the run", Outcome{Status: 404, Latency: 9 * time.Millisecond}, 0, 11 * time.Millisecond},
	}
	for _, st := range steps {
		b.Observe(st.o)
		if got := b.FailStreak(); got != st.streak {
			t.Errorf("%s: fail streak %d, want %d", st.name, got, st.streak)
		}
		if got := b.LatencyEWMA(); got != st.latency {
			t.Errorf("%s: latency average %v, want %v", st.name, got, st.latency)
		}
	}
	// Past warmSamples each sample weighs 1/8.
	for range warmSamples {
		b.Observe(Outcome{Status: 200, Latency: 11 * time.Millisecond})
	}
	b.Observe(Outcome{Status: 200, Latency: 19 * time.Millisecond})
	if got := b.LatencyEWMA(); got != 12*time.Millisecond || !b.LatencyKnown() {
		t.Errorf("after warm-up: latency average %v (known %v), want 12ms", got, b.LatencyKnown())
	}
}
