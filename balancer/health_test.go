package balancer

import (
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestHysteresis(t *testing.T) {
	tests := []struct {
		name    string
		start   bool
		results string // p = pass, f = fail
		want    string // verdict after each result: H healthy, U unhealthy; * marks a change
	}{
		{"a healthy target falls after fall failures in a row", true, "fff", "HHU*"},
		{"a pass resets the failure streak", true, "ffpfff", "HHHHHU*"},
		{"an unhealthy target rises after rise passes in a row", false, "pp", "UH*"},
		{"a failure resets the pass streak", false, "pfpp", "UUUH*"},
		{"it flips back and forth with hysteresis", true, "fffppf", "HHU*UH*H"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHysteresis(2, 3, tt.start)
			var got []byte
			for _, r := range tt.results {
				healthy, changed := h.observe(r == 'p')
				if healthy {
					got = append(got, 'H')
				} else {
					got = append(got, 'U')
				}
				if changed {
					got = append(got, '*')
				}
			}
			if string(got) != tt.want {
				t.Errorf("verdicts = %s, want %s", got, tt.want)
			}
		})
	}
}

// healthServer answers /healthz with the status in status, counting probes
// by the status they got.
type healthServer struct {
	addr   string
	stop   func()
	status atomic.Int32
	served [600]atomic.Int32
}

func startHealthServer(t *testing.T) *healthServer {
	t.Helper()
	hs := &healthServer{}
	hs.status.Store(fasthttp.StatusOK)
	hs.addr, hs.stop = testnet.Start(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/healthz" {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			return
		}
		s := hs.status.Load()
		hs.served[s].Add(1)
		ctx.SetStatusCode(int(s))
	}})
	return hs
}

type transition struct {
	addr    string
	healthy bool
	served  int32 // probes answered with the current status when it fired
}

func fastChecks() HealthCheckOptions {
	return HealthCheckOptions{Path: "/healthz", Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 2, Fall: 3}
}

func startChecker(t *testing.T, o HealthCheckOptions, targets []Target, onChange func(string, bool, string)) *Checker {
	t.Helper()
	c := NewChecker(o, targets, onChange)
	c.jitter = func(time.Duration) time.Duration { return 0 }
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

func waitTransition(t *testing.T, ch <-chan transition) transition {
	t.Helper()
	select {
	case tr := <-ch:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("no health transition within 10s")
		return transition{}
	}
}

func TestCheckerFollowsTheHealthEndpoint(t *testing.T) {
	hs := startHealthServer(t)
	b := NewBackend(hs.addr, 1, testOptions())
	changes := make(chan transition, 10)
	startChecker(t, fastChecks(), []Target{b}, func(addr string, healthy bool, _ string) {
		s := hs.status.Load()
		changes <- transition{addr, healthy, hs.served[s].Load()}
	})

	// Let a few passes go by: a healthy backend stays healthy, silently.
	for hs.served[200].Load() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	hs.status.Store(fasthttp.StatusServiceUnavailable)
	tr := waitTransition(t, changes)
	// served is read when onChange runs; on a loaded machine the next probe
	// may already have been answered by then, so allow one more.
	if tr.addr != hs.addr || tr.healthy || tr.served < 3 || tr.served > 4 {
		t.Fatalf("transition = %+v, want %s unhealthy after exactly 3 failures", tr, hs.addr)
	}
	if b.Healthy() {
		t.Fatal("backend still healthy after the transition")
	}

	// More failures change nothing.
	for hs.served[503].Load() < 6 {
		time.Sleep(10 * time.Millisecond)
	}
	hs.status.Store(fasthttp.StatusFound) // 3xx passes
	tr = waitTransition(t, changes)
	if !tr.healthy || tr.served < 2 || tr.served > 3 {
		t.Fatalf("transition = %+v, want healthy after exactly 2 passes", tr)
	}
	if !b.Healthy() {
		t.Fatal("backend still unhealthy after the transition")
	}
	if len(changes) != 0 {
		t.Errorf("%d extra transitions, want one per change", len(changes))
	}
}

func TestCheckerMarksAStoppedBackendUnhealthy(t *testing.T) {
	hs := startHealthServer(t)
	b := NewBackend(hs.addr, 1, testOptions())
	changes := make(chan transition, 10)
	startChecker(t, fastChecks(), []Target{b}, func(addr string, healthy bool, _ string) {
		changes <- transition{addr: addr, healthy: healthy}
	})
	for hs.served[200].Load() < 1 {
		time.Sleep(10 * time.Millisecond)
	}
	hs.stop()
	if tr := waitTransition(t, changes); tr.healthy || b.Healthy() {
		t.Fatalf("transition = %+v, want unhealthy", tr)
	}
}

func TestCheckerStartsFromTheBackendsCurrentHealth(t *testing.T) {
	hs := startHealthServer(t)
	b := NewBackend(hs.addr, 1, testOptions())
	b.SetHealthy(false) // as a backend reused across a reload may be
	changes := make(chan transition, 10)
	startChecker(t, fastChecks(), []Target{b}, func(addr string, healthy bool, _ string) {
		changes <- transition{addr: addr, healthy: healthy}
	})
	if tr := waitTransition(t, changes); !tr.healthy || !b.Healthy() {
		t.Fatalf("transition = %+v, want healthy", tr)
	}
}

func TestCheckerWithoutPathDoesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewBackend("127.0.0.1:1", 1, testOptions())
	c := NewChecker(HealthCheckOptions{}, []Target{b}, nil)
	c.Start()
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Start, want %d", n, before)
	}
	c.Stop()
	c.Stop()
	if !b.Healthy() {
		t.Error("backend marked unhealthy with checks disabled")
	}
}

