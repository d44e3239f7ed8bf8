package balancer

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

var fail503 = Outcome{Status: 503, Latency: time.Millisecond}

// ejections records what a pool's OnEjection hook is told.
type ejections struct {
	mu     sync.Mutex
	events []ejectionEvent
}

type ejectionEvent struct {
	addr    string
	ejected bool
	period  time.Duration
}

func (e *ejections) record(addr string, ejected bool, period time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ejectionEvent{addr, ejected, period})
}

func (e *ejections) all() []ejectionEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ejectionEvent(nil), e.events...)
}

// periods returns the periods of the ejections recorded so far.
func (e *ejections) periods() []time.Duration {
	var ps []time.Duration
	for _, ev := range e.all() {
		if ev.ejected {
			ps = append(ps, ev.period)
		}
	}
	return ps
}

// outlierPool returns a pool of addrs with outlier detection od, its hook
// recording into the returned ejections.
func outlierPool(t *testing.T, od OutlierOptions, prev *Pool, addrs ...string) (*Pool, *ejections) {
	t.Helper()
	o := testOptions(addrs...)
	o.Outlier = od.WithDefaults()
	p := newTestPool(t, o, prev)
	rec := &ejections{}
	p.OnEjection(rec.record)
	return p, rec
}

// failOn sends n failed exchanges through p to b, as the gateway would
// report them.
func failOn(t *testing.T, p *Pool, b *Backend, n int) {
	t.Helper()
	for range n {
		if !b.reserve() {
			t.Fatalf("%s has no room", b.Addr())
		}
		p.Release(b, fail503)
	}
}

// fakeClock is a clock that moves only when told, for outlier detection's
// bookkeeping (its timers run on real time).
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// returned is a condition for testnet.Eventually: b is back in.
func returned(b *Backend) func() bool { return func() bool { return !b.Ejected() } }

func TestOutlierEjection(t *testing.T) {
	long := OutlierOptions{ConsecutiveFailures: 3, BaseEjectionTime: time.Hour}
	t.Run("ejects a backend after the threshold of failures in a row, and tells the hook", func(t *testing.T) {
		p, rec := outlierPool(t, long, nil, "a:1", "b:2")
		a := p.Backends()[0]
		failOn(t, p, a, 2)
		if a.Ejected() {
			t.Fatal("ejected after 2 failures, threshold 3")
		}
		failOn(t, p, a, 1)
		if !a.Ejected() || a.Healthy() {
			t.Fatal("not ejected after 3 failures in a row")
		}
		if got := rec.all(); len(got) != 1 || got[0] != (ejectionEvent{"a:1", true, time.Hour}) {
			t.Errorf("hook told %+v, want one ejection of a:1 for 1h", got)
		}
		s := a.Stats()
		if s.Ejections != 1 || s.EjectionPeriod != time.Hour || s.FailStreak != 0 || p.Stats().Ejected != 1 {
			t.Errorf("stats %+v, pool %+v; want 1 ejection of 1h, the streak reset", s, p.Stats())
		}
		for range 10 {
			if b := mustAcquire(t, p, nil); b == a {
				t.Fatal("an ejected backend was picked")
			} else {
				p.Release(b, ok200)
			}
		}
	})
	t.Run("counts only failures in a row", func(t *testing.T) {
		p, _ := outlierPool(t, long, nil, "a:1", "b:2")
		a := p.Backends()[0]
		failOn(t, p, a, 2)
		a.reserve()
		p.Release(a, ok200)
		failOn(t, p, a, 2)
		if a.Ejected() {
			t.Error("ejected although a success broke the run")
		}
	})
	t.Run("counts connect failures and timeouts", func(t *testing.T) {
		p, _ := outlierPool(t, long, nil, "a:1", "b:2")
		a := p.Backends()[0]
		for _, err := range []error{ErrConnect, ErrTimeout, errors.New("bad response")} {
			a.reserve()
			p.Release(a, Outcome{Err: err})
		}
		if !a.Ejected() {
			t.Error("three failed exchanges without a response did not eject")
		}
	})
	t.Run("is off with consecutive_failures Off", func(t *testing.T) {
		p, _ := outlierPool(t, OutlierOptions{ConsecutiveFailures: Off}, nil, "a:1", "b:2")
		failOn(t, p, p.Backends()[0], 100)
		if p.Backends()[0].Ejected() {
			t.Error("ejected with outlier detection off")
		}
	})
	t.Run("ejects no more than max_ejection_percent of the backends", func(t *testing.T) {
		tests := []struct {
			percent, backends, want int
		}{
			{50, 4, 2},
			{50, 3, 1},
			{10, 2, 1},  // at least one in a pool of two or more
			{50, 1, 0},  // never the only backend...
			{100, 1, 1}, // ...unless told so
			{100, 3, 3},
		}
		for _, tt := range tests {
			addrs := []string{"a:1", "b:2", "c:3", "d:4"}[:tt.backends]
			od := long
			od.MaxEjectionPercent = tt.percent
			p, _ := outlierPool(t, od, nil, addrs...)
			for _, b := range p.Backends() {
				failOn(t, p, b, 6) // twice the threshold: a refused ejection is tried again
			}
			if got := p.Stats().Ejected; got != tt.want {
				t.Errorf("%d%% of %d backends: %d ejected, want %d", tt.percent, tt.backends, got, tt.want)
			}
		}
	})
	t.Run("keeps a backend with failing probes out after its ejection ends", func(t *testing.T) {
		p, _ := outlierPool(t, OutlierOptions{ConsecutiveFailures: 1, BaseEjectionTime: 20 * time.Millisecond}, nil, "a:1", "b:2")
		a := p.Backends()[0]
		failOn(t, p, a, 1)
		a.SetHealthy(false)
		testnet.Eventually(t, "the ejection to end", returned(a))
		if a.Healthy() {
			t.Error("the end of an ejection overrode the active check")
		}
	})
}

