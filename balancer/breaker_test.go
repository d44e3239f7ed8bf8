package balancer

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// breakerPool returns a pool of addrs with the circuit breaker cb (and
// defaults for the rest); outlier detection is off so that no test here
// ejects by accident.
func breakerPool(t *testing.T, cb CircuitBreakerOptions, addrs ...string) *Pool {
	t.Helper()
	o := testOptions(addrs...)
	o.CircuitBreaker = cb.WithDefaults()
	o.Outlier.ConsecutiveFailures = Off
	return newTestPool(t, o, nil)
}

var ok200 = Outcome{Status: 200, Latency: time.Millisecond}

func mustAcquire(t *testing.T, p *Pool, not *Backend) *Backend {
	t.Helper()
	b, err := p.Acquire(nil, not, time.Now().Add(10*time.Second))
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return b
}

// acquireAsync starts an Acquire that will have to wait, and returns once it
// is queued; its result arrives on the returned channel.
func acquireAsync(t *testing.T, p *Pool, not *Backend) <-chan acquired {
	t.Helper()
	queued := p.Stats().Queued
	ch := make(chan acquired, 1)
	go func() {
		b, err := p.Acquire(nil, not, time.Now().Add(10*time.Second))
		ch <- acquired{b, err}
	}()
	testnet.Eventually(t, "the request to queue", func() bool { return p.Stats().Queued == queued+1 })
	return ch
}

type acquired struct {
	b   *Backend
	err error
}

func TestAcquireAndRelease(t *testing.T) {
	t.Run("count a place in flight around a real exchange", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
			entered <- struct{}{}
			<-release
		})
		p := breakerPool(t, CircuitBreakerOptions{}, addr)
		b := mustAcquire(t, p, nil)
		done := make(chan error, 1)
		go func() { _, err := tryGet(b, "/"); done <- err }()
		<-entered
		if n := b.InFlight(); n != 1 {
			t.Errorf("InFlight = %d during the exchange, want 1", n)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		p.Release(b, ok200)
		if s := b.Stats(); s.InFlight != 0 || s.Requests != 1 || s.LatencyEWMA != time.Millisecond {
			t.Errorf("after Release: %+v, want nothing in flight, 1 request, the latency observed", s)
		}
	})
	t.Run("pass over a backend at its cap", func(t *testing.T) {
		p := breakerPool(t, CircuitBreakerOptions{MaxRequestsPerBackend: 1}, "a:1", "b:2")
		first, second := mustAcquire(t, p, nil), mustAcquire(t, p, nil)
		if first == second {
			t.Fatalf("both requests went to %s, whose cap is 1", first.Addr())
		}
		if first.Available() || !first.Healthy() {
			t.Error("a backend at its cap must be healthy but not available")
		}
		p.Release(first, ok200)
		if !first.Available() {
			t.Error("a released backend stays unavailable")
		}
		p.Release(second, ok200)
	})
	t.Run("fail with ErrNoBackend when no backend is healthy", func(t *testing.T) {
		p := breakerPool(t, CircuitBreakerOptions{MaxRequestsPerBackend: 1}, "a:1", "b:2")
		p.Backends()[0].SetHealthy(false)
		b := mustAcquire(t, p, nil)
		if _, err := p.Acquire(nil, b, time.Time{}); !errors.Is(err, ErrNoBackend) {
			t.Errorf("a retry avoiding the only healthy backend: err = %v, want ErrNoBackend", err)
		}
		p.Backends()[1].SetEjected(true)
		if _, err := p.Acquire(nil, nil, time.Time{}); !errors.Is(err, ErrNoBackend) {
			t.Errorf("no backend healthy: err = %v, want ErrNoBackend", err)
		}
		p.Release(b, ok200)
	})
	t.Run("refuse past the pool's cap with ErrOverloaded when there is no queue", func(t *testing.T) {
		p := breakerPool(t, CircuitBreakerOptions{MaxRequests: 1, MaxQueue: Off}, "a:1", "b:2")
		b := mustAcquire(t, p, nil)
		if _, err := p.Acquire(nil, nil, time.Time{}); !errors.Is(err, ErrOverloaded) {
			t.Errorf("err = %v, want ErrOverloaded", err)
		}
		p.Release(b, ok200)
		p.Release(mustAcquire(t, p, nil), ok200)
		if s := p.Stats(); s.Overloaded != 1 || s.Waits != 0 || s.InFlight != 0 {
			t.Errorf("Stats = %+v, want 1 overloaded, no waits, nothing in flight", s)
		}
	})
}

