package balancer

import (
	"sync"
	"sync/atomic"
	"time"
)

// ejection is passive outlier detection's record of one backend. It lives
// in the Backend, not the Pool, so that it survives a reload: the next pool
// finds the ejection, its level and its end where the previous one left
// them. Fields are written under the lock of the pool that ejects or
// restores the backend and read by Stats without one; until and period are
// stored before seq, and seq before the backend's ejected bit, so whoever
// sees the bit sees the ejection that set it.
type ejection struct {
	seq      atomic.Uint64 // ejections so far; a timer restores only its own
	level    atomic.Int64  // multiplier of the last period, before decay
	period   atomic.Int64  // time.Duration of the current ejection; 0 while in
	until    atomic.Int64  // Unix ns at which the current ejection ends
	returned atomic.Int64  // Unix ns of the last return; 0 before any
}

// copyFrom carries old's record over to a backend rebuilt by a reload.
func (e *ejection) copyFrom(old *ejection) {
	e.level.Store(old.level.Load())
	e.period.Store(old.period.Load())
	e.until.Store(old.until.Load())
	e.returned.Store(old.returned.Load())
	e.seq.Store(old.seq.Load())
}

// outlier is one pool's passive outlier detection. It looks at each
// released exchange (observe: one comparison unless a run of failures has
// just reached the threshold), ejects under a lock taken only then, and
// lets the backend back with a timer: no goroutine per request, no
// goroutine at all between ejections.
type outlier struct {
	opts     OutlierOptions
	backends []*Backend
	limit    int              // backends that may be ejected at once
	now      func() time.Time // injectable for tests
	wake     func()           // the pool serves its waiters when a backend returns

	mu      sync.Mutex
	timers  map[*Backend]ejectTimer                               // guarded by mu
	retired bool                                                  // guarded by mu; no more ejections
	hook    func(addr string, ejected bool, period time.Duration) // guarded by mu
}

// ejectTimer ends the ejection number seq of a backend.
type ejectTimer struct {
	t   *time.Timer
	seq uint64
}

func newOutlier(o OutlierOptions, backends []*Backend, wake func()) *outlier {
	o = o.WithDefaults() // never divide by a zero base
	n := len(backends)
	limit := n * o.MaxEjectionPercent / 100
	if limit < 1 && n > 1 {
		limit = 1 // a small pool may still lose its one bad backend
	}
	return &outlier{
		opts: o, backends: backends, limit: limit, now: time.Now, wake: wake,
		timers: make(map[*Backend]ejectTimer),
	}
}

// observe is told the run of failures that an exchange left b with (0 after
// a success) and ejects b when the run reaches the threshold. A run that
// goes on while b cannot be ejected (the pool is at max_ejection_percent)
// tries again at each further multiple of the threshold, not at every
// failure, so a pool that fails everywhere does not take the lock per
// request.
func (d *outlier) observe(b *Backend, streak int64) {
	n := int64(d.opts.ConsecutiveFailures)
	if n <= 0 || streak < n || streak%n != 0 {
		return
	}
	d.eject(b)
}

// eject takes b out for its next period, unless it is out already or the
// pool has as many backends ejected as it may.
func (d *outlier) eject(b *Backend) {
	d.mu.Lock()
	if d.retired || b.Ejected() || d.ejected() >= d.limit {
		d.mu.Unlock()
		return
	}
	now := d.now()
	period := d.nextPeriod(b, now)
	b.ej.period.Store(int64(period))
	b.ej.until.Store(now.Add(period).UnixNano())
	seq := b.ej.seq.Add(1)
	b.SetEjected(true)
	b.failStreak.Store(0) // it comes back with a clean record
	d.scheduleLocked(b, seq, period)
	hook := d.hook
	d.mu.Unlock()
	if hook != nil {
		hook(b.addr, true, period)
	}
}

// nextPeriod returns how long b's next ejection lasts and records its level:
// the last level, less one for every base period b has spent back in the
// pool since, plus one; the period is base × level, capped at max.
func (d *outlier) nextPeriod(b *Backend, now time.Time) time.Duration {
	base, limit := d.opts.BaseEjectionTime, d.opts.MaxEjectionTime
	level := b.ej.level.Load()
	if r := b.ej.returned.Load(); r != 0 {
		level -= int64(now.Sub(time.Unix(0, r)) / base)
	}
	// The level stops where the period reaches max, so that decaying from
	// the top takes max/base good periods, not an unbounded number.
	top := int64((limit + base - 1) / base)
	level = min(max(level, 0)+1, top)
	b.ej.level.Store(level)
	return min(base*time.Duration(level), limit)
}

// ejected counts the backends ejected now. eject calls it under the lock,
// so that two ejections cannot both take the last place.
func (d *outlier) ejected() int {
	n := 0
	for _, b := range d.backends {
		if b.Ejected() {
			n++
		}
	}
	return n
}

// scheduleLocked arranges for ejection seq of b to end after the given time
// (at once when it is not positive), replacing any timer d had for b.
func (d *outlier) scheduleLocked(b *Backend, seq uint64, after time.Duration) {
	if old, ok := d.timers[b]; ok {
		old.t.Stop()
	}
	d.timers[b] = ejectTimer{seq: seq, t: time.AfterFunc(after, func() { d.restore(b, seq) })}
}

// restore ends ejection seq of b, if it is still the current one: a timer of
// an earlier ejection, or one that another pool (before or after a reload)
// also set, does nothing.
func (d *outlier) restore(b *Backend, seq uint64) {
	d.mu.Lock()
	if t, ok := d.timers[b]; ok && t.seq == seq {
		delete(d.timers, b)
	}
	if b.ej.seq.Load() != seq || !b.SetEjected(false) {
		d.mu.Unlock()
		return
	}
	b.ej.period.Store(0)
	b.ej.returned.Store(d.now().UnixNano())
	b.failStreak.Store(0) // failures of requests it held while out are old news
	hook := d.hook
	d.mu.Unlock()
	if hook != nil {
		hook(b.addr, false, 0)
	}
	d.wake()
}

// adopt takes over the ejections that a previous pool made on d's backends:
// each gets a timer of d's for the time it has left, so it still ends after
// the previous pool is retired. With outlier detection now off, they end at
// once. A backend ejected by hand (SetEjected, no recorded end) is left
// alone. Calling adopt again is harmless.
func (d *outlier) adopt() {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.backends {
		if !b.Ejected() {
			continue
		}
		seq, until := b.ej.seq.Load(), b.ej.until.Load()
		if until == 0 {
			continue
		}
		if t, ok := d.timers[b]; ok && t.seq == seq {
			continue
		}
		left := time.Unix(0, until).Sub(now)
		if !d.opts.Enabled() {
			left = 0
		}
		d.scheduleLocked(b, seq, left)
	}
}

// retire stops d's timers and ejections: the pool that replaced d's has
// adopted the ejections in progress.
func (d *outlier) retire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.retired = true
	for b, t := range d.timers {
		t.t.Stop()
		delete(d.timers, b)
	}
}

// setHook installs the function told of every ejection and return.
func (d *outlier) setHook(fn func(addr string, ejected bool, period time.Duration)) {
	d.mu.Lock()
	d.hook = fn
	d.mu.Unlock()
}
