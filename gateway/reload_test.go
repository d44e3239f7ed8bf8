package gateway

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// A reload swaps the routing table while requests run: backends whose
// address survives keep their connections and health, removed ones finish
// what they started, and nothing is lost or leaked on the way.

// withHealthCheck adds fast health checks to the "orders" pool of a
// gatewayYAML configuration.
func withHealthCheck(yaml string) string {
	return strings.Replace(yaml, "    timeout: 2s\n",
		"    timeout: 2s\n    health_check: {path: /healthz, interval: 100ms, timeout: 50ms, rise: 1, fall: 1}\n", 1)
}

// checkerGoroutines counts the running health-check goroutines.
func checkerGoroutines() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "balancer.(*Checker).run(")
}

func TestReloadKeepsUnchangedBackendsAndRefusesBrokenFiles(t *testing.T) {
	t.Parallel()
	a := startOrigin(t, origin.Options{Name: "a"})
	b := startOrigin(t, origin.Options{Name: "b"})
	yaml := gatewayYAML(a.Addr())
	path := writeConfig(t, yaml)
	s := startGateway(t, yaml)
	do(t, "GET", s.url("/api/orders/1"), "")
	before := s.table.Load().pools["orders"].pool.Backends()[0]

	// A changed file: a second backend and a renamed route.
	changed := strings.Replace(gatewayYAML(a.Addr(), b.Addr()), "name: orders", "name: orders-v2", 1)
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadFile(path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	after := s.table.Load().pools["orders"].pool.Backends()
	if len(after) != 2 || after[0] != before {
		t.Fatalf("backend %s was not carried over (got %v)", a.Addr(), after)
	}
	if after[0].Stats().Requests == 0 {
		t.Error("carried-over backend lost its counters")
	}
	seen := map[string]bool{}
	// p2c_ewma spreads requests at random (and probes a backend whose first,
	// connect-laden answer looked slow within a few dozen picks).
	for i := 0; i < 100 && !(seen["a"] && seen["b"]); i++ {
		seen[do(t, "GET", s.url("/api/orders/1"), "").header.Get("X-Origin")] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("after reload requests reached %v, want a and b", seen)
	}
	metrics := do(t, "GET", "http://"+s.AdminAddr().String()+"/metrics", "").body
	// The old name's series stay exported for routeRetention, so that a
	// rename undone by the next reload continues them (metrics_test.go).
	if !strings.Contains(metrics, `route="orders-v2"`) || !strings.Contains(metrics, `route="orders"`) {
		t.Error("metrics do not follow the renamed route")
	}

	// Broken files change nothing.
	for _, broken := range []string{
		"listen: [oops\n",
		strings.Replace(changed, "pool: orders\n", "pool: ordrs\n", 1),
	} {
		if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.ReloadFile(path); err == nil {
			t.Fatalf("reload of a broken file succeeded:\n%s", broken)
		}
		if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 200 {
			t.Fatalf("after a broken reload: status %d", r.status)
		}
	}
	metrics = do(t, "GET", "http://"+s.AdminAddr().String()+"/metrics", "").body
	if !strings.Contains(metrics, `sluice_config_reloads_total{result="failure"} 2`) {
		t.Errorf("failed reloads not counted:\n%s", testnet.Lines(metrics, "reloads"))
	}
}

func TestReloadThatDisablesHealthChecksBringsADownBackendBack(t *testing.T) {
	o := startOrigin(t, origin.Options{Name: "a", Fault: origin.FaultHealthFail})
	yaml := withHealthCheck(gatewayYAML(o.Addr()))
	s := startGateway(t, yaml)
	testnet.Eventually(t, "the backend to be taken out (503)", func() bool {
		return do(t, "GET", s.url("/api/orders/1"), "").status == 503
	})

	// The operator turns the checks off: nothing will probe the backend
	// again, so it must be used.
	if err := s.Reload(loadConfig(t, gatewayYAML(o.Addr()))); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 200 {
		t.Fatalf("after the reload without health checks: status %d, want 200 (the backend stays out for ever)", r.status)
	}
}

func TestADownBackendStaysOutAcrossAnUnrelatedReload(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{Name: "a", Fault: origin.FaultHealthFail})
	yaml := withHealthCheck(gatewayYAML(o.Addr()))
	s := startGateway(t, yaml)
	testnet.Eventually(t, "the backend to be taken out (503)", func() bool {
		return do(t, "GET", s.url("/api/orders/1"), "").status == 503
	})
	o.ResetReceived()
	if err := s.Reload(loadConfig(t, strings.Replace(yaml, "name: echo", "name: echo2", 1))); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 503 {
		t.Errorf("right after the reload: status %d, want 503 (health carried over)", r.status)
	}
	// Only probes may have reached it, never the request.
	for _, r := range o.Received() {
		if r.RequestURI != "/healthz" {
			t.Errorf("the down backend received %s", r.RequestURI)
		}
	}
}