func TestAcquireQueue(t *testing.T) {
	long := CircuitBreakerOptions{MaxRequestsPerBackend: 1, QueueTimeout: 10 * time.Second}
	t.Run("AcquireAt keeps the caller's clock reading unless it waited", func(t *testing.T) {
		p := breakerPool(t, long, "a:1")
		then := time.Now().Add(-time.Hour) // recognisable: no fresh reading is this old
		held, now, err := p.AcquireAt(nil, nil, then, time.Now().Add(10*time.Second))
		if err != nil || !now.Equal(then) {
			t.Fatalf("a free place: now = %v, err %v; want the caller's reading back", now, err)
		}
		time.AfterFunc(50*time.Millisecond, func() { p.Release(held, ok200) })
		b, now, err := p.AcquireAt(nil, nil, then, time.Now().Add(10*time.Second))
		if err != nil || now.Sub(then) < time.Hour {
			t.Fatalf("after a wait: now = %v, err %v; want a fresh reading", now, err)
		}
		p.Release(b, ok200)
	})
	t.Run("serves waiters first come first served", func(t *testing.T) {
		p := breakerPool(t, long, "a:1")
		held := mustAcquire(t, p, nil)
		var waiters []<-chan acquired
		for range 5 {
			waiters = append(waiters, acquireAsync(t, p, nil))
		}
		for i, w := range waiters {
			p.Release(held, ok200)
			got := <-w
			if got.err != nil {
				t.Fatalf("waiter %d: %v", i, got.err)
			}
			for _, later := range waiters[i+1:] {
				select {
				case r := <-later:
					t.Fatalf("a later waiter was served before waiter %d: %+v", i, r)
				default:
				}
			}
			held = got.b
		}
		p.Release(held, ok200)
		if s := p.Stats(); s.Waits != 5 || s.Queued != 0 || s.InFlight != 0 {
			t.Errorf("Stats = %+v, want 5 waits, none queued or in flight", s)
		}
	})
	t.Run("refuses at once when the queue is full", func(t *testing.T) {
		cb := long
		cb.MaxQueue = 1
		p := breakerPool(t, cb, "a:1")
		held := mustAcquire(t, p, nil)
		w := acquireAsync(t, p, nil)
		start := time.Now()
		if _, err := p.Acquire(nil, nil, time.Now().Add(10*time.Second)); !errors.Is(err, ErrOverloaded) {
			t.Errorf("err = %v, want ErrOverloaded", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("a refusal took %v; it must not wait", took)
		}
		p.Release(held, ok200)
		p.Release((<-w).b, ok200)
	})
	t.Run("gives up at queue_timeout", func(t *testing.T) {
		p := breakerPool(t, CircuitBreakerOptions{MaxRequestsPerBackend: 1, QueueTimeout: 50 * time.Millisecond}, "a:1")
		held := mustAcquire(t, p, nil)
		start := time.Now()
		_, err := p.Acquire(nil, nil, time.Now().Add(10*time.Second))
		if took := time.Since(start); !errors.Is(err, ErrOverloaded) || took < 50*time.Millisecond || took > 5*time.Second {
			t.Errorf("err = %v after %v, want ErrOverloaded after 50ms", err, took)
		}
		p.Release(held, ok200)
		if s := p.Stats(); s.Queued != 0 || s.Overloaded != 1 {
			t.Errorf("Stats = %+v, want the waiter gone and counted as overloaded", s)
		}
	})
	t.Run("gives up at the request's deadline, before queue_timeout", func(t *testing.T) {
		p := breakerPool(t, long, "a:1")
		held := mustAcquire(t, p, nil)
		start := time.Now()
		_, err := p.Acquire(nil, nil, start.Add(50*time.Millisecond))
		if took := time.Since(start); !errors.Is(err, ErrOverloaded) || took > 5*time.Second {
			t.Errorf("err = %v after %v, want ErrOverloaded at the 50ms deadline", err, took)
		}
		if _, err := p.Acquire(nil, nil, start.Add(-time.Second)); !errors.Is(err, ErrOverloaded) {
			t.Errorf("deadline passed: err = %v, want ErrOverloaded at once", err)
		}
		p.Release(held, ok200)
	})
	t.Run("tells a waiter ErrNoBackend when its backends went down", func(t *testing.T) {
		p := breakerPool(t, long, "a:1")
		held := mustAcquire(t, p, nil)
		w := acquireAsync(t, p, nil)
		held.SetHealthy(false)
		p.Release(held, ok200)
		if got := <-w; !errors.Is(got.err, ErrNoBackend) {
			t.Errorf("waiter got %+v, want ErrNoBackend", got)
		}
	})
	t.Run("passes over a retry that must avoid the one free backend", func(t *testing.T) {
		p := breakerPool(t, long, "a:1", "b:2")
		a, b := mustAcquire(t, p, nil), mustAcquire(t, p, nil)
		retry := acquireAsync(t, p, a) // must not get a
		other := acquireAsync(t, p, nil)
		p.Release(a, ok200)
		if got := <-other; got.b != a {
			t.Fatalf("the request behind the retry got %+v, want %s", got, a.Addr())
		}
		p.Release(b, ok200)
		if got := <-retry; got.b != b {
			t.Fatalf("the retry got %+v, want %s", got, b.Addr())
		}
		p.Release(a, ok200)
		p.Release(b, ok200)
	})
	t.Run("shares the pool's cap and counters with the pool it replaces", func(t *testing.T) {
		cb := CircuitBreakerOptions{MaxRequests: 1, MaxQueue: Off}
		prev := breakerPool(t, cb, "a:1")
		held := mustAcquire(t, prev, nil)
		_, _ = prev.Acquire(nil, nil, time.Time{})
		o := prev.Options()
		next := newTestPool(t, o, prev)
		if _, err := next.Acquire(nil, nil, time.Time{}); !errors.Is(err, ErrOverloaded) {
			t.Errorf("err = %v, want ErrOverloaded: the old pool's request still holds the only place", err)
		}
		prev.Release(held, ok200)
		next.Release(mustAcquire(t, next, nil), ok200)
		if s := next.Stats(); s.Overloaded != 2 {
			t.Errorf("Overloaded = %d, want 2 (one before the reload, one after)", s.Overloaded)
		}
	})
}

func TestAcquireUnderContention(t *testing.T) {
	const perBackend, poolCap = 3, 5
	tests := []struct {
		name         string
		queueTimeout time.Duration
		allServed    bool
	}{
		{"with time to wait, every request is served", 10 * time.Second, true},
		{"with short waits, every request is served or refused, none lost", time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := breakerPool(t, CircuitBreakerOptions{
				MaxRequestsPerBackend: perBackend, MaxRequests: poolCap, MaxQueue: 1000, QueueTimeout: tt.queueTimeout,
			}, "a:1", "b:2", "c:3")
			var inPool atomic.Int64
			var served, refused atomic.Int64
			inBackend := map[*Backend]*atomic.Int64{}
			for _, b := range p.Backends() {
				inBackend[b] = new(atomic.Int64)
			}
			var wg sync.WaitGroup
			for range 300 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 20 {
						b, err := p.Acquire(nil, nil, time.Now().Add(30*time.Second))
						if errors.Is(err, ErrOverloaded) {
							refused.Add(1)
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						served.Add(1)
						if n := inPool.Add(1); n > poolCap {
							t.Errorf("%d requests in the pool, cap %d", n, poolCap)
						}
						if n := inBackend[b].Add(1); n > perBackend {
							t.Errorf("%d requests on %s, cap %d", n, b.Addr(), perBackend)
						}
						runtime.Gosched()
						inBackend[b].Add(-1)
						inPool.Add(-1)
						p.Release(b, ok200)
					}
				}()
			}
			wg.Wait()
			if served.Load()+refused.Load() != 300*20 {
				t.Errorf("served %d + refused %d, want %d", served.Load(), refused.Load(), 300*20)
			}
			if tt.allServed && refused.Load() != 0 {
				t.Errorf("%d requests refused, want none", refused.Load())
			}
			s := p.Stats()
			if s.Waits == 0 {
				t.Error("no request waited: the test did not reach the caps")
			}
			if s.InFlight != 0 || s.Queued != 0 || p.br.load.inFlight.Load() != 0 || s.Overloaded != uint64(refused.Load()) {
				t.Errorf("at rest: %+v, pool count %d; want nothing held or queued, %d overloaded",
					s, p.br.load.inFlight.Load(), refused.Load())
			}
		})
	}
}
