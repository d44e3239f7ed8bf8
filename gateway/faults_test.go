package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench"
	"github.com/sluice-gw/sluice/bench/origin"
)

// TestFailingBackendsCostNoRequests is the resilience scenario of the
// README: one backend of three hangs, then answers 5xx, then is killed,
// then comes back, while GETs and POSTs arrive at a fixed rate. GETs may be
// retried, so none may fail; POSTs without an Idempotency-Key may fail (a
// backend may have acted on them) but none may reach a backend twice.
func TestFailingBackendsCostNoRequests(t *testing.T) {
	t.Parallel()
	gets := []*origin.Server{startOrigin(t, origin.Options{}), startOrigin(t, origin.Options{}), startOrigin(t, origin.Options{})}
	posts := []*origin.Server{startOrigin(t, origin.Options{}), startOrigin(t, origin.Options{}), startOrigin(t, origin.Options{})}
	pool := func(name string, os []*origin.Server, checks bool) string {
		var b strings.Builder
		fmt.Fprintf(&b, "  %s:\n    timeout: 2s\n    connect_timeout: 200ms\n", name)
		b.WriteString("    outlier_detection: {consecutive_failures: 3, base_ejection_time: 500ms}\n")
		if checks {
			b.WriteString("    health_check: {path: /healthz, interval: 200ms, timeout: 100ms, rise: 2, fall: 2}\n")
		}
		b.WriteString("    backends:\n")
		for _, o := range os {
			fmt.Fprintf(&b, "      - {addr: %s}\n", o.Addr())
		}
		return b.String()
	}
	retries := "    retries: {attempts: 3, on: [connect, reset, timeout, 5xx], per_try_timeout: 300ms}\n"
	yaml := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nlog: {level: error}\npools:\n" +
		pool("reads", gets, true) + pool("writes", posts, false) +
		"routes:\n" +
		"  - name: reads\n    match: {path_prefix: /orders}\n    pool: reads\n" + retries +
		"  - name: writes\n    match: {path_prefix: /echo}\n    pool: writes\n" + retries
	s := startGateway(t, yaml)

	const phase = 1500 * time.Millisecond
	run := func(o bench.Options) *bench.Result {
		o.Rate, o.Connections, o.Duration, o.Timeout = 200, 32, 5*phase, 3*time.Second
		res, err := bench.Run(context.Background(), o)
		if err != nil {
			t.Error(err)
		}
		return res
	}
	var wg sync.WaitGroup
	var getRes, postRes *bench.Result
	wg.Go(func() { getRes = run(bench.Options{URL: s.url("/orders/{seq}")}) })
	wg.Go(func() {
		postRes = run(bench.Options{URL: s.url("/echo"), Method: "POST", Body: `{"order":{seq}}`, Headers: []string{"Content-Type: application/json"}})
	})

	// The faulty backends are gets[0] and posts[0].
	time.Sleep(phase)
	for _, o := range []*origin.Server{gets[0], posts[0]} {
		o.SetFault(origin.FaultHang)
	}
	time.Sleep(phase)
	for _, o := range []*origin.Server{gets[0], posts[0]} {
		o.SetFault(origin.Fault5xx)
	}
	time.Sleep(phase)
	addrs := []string{gets[0].Addr(), posts[0].Addr()}
	for _, o := range []*origin.Server{gets[0], posts[0]} {
		o.Close()
	}
	time.Sleep(phase)
	back := make([]*origin.Server, 2)
	for i, a := range addrs {
		back[i] = startOrigin(t, origin.Options{Addr: a})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	if n := getRes.Errors.Total(); n != 0 || getRes.Requests == 0 {
		t.Errorf("GETs: %d of %d failed (%+v, statuses %v); a failing backend must cost no GET", n, getRes.Requests, getRes.Errors, getRes.Status)
	}
	var reached int64
	for _, o := range append(posts[1:], back[1]) {
		reached += o.Requests()
	}
	reached += posts[0].Requests() // counted until it was closed
	if reached > postRes.Requests {
		t.Errorf("POSTs: %d sent, %d reached a backend; a POST without Idempotency-Key must never be sent twice", postRes.Requests, reached)
	}
	if back[0].Requests() == 0 {
		t.Errorf("the restarted backend got no GET in the last %v; it should be back", phase)
	}
	m := scrape(t, s)
	t.Logf("GETs: %d sent, %d failed, p99 %v; POSTs: %d sent, %d reached a backend, %d failed (%+v); restarted backend served %d GETs",
		getRes.Requests, getRes.Errors.Total(), time.Duration(getRes.Latency.ValueAtQuantile(99))*time.Microsecond,
		postRes.Requests, reached, postRes.Errors.Total(), postRes.Errors, back[0].Requests())
	t.Logf("metrics:\n%s", testLines(m, "sluice_retries_total{", "sluice_backend_ejections_total"))
}

// testLines returns the lines of s that contain any of subs.
func testLines(s string, subs ...string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(line, sub) && !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
				break
			}
		}
	}
	return b.String()
}

// TestASlowBackendGetsASmallerShare: under p2c_ewma (the default policy) a
// backend ten times slower than the others gets correspondingly less of a
// fixed-rate load.
func TestASlowBackendGetsASmallerShare(t *testing.T) {
	fast := func() *origin.Server {
		return startOrigin(t, origin.Options{Latency: origin.Latency{Dist: "fixed", Fixed: 2 * time.Millisecond}})
	}
	a, b := fast(), fast()
	slow := startOrigin(t, origin.Options{Latency: origin.Latency{Dist: "fixed", Fixed: 20 * time.Millisecond}})
	s := startGateway(t, gatewayYAML(a.Addr(), b.Addr(), slow.Addr()))
	res, err := bench.Run(context.Background(), bench.Options{URL: s.url("/api/orders/1"), Rate: 300, Connections: 32, Duration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Errors.Total(); n != 0 {
		t.Fatalf("%d requests failed: %+v", n, res.Errors)
	}
	total := float64(a.Requests() + b.Requests() + slow.Requests())
	share := float64(slow.Requests()) / total
	t.Logf("300 req/s, backends at 2, 2 and 20 ms: shares %.3f %.3f %.3f (round_robin would give 0.333 each)",
		float64(a.Requests())/total, float64(b.Requests())/total, share)
	if share > 0.15 {
		t.Errorf("the 10x slower backend got %.1f%% of the requests; p2c_ewma should send it much less than a third", 100*share)
	}
}