func TestInFlightRequestsOnARemovedBackendComplete(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	old := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
		ctx.SetBodyString("old")
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	next := startOrigin(t, origin.Options{Name: "new"})
	s := startGateway(t, gatewayYAML(old))

	got := make(chan response, 1)
	go func() { got <- do(t, "GET", s.url("/echo/x"), "") }()
	<-arrived
	if err := s.Reload(loadConfig(t, gatewayYAML(next.Addr()))); err != nil {
		t.Fatal(err)
	}
	close(release)
	if r := <-got; r.status != 200 || r.body != "old" {
		t.Fatalf("in-flight request on the removed backend: %d %q, want 200 \"old\"", r.status, r.body)
	}
	if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 200 || r.header.Get("X-Origin") != "new" {
		t.Errorf("after the reload: %d from %q, want 200 from new", r.status, r.header.Get("X-Origin"))
	}
}

func TestWeightsChangedOnReloadApply(t *testing.T) {
	a := startOrigin(t, origin.Options{Name: "a"})
	b := startOrigin(t, origin.Options{Name: "b"})
	yaml := strings.Replace(gatewayYAML(a.Addr(), b.Addr()), "    timeout: 2s\n", "    timeout: 2s\n    policy: weighted_round_robin\n", 1)
	s := startGateway(t, yaml)
	heavy := strings.Replace(yaml, "{addr: "+a.Addr()+"}", "{addr: "+a.Addr()+", weight: 3}", 1)
	if err := s.Reload(loadConfig(t, heavy)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range 8 {
		seen[do(t, "GET", s.url("/api/orders/1"), "").header.Get("X-Origin")]++
	}
	if seen["a"] != 6 || seen["b"] != 2 {
		t.Errorf("after weights 3:1, 8 requests went %v, want a:6 b:2", seen)
	}
}

// Requests in flight while the table is swapped must all be answered by a
// backend of one table or the other, never lost or mixed up. Under -race it
// also guards against Serve reading the configuration without the lock while
// Reload writes it.
func TestRequestsRacingAReloadAreNeverLost(t *testing.T) {
	t.Parallel()
	a := startOrigin(t, origin.Options{Name: "a"})
	b := startOrigin(t, origin.Options{Name: "b"})
	ya, yb := gatewayYAML(a.Addr()), gatewayYAML(b.Addr())
	s := startGateway(t, ya)
	cfgA, cfgB := loadConfig(t, ya), loadConfig(t, yb)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &fasthttp.Client{}
			for i := 0; i < 60; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%d", w*1000+i+1)
				code, body, err := c.GetTimeout(nil, s.url("/api/orders/"+id), 5*time.Second)
				if err != nil || code != 200 || !bytes.Contains(body, []byte(id)) {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("id %s: %d %v %.100q", id, code, err, body))
				}
			}
		}(w)
	}
	for i := 0; i < 10; i++ {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgB
		}
		if err := s.Reload(cfg); err != nil {
			t.Fatalf("reload: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	close(stop)
	if n := bad.Load(); n > 0 {
		t.Errorf("%d requests failed during reloads; first: %v", n, firstErr.Load())
	}
}

func TestReloadsUnderTrafficLoseNothingAndLeakNoGoroutines(t *testing.T) {
	a := startOrigin(t, origin.Options{Name: "a"})
	b := startOrigin(t, origin.Options{Name: "b"})
	base := withHealthCheck(gatewayYAML(a.Addr(), b.Addr()))
	s := startGateway(t, base)
	do(t, "GET", s.url("/api/orders/1"), "")
	do(t, "GET", s.url("/api/orders/1"), "")

	variants := []string{
		base,
		strings.Replace(base, "    timeout: 2s\n", "    timeout: 2s\n    policy: least_conn\n", 1),
		strings.Replace(base, "    timeout: 2s\n", "    timeout: 2s\n    policy: weighted_round_robin\n", 1),
		strings.Replace(base, "{addr: "+a.Addr()+"}", "{addr: "+a.Addr()+", weight: 5}", 1),
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int32
	var sent atomic.Int32
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 200 {
					bad.Add(1)
				}
			}
		}()
	}
	for i := range 20 {
		if err := s.Reload(loadConfig(t, variants[i%len(variants)])); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Errorf("%d of %d requests racing 20 reloads were not answered 200", n, sent.Load())
	}
	// One checker goroutine per live backend: the retired tables' checkers
	// are stopped by the reload itself, so no waiting is needed.
	if n := checkerGoroutines(); n != 2 {
		t.Errorf("%d health-check goroutines after 20 reloads, want 2 (one per backend)", n)
	}
}
