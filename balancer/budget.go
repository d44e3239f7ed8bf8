package balancer

import (
	"math"
	"sync/atomic"
	"time"
)

// budgetWindow is how many seconds a RetryBudget remembers: long enough to
// smooth a burst, short enough that a budget spent in an outage is back
// soon after it ends.
const budgetWindow = 10

// RetryBudget caps retries at a share of the traffic, so that retries
// cannot multiply the load on a pool that is failing because of load: over
// the last ten seconds, retries may number at most
// ratio × requests + minPerSecond × 10. The minimum lets a quiet route
// retry at all (ratio × a handful of requests rounds to nothing).
//
// It counts in a ring of ten one-second buckets, each an atomic word
// holding its second and its count, so Request and TryRetry take no lock
// and allocate nothing. A bucket found holding an older second is reset by
// the compare-and-swap that counts into it. Concurrent TryRetry calls
// cannot overspend: each counts its retry with a compare-and-swap on the
// very word it checked.
//
// A nil *RetryBudget allows every retry.
type RetryBudget struct {
	ratio      float64
	minRetries float64 // minPerSecond × budgetWindow
	start      time.Time
	now        func() time.Time // injectable for tests

	requests [budgetWindow]atomic.Uint64 // second<<32 | count
	retries  [budgetWindow]atomic.Uint64
}

// NewRetryBudget returns a budget allowing retries up to ratio (0.2 for
// 20%) of the requests, plus minPerSecond each second, both over ten
// seconds. A negative ratio or minimum is taken as 0.
func NewRetryBudget(ratio float64, minPerSecond int) *RetryBudget {
	return newRetryBudget(ratio, minPerSecond, time.Now)
}

func newRetryBudget(ratio float64, minPerSecond int, now func() time.Time) *RetryBudget {
	if !(ratio > 0) || math.IsInf(ratio, 0) { // negative, NaN or infinite
		ratio = 0
	}
	return &RetryBudget{
		ratio:      ratio,
		minRetries: float64(max(minPerSecond, 0) * budgetWindow),
		start:      now(),
		now:        now,
	}
}

// Request counts an original request (not a retry) that started at now.
// Call it once for each request that might be retried. The caller passes
// the time it read anyway: a clock read per request is not free.
func (rb *RetryBudget) Request(now time.Time) {
	if rb == nil {
		return
	}
	sec := rb.secondAt(now)
	w := &rb.requests[sec%budgetWindow]
	for {
		old := w.Load()
		switch {
		case old>>32 == sec:
			// The common case is one add, not a compare-and-swap loop
			// that every request would contend on. (A caller stalled
			// for a whole window between the load and the add counts
			// in the wrong second: one request, harmless.)
			w.Add(1)
			return
		case old>>32 > sec: // the ring moved on while this caller slept
			return
		case w.CompareAndSwap(old, sec<<32|1): // first of its second
			return
		}
	}
}

// TryRetry reports whether a retry fits in the budget, and if so counts it.
func (rb *RetryBudget) TryRetry() bool {
	if rb == nil {
		return true
	}
	sec := rb.second()
	w := &rb.retries[sec%budgetWindow]
	for {
		old := w.Load()
		if old>>32 > sec {
			return false
		}
		spent := float64(countIn(old, sec) + windowSum(&rb.retries, sec, true) + 1)
		if spent > rb.ratio*float64(windowSum(&rb.requests, sec, false))+rb.minRetries {
			return false
		}
		if w.CompareAndSwap(old, bump(old, sec)) {
			return true
		}
	}
}

// second returns the seconds since the budget was made, by the monotonic
// clock.
func (rb *RetryBudget) second() uint64 { return rb.secondAt(rb.now()) }

func (rb *RetryBudget) secondAt(now time.Time) uint64 {
	if now.Before(rb.start) {
		return 0
	}
	return uint64(now.Sub(rb.start) / time.Second)
}

// bump returns the bucket word old with one more count in second sec: a
// word of an older second starts again from 1.
func bump(old, sec uint64) uint64 {
	if old>>32 == sec {
		return old + 1
	}
	return sec<<32 | 1
}

// countIn returns the count of word w if it belongs to second sec's window.
func countIn(w, sec uint64) uint64 {
	if s := w >> 32; s <= sec && sec-s < budgetWindow {
		return w & math.MaxUint32
	}
	return 0
}

// windowSum adds up the counts of the window ending at second sec,
// skipping sec's own bucket when asked.
func windowSum(ws *[budgetWindow]atomic.Uint64, sec uint64, skipCurrent bool) uint64 {
	var n uint64
	for i := range ws {
		if skipCurrent && uint64(i) == sec%budgetWindow {
			continue
		}
		n += countIn(ws[i].Load(), sec)
	}
	return n
}
