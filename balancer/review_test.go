package balancer

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Review tests: each one pins down a behaviour found wrong (or suspected
// wrong) in a review of the balancer, against real loopback servers.

func TestReviewReloadThatDisablesHealthChecksBringsBackendsBack(t *testing.T) {
	// A backend the checker took out stays out forever when the reload that
	// reuses it turns health checks off: nothing will ever probe it again,
	// and without checks "every backend is considered healthy".
	addr, _ := startServer(t, func(ctx *fasthttp.RequestCtx) {})
	o := testOptions(addr)
	o.HealthCheck = fastChecks()
	prev := newTestPool(t, o, nil)
	prev.Backends()[0].SetHealthy(false)

	t.Run("when the backend is reused", func(t *testing.T) {
		next := o
		next.HealthCheck = HealthCheckOptions{}.WithDefaults() // path removed
		p := newTestPool(t, next, prev)
		if p.Backends()[0] != prev.Backends()[0] {
			t.Fatal("backend was not reused; the test needs it reused")
		}
		if p.Pick(nil) == nil {
			t.Fatal("no backend picked: checks are off, yet the backend stays unhealthy forever")
		}
	})
	t.Run("when the backend is rebuilt with new settings", func(t *testing.T) {
		prev.Backends()[0].SetHealthy(false)
		next := o
		next.HealthCheck = HealthCheckOptions{}.WithDefaults()
		next.MaxIdleConnDuration = o.MaxIdleConnDuration + time.Second
		p := newTestPool(t, next, prev)
		if p.Pick(nil) == nil {
			t.Fatal("no backend picked: checks are off, yet the rebuilt backend inherited 'unhealthy'")
		}
	})
}

func TestReviewCheckerReassertsItsVerdict(t *testing.T) {
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
	waitFor(t, "the old checker to mark the backend unhealthy", func() bool { return !b.Healthy() })
	old.Stop()
	hs.status.Store(fasthttp.StatusOK)
	close(release)

	// The backend answers 200 from now on: the new checker must restore it.
	waitFor(t, "the running checker to bring the passing backend back", b.Healthy)
}

func TestReviewCheckerMarksAHangingBackendUnhealthy(t *testing.T) {
	// A backend that accepts the probe's connection and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	b := NewBackend(ln.Addr().String(), 1, testOptions())
	t.Cleanup(b.Close)
	c := NewChecker(fastChecks(), []Target{b}, nil)
	c.jitter = func(time.Duration) time.Duration { return 0 }
	c.Start()
	waitFor(t, "the hanging backend to be marked unhealthy", func() bool { return !b.Healthy() })
	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return while a probe hung")
	}
}

func TestReviewDeadlines(t *testing.T) {
	t.Run("a body that stops half way is ErrTimeout, not a bad response", func(t *testing.T) {
		release := make(chan struct{})
		rb := startRawBackend(t, func(w net.Conn, path string, conn, req int) {
			_, _ = w.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
			<-release
		})
		t.Cleanup(func() { close(release) })
		b := NewBackend(rb.addr, 1, testOptions())
		t.Cleanup(b.Close)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("/")
		req.Header.SetHost("backend")
		err := b.Do(req, resp, time.Now().Add(200*time.Millisecond))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})

	t.Run("every connection busy is bounded by the request's deadline", func(t *testing.T) {
		release := make(chan struct{})
		var seen atomic.Int32
		rb := startRawBackend(t, func(w net.Conn, path string, conn, req int) {
			seen.Add(1)
			<-release
			_, _ = w.Write([]byte(okResponse(path)))
		})
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		o := testOptions()
		o.MaxConnsPerBackend = 1
		b := NewBackend(rb.addr, 1, o)
		t.Cleanup(b.Close)

		first := make(chan error, 1)
		go func() { _, err := tryGet(b, "/hold"); first <- err }()
		waitFor(t, "the first request to hold the only connection", func() bool { return seen.Load() == 1 })

		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("/wait")
		req.Header.SetHost("backend")
		start := time.Now()
		err := b.Do(req, resp, start.Add(300*time.Millisecond))
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Do took %v with a 300ms deadline", took)
		}
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("err = %v, want ErrTimeout", err)
		}
		if n := b.InFlight(); n != 1 {
			t.Errorf("InFlight = %d after the waiter gave up, want 1 (the holder)", n)
		}
		close(release)
		if err := <-first; err != nil {
			t.Errorf("first request: %v", err)
		}
		if n := b.InFlight(); n != 0 {
			t.Errorf("InFlight = %d at rest, want 0", n)
		}
	})
}

func TestReviewRetiredBackend(t *testing.T) {
	t.Run("an in-flight request finishes and its connection is closed", func(t *testing.T) {
		release := make(chan struct{})
		var seen atomic.Int32
		rb := startRawBackend(t, func(w net.Conn, path string, conn, req int) {
			seen.Add(1)
			if path == "/slow" {
				<-release
			}
			_, _ = w.Write([]byte(okResponse(path)))
		})
		b := NewBackend(rb.addr, 1, testOptions())
		get(t, b, "/warm") // one idle connection
		done := make(chan string, 1)
		go func() { body, _ := tryGet(b, "/slow"); done <- body }()
		waitFor(t, "the slow request to reach the backend", func() bool { return seen.Load() == 2 })
		b.Close()
		close(release)
		if body := <-done; body != "/slow" {
			t.Fatalf("in-flight request got %q, want /slow", body)
		}
		if n := b.Stats().OpenConns; n != 0 {
			t.Errorf("OpenConns = %d after retirement, want 0", n)
		}
	})
}
