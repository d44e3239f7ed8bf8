package balancer

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testBudget returns a budget on a clock that moves only when the returned
// clock is advanced.
func testBudget(ratio float64, minPerSecond int) (*RetryBudget, *fakeClock) {
	clock := newFakeClock()
	return newRetryBudget(ratio, minPerSecond, clock.now), clock
}

func TestRetryBudget(t *testing.T) {
	t.Run("caps retries at the ratio when every request fails", func(t *testing.T) {
		rb, clock := testBudget(0.2, 0)
		requests, retries := 0, 0
		for range 30 { // seconds
			for range 100 {
				rb.Request(rb.now())
				requests++
				if rb.TryRetry() {
					retries++
				}
			}
			clock.advance(time.Second)
		}
		if share := float64(retries) / float64(requests); share > 0.2 || share < 0.18 {
			t.Errorf("%d retries for %d requests (%.3f), want just under 20%%", retries, requests, share)
		}
	})
	t.Run("allows the minimum per second at a low rate", func(t *testing.T) {
		rb, clock := testBudget(0.2, 1)
		for i := range 30 {
			rb.Request(rb.now())
			if !rb.TryRetry() {
				t.Fatalf("second %d: the one retry of the one request was refused", i)
			}
			clock.advance(time.Second)
		}
	})
	t.Run("allows a burst of the minimum over the window, no more", func(t *testing.T) {
		rb, _ := testBudget(0.2, 2)
		allowed := 0
		for range 100 {
			if rb.TryRetry() {
				allowed++
			}
		}
		if allowed != 2*budgetWindow {
			t.Errorf("%d retries allowed without requests, want %d (2/s over %ds)", allowed, 2*budgetWindow, budgetWindow)
		}
	})
	t.Run("forgets what it spent once the window has passed", func(t *testing.T) {
		rb, clock := testBudget(0, 1)
		for rb.TryRetry() {
		}
		clock.advance(budgetWindow * time.Second)
		if !rb.TryRetry() {
			t.Error("a retry was refused a window after the budget was spent")
		}
	})
	t.Run("never overspends under concurrent retries", func(t *testing.T) {
		rb, _ := testBudget(0, 5)
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					if rb.TryRetry() {
						allowed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if n := allowed.Load(); n != 5*budgetWindow {
			t.Errorf("%d retries allowed, want exactly %d", n, 5*budgetWindow)
		}
	})
	t.Run("takes a negative ratio or minimum as zero", func(t *testing.T) {
		rb, _ := testBudget(-1, -1)
		rb.Request(rb.now())
		if rb.TryRetry() {
			t.Error("a retry was allowed by a budget of nothing")
		}
	})
	t.Run("allows everything when nil", func(t *testing.T) {
		var rb *RetryBudget
		rb.Request(time.Now())
		if !rb.TryRetry() {
			t.Error("a nil budget refused a retry")
		}
	})
}