func TestOutlierEjectionPeriods(t *testing.T) {
	base := 20 * time.Millisecond
	p, rec := outlierPool(t, OutlierOptions{ConsecutiveFailures: 1, BaseEjectionTime: base, MaxEjectionTime: 3 * base}, nil, "a:1", "b:2")
	clock := newFakeClock()
	p.outlier.now = clock.now
	a := p.Backends()[0]
	ejectAndWait := func() {
		t.Helper()
		failOn(t, p, a, 1)
		if !a.Ejected() {
			t.Fatal("not ejected")
		}
		testnet.Eventually(t, "the ejection to end", returned(a))
	}

	for range 4 { // back-to-back ejections: each longer, up to the max
		ejectAndWait()
	}
	clock.advance(2 * base) // two good periods forgive two levels
	ejectAndWait()
	want := []time.Duration{base, 2 * base, 3 * base, 3 * base, 2 * base}
	if got := rec.periods(); !equalDurations(got, want) {
		t.Errorf("ejection periods %v, want %v", got, want)
	}
	for _, ev := range rec.all() {
		if !ev.ejected && ev.period != 0 {
			t.Errorf("a return was told with period %v, want 0", ev.period)
		}
	}
	if s := a.Stats(); s.Ejections != 5 || s.EjectionPeriod != 0 || s.Ejected {
		t.Errorf("stats %+v, want 5 ejections, back in", s)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOutlierEjectionAcrossReloads(t *testing.T) {
	// Long enough that the checks made right after a reload run before the
	// ejection ends, even on a busy machine.
	short := OutlierOptions{ConsecutiveFailures: 1, BaseEjectionTime: 500 * time.Millisecond}
	reload := func(t *testing.T, prev *Pool, od OutlierOptions, change func(*Options)) (*Pool, *ejections) {
		t.Helper()
		o := prev.Options()
		o.Outlier = od.WithDefaults()
		if change != nil {
			change(&o)
		}
		next := newTestPool(t, o, prev)
		rec := &ejections{}
		next.OnEjection(rec.record)
		prev.Retire(next)
		return next, rec
	}
	returnsThroughNext := func(t *testing.T, next *Pool, rec *ejections) {
		t.Helper()
		b := next.Backends()[0]
		if !b.Ejected() {
			t.Fatal("the reload brought the ejected backend back early")
		}
		testnet.Eventually(t, "the ejection to end after the reload", returned(b))
		if got := rec.all(); len(got) != 1 || got[0] != (ejectionEvent{b.Addr(), false, 0}) {
			t.Errorf("the new pool's hook was told %+v, want the return", got)
		}
	}

	t.Run("a reused backend stays out, and comes back on the new pool's timer", func(t *testing.T) {
		prev, _ := outlierPool(t, short, nil, "a:1", "b:2")
		failOn(t, prev, prev.Backends()[0], 1)
		next, rec := reload(t, prev, short, nil)
		if next.Backends()[0] != prev.Backends()[0] {
			t.Fatal("backend not reused")
		}
		returnsThroughNext(t, next, rec)
	})
	t.Run("a rebuilt backend inherits the ejection and its end", func(t *testing.T) {
		prev, _ := outlierPool(t, short, nil, "a:1", "b:2")
		failOn(t, prev, prev.Backends()[0], 1)
		next, rec := reload(t, prev, short, func(o *Options) { o.MaxIdleConnDuration += time.Second })
		if next.Backends()[0] == prev.Backends()[0] {
			t.Fatal("backend reused; the test needs it rebuilt")
		}
		if next.Backends()[0].Stats().Ejections != 1 {
			t.Error("the rebuilt backend lost its ejection count")
		}
		returnsThroughNext(t, next, rec)
	})
	t.Run("an ejection the old pool makes after the new one is built still ends", func(t *testing.T) {
		prev, _ := outlierPool(t, short, nil, "a:1", "b:2")
		o := prev.Options()
		next := newTestPool(t, o, prev)
		rec := &ejections{}
		next.OnEjection(rec.record)
		failOn(t, prev, prev.Backends()[0], 1) // a request of the old table fails during the swap
		prev.Retire(next)
		returnsThroughNext(t, next, rec)
	})
	t.Run("turning outlier detection off brings ejected backends back at once", func(t *testing.T) {
		prev, _ := outlierPool(t, OutlierOptions{ConsecutiveFailures: 1, BaseEjectionTime: time.Hour}, nil, "a:1", "b:2")
		failOn(t, prev, prev.Backends()[0], 1)
		next, _ := reload(t, prev, OutlierOptions{ConsecutiveFailures: Off}, nil)
		testnet.Eventually(t, "the backend to come back", returned(next.Backends()[0]))
	})
	t.Run("a backend ejected by hand is left alone", func(t *testing.T) {
		prev, _ := outlierPool(t, short, nil, "a:1", "b:2")
		prev.Backends()[0].SetEjected(true)
		next, _ := reload(t, prev, OutlierOptions{ConsecutiveFailures: Off}, nil)
		time.Sleep(20 * time.Millisecond)
		if !next.Backends()[0].Ejected() {
			t.Error("a reload ended an ejection outlier detection did not make")
		}
	})
}

func TestOutlierEjectionOfARealBackend(t *testing.T) {
	var calls atomic.Int64
	failing := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		calls.Add(1)
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
	})
	healthy := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
	p, rec := outlierPool(t, OutlierOptions{BaseEjectionTime: time.Hour}, nil, failing, healthy)
	exchange := func() int {
		b := mustAcquire(t, p, nil)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("/")
		req.Header.SetHost("backend")
		start := time.Now()
		err := b.Do(req, resp, time.Now().Add(5*time.Second))
		p.Release(b, Outcome{Status: resp.StatusCode(), Err: err, Latency: time.Since(start)})
		return resp.StatusCode()
	}
	for i := 0; !p.Backends()[0].Ejected(); i++ {
		if i == 100 {
			t.Fatalf("not ejected after 100 requests, %d of them 500s", calls.Load())
		}
		exchange()
	}
	if calls.Load() != 5 {
		t.Errorf("ejected after %d 500s, want 5 (the default threshold)", calls.Load())
	}
	for range 10 {
		if st := exchange(); st != 200 {
			t.Fatalf("status %d after the ejection, want every request on the healthy backend", st)
		}
	}
	if got := rec.all(); len(got) != 1 || got[0].addr != failing {
		t.Errorf("hook told %+v, want one ejection of %s", got, failing)
	}
}
