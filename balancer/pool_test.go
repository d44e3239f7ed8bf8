package balancer

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func newTestPool(t *testing.T, o Options, prev *Pool) *Pool {
	t.Helper()
	p, err := NewPool("api", o, prev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Retire(nil) })
	return p
}

func TestNewPool(t *testing.T) {
	t.Run("builds a backend per address, in order", func(t *testing.T) {
		p := newTestPool(t, testOptions("a:1", "b:2"), nil)
		if p.Name() != "api" || len(p.Backends()) != 2 || p.Backends()[1].Addr() != "b:2" {
			t.Errorf("pool = %q %v", p.Name(), p.Backends())
		}
		if p.Options().Timeout != 5*time.Second {
			t.Errorf("Options() lost the timeout: %+v", p.Options())
		}
	})
	t.Run("rejects an unknown policy", func(t *testing.T) {
		o := testOptions("a:1")
		o.Policy = "rr"
		if _, err := NewPool("api", o, nil); err == nil {
			t.Error("NewPool succeeded with policy rr")
		}
	})
	t.Run("reuses the backends of addresses it keeps", func(t *testing.T) {
		prev := newTestPool(t, testOptions("a:1", "b:2"), nil)
		prev.Backends()[0].SetHealthy(false)
		prev.Backends()[0].requests.Store(7)
		o := testOptions("c:3", "a:1")
		o.Backends[1].Weight = 4
		next := newTestPool(t, o, prev)
		a := next.Backends()[1]
		if a != prev.Backends()[0] {
			t.Fatal("a:1 was rebuilt, want the same *Backend")
		}
		if a.Healthy() || a.Stats().Requests != 7 || a.Weight() != 4 {
			t.Errorf("reused backend = %+v, want unhealthy, 7 requests, weight 4", a.Stats())
		}
		if next.Backends()[0] == prev.Backends()[1] {
			t.Error("c:3 is b:2's backend")
		}
	})
	t.Run("keeps a backend, and applies the change, when only timeouts and limits change", func(t *testing.T) {
		prev := newTestPool(t, testOptions("a:1"), nil)
		o := testOptions("a:1")
		o.Timeout, o.ConnectTimeout, o.MaxConnsPerBackend = 9*time.Second, 300*time.Millisecond, 3
		next := newTestPool(t, o, prev)
		b := next.Backends()[0]
		if b != prev.Backends()[0] {
			t.Fatal("backend rebuilt; its pooled connections would be lost")
		}
		if b.hc.MaxConns != 3 || time.Duration(b.connectTimeout.Load()) != 300*time.Millisecond {
			t.Errorf("max conns %d, connect timeout %v; want 3 and 300ms", b.hc.MaxConns, time.Duration(b.connectTimeout.Load()))
		}
	})
	t.Run("rebuilds a backend whose connection settings changed, keeping its health", func(t *testing.T) {
		prev := newTestPool(t, testOptions("a:1"), nil)
		prev.Backends()[0].SetHealthy(false)
		o := testOptions("a:1")
		o.MaxIdleConnDuration = 7 * time.Second
		next := newTestPool(t, o, prev)
		if next.Backends()[0] == prev.Backends()[0] {
			t.Fatal("backend reused although max_idle_conn_duration changed")
		}
		if next.Backends()[0].Healthy() {
			t.Error("rebuilt backend is healthy, want the old verdict (unhealthy)")
		}
	})
}

func TestPoolRetire(t *testing.T) {
	prev := newTestPool(t, testOptions("a:1", "b:2"), nil)
	next := newTestPool(t, testOptions("b:2"), prev)
	prev.Retire(next)
	if !prev.Backends()[0].transport.closed.Load() {
		t.Error("a:1, dropped by the reload, was not closed")
	}
	if prev.Backends()[1].transport.closed.Load() {
		t.Error("b:2, kept by the reload, was closed")
	}
}

func TestPoolPick(t *testing.T) {
	t.Run("returns nil when no backend is healthy", func(t *testing.T) {
		p := newTestPool(t, testOptions("a:1", "b:2"), nil)
		for _, b := range p.Backends() {
			b.SetHealthy(false)
		}
		if b := p.Pick(nil); b != nil {
			t.Errorf("Pick() = %s, want nil", b.Addr())
		}
	})
	for _, policy := range []string{PolicyRoundRobin, PolicyWeightedRoundRobin, PolicyLeastConn} {
		t.Run(policy+" PickExcept never returns the excluded backend", func(t *testing.T) {
			o := testOptions("a:1", "b:2", "c:3")
			o.Policy = policy
			o.Backends[0].Weight = 10
			p := newTestPool(t, o, nil)
			not := p.Backends()[0]
			not.inFlight.Store(-5) // least_conn's favourite
			seen := map[*Backend]int{}
			for range 30 {
				b := p.PickExcept(nil, not)
				if b == nil || b == not {
					t.Fatalf("PickExcept() = %v", b)
				}
				seen[b]++
			}
			if len(seen) != 2 {
				t.Errorf("PickExcept used %d backends, want both others", len(seen))
			}
		})
	}
	t.Run("PickExcept returns nil when the excluded backend is the only healthy one", func(t *testing.T) {
		p := newTestPool(t, testOptions("a:1", "b:2"), nil)
		p.Backends()[1].SetHealthy(false)
		if b := p.PickExcept(nil, p.Backends()[0]); b != nil {
			t.Errorf("PickExcept() = %s, want nil", b.Addr())
		}
	})
}

func TestReloadThatDisablesHealthChecksBringsBackendsBack(t *testing.T) {
	// A backend the checker took out stays out forever when the reload that
	// reuses it turns health checks off: nothing will ever probe it again,
	// and without checks "every backend is considered healthy".
	addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {})
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
