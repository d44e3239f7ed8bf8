package gateway

import (
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench"
)

// Review tests of how the gateway uses the balancer on reload, retry and
// shutdown, against real loopback backends.

// withHealthCheck adds fast health checks to the "orders" pool of a
// gatewayYAML configuration.
func withHealthCheck(yaml string) string {
	return strings.Replace(yaml, "    timeout: 2s\n",
		"    timeout: 2s\n    health_check: {path: /healthz, interval: 100ms, timeout: 50ms, rise: 1, fall: 1}\n", 1)
}

func TestReview2ReloadThatDisablesHealthChecksBringsADownBackendBack(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{Name: "a", Fault: bench.FaultHealthFail})
	yaml := withHealthCheck(gatewayYAML(o.Addr()))
	s := startGateway(t, yaml)
	eventually(t, "the backend to be taken out (503)", func() bool {
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

func TestReview2ADownBackendStaysOutAcrossAnUnrelatedReload(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{Name: "a", Fault: bench.FaultHealthFail})
	yaml := withHealthCheck(gatewayYAML(o.Addr()))
	s := startGateway(t, yaml)
	eventually(t, "the backend to be taken out (503)", func() bool {
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

func TestReview2InFlightRequestsOnARemovedBackendComplete(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	old := startBackend(t, func(ctx *fasthttp.RequestCtx) {
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
	next := startOrigin(t, bench.OriginOptions{Name: "new"})
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

// acceptAndDrop listens on loopback, counts requests (first bytes) and
// closes each connection without answering.
func acceptAndDrop(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4096)
			if k, _ := c.Read(buf); k > 0 {
				n.Add(1)
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String(), &n
}

func TestReview2RetriesNeverResendANonIdempotentRequest(t *testing.T) {
	a, na := acceptAndDrop(t)
	b, nb := acceptAndDrop(t)
	s := startGateway(t, gatewayYAML(a, b))

	t.Run("a POST that reached a backend is answered 502 and sent once", func(t *testing.T) {
		na.Store(0)
		nb.Store(0)
		r := do(t, "POST", s.url("/api/orders"), `{"customer":"c"}`)
		if r.status != 502 {
			t.Errorf("status %d, want 502", r.status)
		}
		if got := na.Load() + nb.Load(); got != 1 {
			t.Errorf("backends received the POST %d times, want 1", got)
		}
	})
	t.Run("a GET is retried once on the other backend", func(t *testing.T) {
		na.Store(0)
		nb.Store(0)
		r := do(t, "GET", s.url("/api/orders/1"), "")
		if r.status != 502 {
			t.Errorf("status %d, want 502", r.status)
		}
		if na.Load() != 1 || nb.Load() != 1 {
			t.Errorf("backends received the GET %d and %d times, want once each", na.Load(), nb.Load())
		}
	})
}

func TestReview2AllConnectionsBusyIsA504WithinTheTimeout(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{Fault: bench.FaultHang})
	yaml := strings.Replace(gatewayYAML(o.Addr()), "    timeout: 2s\n", "    timeout: 500ms\n    max_conns_per_backend: 1\n", 1)
	s := startGateway(t, yaml)
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	start := time.Now()
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = do(t, "GET", s.url("/api/orders/1"), "").status
		}()
	}
	wg.Wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("4 requests with a 500ms pool timeout took %v", took)
	}
	for i, st := range statuses {
		if st != 504 {
			t.Errorf("request %d: status %d, want 504", i, st)
		}
	}
}

func TestReview2WeightsChangedOnReloadApply(t *testing.T) {
	a := startOrigin(t, bench.OriginOptions{Name: "a"})
	b := startOrigin(t, bench.OriginOptions{Name: "b"})
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

func TestReview2ReloadsUnderTrafficLoseNothingAndLeakNoGoroutines(t *testing.T) {
	a := startOrigin(t, bench.OriginOptions{Name: "a"})
	b := startOrigin(t, bench.OriginOptions{Name: "b"})
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

func checkerGoroutines() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "balancer.(*Checker).run(")
}