func TestCheckerStopLeavesNoGoroutines(t *testing.T) {
	hs := startHealthServer(t)
	down := startHealthServer(t)
	down.stop()
	// Other tests' backends may still have fasthttp connection cleaners
	// sleeping; only goroutines that appear from here on count.
	before := clientGoroutines()

	targets := []Target{NewBackend(hs.addr, 1, testOptions()), NewBackend(down.addr, 1, testOptions())}
	c := NewChecker(fastChecks(), targets, nil)
	c.Start()
	c.Start() // a second Start adds nothing
	for hs.served[200].Load() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	// A snapshot may catch a checker between stacks the filter knows, so
	// look a few times before deciding the test cannot see them.
	// Count by goroutine id: other tests' fasthttp cleaners in before may
	// exit meanwhile, so a difference of totals can even be negative.
	seen := 0
	for try := 0; try < 100 && seen < 2; try++ {
		seen = 0
		for id := range clientGoroutines() {
			if _, ok := before[id]; !ok {
				seen++
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if seen < 2 {
		t.Fatalf("%d new checker goroutines while running, want at least 2: the test cannot see them", seen)
	}
	c.Stop()
	c.Stop()

	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		for id, stack := range clientGoroutines() {
			if _, ok := before[id]; !ok {
				left = append(left, stack)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Stop:\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clientGoroutines returns the stacks, by goroutine header, of goroutines
// running checker or fasthttp client code. (The servers' own goroutines,
// worker pool and date updater, come and go and are not counted.)
func clientGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	found := make(map[string]string)
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(g, "balancer.(*Checker)") || strings.Contains(g, "fasthttp.(*HostClient)") {
			id, _, _ := strings.Cut(g, " [")
			found[id] = g
		}
	}
	return found
}

func TestCheckerReassertsItsVerdict(t *testing.T) {
	// During a reload two checkers probe a reused backend: the new one reads
	// the backend's health when it starts, the old one may still flip it
	// before it is stopped. The new checker must not then keep a verdict
	// that disagrees with the backend for ever.
	hs := startHealthServer(t)
	b := NewBackend(hs.addr, 1, testOptions())
	t.Cleanup(b.Close)

	hc := fastChecks()
	hc.Fall = 1
	old := NewChecker(hc, []Target{b}, nil)
	old.jitter = func(time.Duration) time.Duration { return 0 }

	started := make(chan struct{})
	release := make(chan struct{})
	next := NewChecker(fastChecks(), []Target{b}, nil)
	next.jitter = func(time.Duration) time.Duration {
		close(started) // initialHealth has been read: healthy
		<-release
		return 0
	}
	old.Start()
	next.Start()
	t.Cleanup(old.Stop)
	t.Cleanup(next.Stop)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	<-started

	// The backend fails a probe; the old checker (fall 1) takes it out.
	hs.status.Store(fasthttp.StatusServiceUnavailable)
	testnet.Eventually(t, "the old checker to mark the backend unhealthy", func() bool { return !b.Healthy() })
	old.Stop()
	hs.status.Store(fasthttp.StatusOK)
	close(release)

	// The backend answers 200 from now on: the new checker must restore it.
	testnet.Eventually(t, "the running checker to bring the passing backend back", b.Healthy)
}

func TestCheckerMarksAHangingBackendUnhealthy(t *testing.T) {
	// A backend that reads the probe and never answers.
	rb := testnet.StartRawBackend(t, func(net.Conn, testnet.RawRequest) {})
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)
	c := NewChecker(fastChecks(), []Target{b}, nil)
	c.jitter = func(time.Duration) time.Duration { return 0 }
	c.Start()
	testnet.Eventually(t, "the hanging backend to be marked unhealthy", func() bool { return !b.Healthy() })
	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return while a probe hung")
	}
}
