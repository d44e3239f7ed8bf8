package bench

import (
	"context"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// startServer serves h on a free loopback port until the test ends and
// returns its base URL.
func startServer(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	return "http://" + testnet.Serve(t, h)
}

// fixedLatency answers 200 after d.
func fixedLatency(d time.Duration) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		time.Sleep(d)
		ctx.SetBodyString("ok")
	}
}

// stallOnce answers at once, except that `after` the first request it stops
// answering for `stall`: every request arriving in that window waits for
// its end, like a process frozen by a long GC pause.
func stallOnce(after, stall time.Duration) fasthttp.RequestHandler {
	var once sync.Once
	var from, to time.Time
	return func(ctx *fasthttp.RequestCtx) {
		once.Do(func() {
			from = time.Now().Add(after)
			to = from.Add(stall)
		})
		if now := time.Now(); !now.Before(from) && now.Before(to) {
			time.Sleep(to.Sub(now))
		}
		ctx.SetBodyString("ok")
	}
}

func run(t *testing.T, o Options) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestOpenLoopReportsTheServersFixedLatency(t *testing.T) {
	const latency = 20 * time.Millisecond
	url := startServer(t, fixedLatency(latency))
	res := run(t, Options{
		URL: url + "/fixed", Rate: 200, Connections: 16,
		Warmup: 300 * time.Millisecond, Duration: 2 * time.Second,
		MaxLag: 200 * time.Millisecond, // a loaded test machine is not the subject here
	})
	if !res.Valid {
		// Only a starved machine may do this, and the run must say why.
		t.Logf("run invalid on this machine: %v", res.Invalid)
		if containsReason(res.Invalid, "error rate") {
			t.Errorf("unexpected errors: %+v", res.Errors)
		}
	}
	if !res.Corrected || res.Mode != "open" {
		t.Errorf("mode %q corrected %v, want open and corrected", res.Mode, res.Corrected)
	}
	if res.Requests < 380 || res.Requests > 402 {
		t.Errorf("measured %d requests, want about 200/s × 2s = 400", res.Requests)
	}
	lat := Summarize(res.Latency)
	svc := Summarize(res.Service)
	for name, got := range map[string]time.Duration{"latency p50": lat.P50, "service p50": svc.P50} {
		// Sleep never returns early; the upper bound leaves room for a busy
		// machine without letting a wrong clock (due vs send) pass.
		if got < latency || got > latency+15*time.Millisecond {
			t.Errorf("%s = %v, want about %v", name, got, latency)
		}
	}
	if res.Status[200] != res.Requests {
		t.Errorf("status 200 count %d, want %d", res.Status[200], res.Requests)
	}
}

func TestCorrectedLatencyShowsAStallThatServiceTimeHides(t *testing.T) {
	url := startServer(t, stallOnce(time.Second, time.Second))
	res := run(t, Options{
		URL: url + "/stall", Rate: 400, Connections: 4,
		Duration: 3 * time.Second, MaxLag: 200 * time.Millisecond,
	})
	lat := Summarize(res.Latency)
	svc := Summarize(res.Service)
	t.Logf("corrected p50 %v p99 %v max %v; uncorrected p50 %v p99 %v max %v", lat.P50, lat.P99, lat.Max, svc.P50, svc.P99, svc.Max)
	if lat.P99 < 500*time.Millisecond {
		t.Errorf("corrected p99 = %v, want the 1s stall to show (> 500ms)", lat.P99)
	}
	if svc.P99 > 200*time.Millisecond {
		t.Errorf("uncorrected (service time) p99 = %v, want the stall hidden (< 200ms): only one request per connection waited", svc.P99)
	}
	if svc.Max < 500*time.Millisecond {
		t.Errorf("service max = %v, want the stalled requests seen (> 500ms)", svc.Max)
	}
	// The schedule held: the requests due during the stall were sent after it.
	if res.Requests < 1150 {
		t.Errorf("measured %d requests, want about 1200: requests must keep their schedule", res.Requests)
	}
}

func TestClosedLoopIsLabelledUncorrectedAndMissesTheStall(t *testing.T) {
	url := startServer(t, stallOnce(500*time.Millisecond, time.Second))
	res := run(t, Options{URL: url, Connections: 4, Duration: 2500 * time.Millisecond})
	if res.Corrected || res.Mode != "closed" {
		t.Errorf("mode %q corrected %v, want closed and uncorrected", res.Mode, res.Corrected)
	}
	lat := Summarize(res.Latency)
	if lat.P99 > 200*time.Millisecond || lat.Max < 500*time.Millisecond {
		t.Errorf("closed-loop p99 %v max %v: want a small p99 and the stall only in max", lat.P99, lat.Max)
	}
	if res.Lag.TotalCount() == 0 || res.Lag.Max() > 1 {
		t.Errorf("closed loop lag: %d samples, max %dus, want every sample 0", res.Lag.TotalCount(), res.Lag.Max())
	}
}

func TestRunThatCannotReachItsRateIsInvalid(t *testing.T) {
	url := startServer(t, fixedLatency(50*time.Millisecond))
	// Two connections at 50ms give at most 40 req/s, far below 500.
	res := run(t, Options{URL: url, Rate: 500, Connections: 2, Duration: time.Second})
	if res.Valid {
		t.Fatalf("run valid at %.1f req/s for a 500 req/s target", res.AchievedRate)
	}
	if !containsReason(res.Invalid, "achieved rate") {
		t.Errorf("reasons %q do not name the achieved rate", res.Invalid)
	}
	if res.AchievedRate > 60 {
		t.Errorf("achieved %.1f req/s, want at most about 40", res.AchievedRate)
	}
}

func containsReason(reasons []string, part string) bool {
	for _, r := range reasons {
		if strings.Contains(r, part) {
			return true
		}
	}
	return false
}

func TestErrorsAreCountedByKind(t *testing.T) {
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/missing":
			ctx.SetStatusCode(404)
		case "/broken":
			ctx.SetStatusCode(503)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		}
	})
	closedURL := "http://" + testnet.FreeAddr(t)

	tests := []struct {
		name  string
		url   string
		count func(ErrorCounts) int64
		code  int
	}{
		{"a 404 counts as 4xx", url + "/missing", func(e ErrorCounts) int64 { return e.Status4xx }, 404},
		{"a 503 counts as 5xx", url + "/broken", func(e ErrorCounts) int64 { return e.Status5xx }, 503},
		{"a slow answer counts as a timeout", url + "/slow", func(e ErrorCounts) int64 { return e.Timeout }, 0},
		{"a closed port counts as a connect error", closedURL, func(e ErrorCounts) int64 { return e.Connect }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, Options{URL: tc.url, Connections: 2, Requests: 20, Timeout: 100 * time.Millisecond})
			if got := tc.count(res.Errors); got != 20 || res.Errors.Total() != 20 {
				t.Errorf("errors %+v, want all 20 of this kind", res.Errors)
			}
			if tc.code != 0 && res.Status[tc.code] != 20 {
				t.Errorf("status %v, want 20 × %d", res.Status, tc.code)
			}
			if res.Valid || !containsReason(res.Invalid, "error rate") {
				t.Errorf("valid %v reasons %q, want invalid for the error rate", res.Valid, res.Invalid)
			}
		})
	}
}

func TestRequestsBoundStopsTheRun(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	tests := []struct {
		name string
		rate float64
	}{
		{"closed loop sends exactly the asked requests", 0},
		{"open loop sends exactly the asked requests", 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, Options{URL: url + "/{seq}", Rate: tc.rate, Connections: 8, Requests: 300, MaxLag: time.Second})
			if res.Requests != 300 || res.Latency.TotalCount() != 300 {
				t.Errorf("measured %d requests (%d latencies), want 300", res.Requests, res.Latency.TotalCount())
			}
			if containsReason(res.Invalid, "error rate") {
				t.Errorf("run invalid: %v", res.Invalid)
			}
		})
	}
}

func TestWarmupIsLeftOut(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	res := run(t, Options{URL: url, Rate: 200, Connections: 4, Warmup: 500 * time.Millisecond, Duration: 500 * time.Millisecond, MaxLag: time.Second})
	if res.Requests < 90 || res.Requests > 101 {
		t.Errorf("measured %d requests, want about 100 (warm-up excluded)", res.Requests)
	}
}

func TestCancelEndsTheRunAndMarksItInvalid(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Options{URL: url, Rate: 100, Connections: 2, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("run took %v after cancel", time.Since(start))
	}
	if res.Valid || !containsReason(res.Invalid, "interrupted") {
		t.Errorf("valid %v reasons %q, want interrupted", res.Valid, res.Invalid)
	}
}

func TestBadOptionsFailBeforeStarting(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"no url is an error", Options{}},
		{"a url without scheme is an error", Options{URL: "127.0.0.1:1/x"}},
		{"an unknown placeholder is an error", Options{URL: "http://127.0.0.1:1/{sq}"}},
		{"a placeholder in the host is an error", Options{URL: "http://{seq}.local/"}},
		{"a negative rate is an error", Options{URL: "http://127.0.0.1:1/", Rate: -1}},
		{"a malformed header is an error", Options{URL: "http://127.0.0.1:1/", Headers: []string{"nocolon"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.o); err == nil {
				t.Error("Run returned no error")
			}
		})
	}
}

func TestProgressIsReportedEverySecond(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	var mu sync.Mutex
	var got []Sample
	res := run(t, Options{URL: url, Rate: 100, Connections: 2, Duration: 2200 * time.Millisecond, MaxLag: time.Second,
		Progress: func(s Sample) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, s)
		}})
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 2 || len(res.Series) < 2 {
		t.Fatalf("%d progress calls, %d series samples, want at least 2", len(got), len(res.Series))
	}
	if s := got[0]; s.Requests < 50 || s.Rate < 50 || s.P50 <= 0 || s.P99 < s.P50 {
		t.Errorf("first sample %+v, want about 100 requests with latencies", s)
	}
	if line := FormatSample(got[0]); !strings.Contains(line, "req/s") || !strings.Contains(line, "p99") {
		t.Errorf("live line %q", line)
	}
}

func TestA5xxIsOneErrorAndOneStatus(t *testing.T) {
	var n atomic.Int64
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		codes := [...]int{500, 502, 503}
		ctx.SetStatusCode(codes[n.Add(1)%3])
	})
	res := run(t, Options{URL: url + "/orders/{seq}", Rate: 200, Connections: 4,
		Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond, MaxLag: time.Second})
	var statuses int64
	for _, n := range res.Status {
		statuses += n
	}
	if res.Requests == 0 || res.Errors.Total() != res.Requests || res.Errors.Status5xx != res.Requests || statuses != res.Requests {
		t.Errorf("requests %d, errors %+v, statuses %v: want every request once as 5xx", res.Requests, res.Errors, res.Status)
	}
	if !containsReason(res.Invalid, "error rate 100.00%") {
		t.Errorf("reasons %q, want an error rate of 100%%", res.Invalid)
	}
}

func TestRequestsBoundCountsOnlyAfterTheWarmup(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	res := run(t, Options{URL: url + "/{seq}", Rate: 500, Connections: 4, Requests: 50,
		Warmup: 200 * time.Millisecond, MaxLag: time.Second})
	if res.Requests != 50 || res.Latency.TotalCount() != 50 {
		t.Errorf("measured %d requests (%d latencies), want 50 after the warm-up", res.Requests, res.Latency.TotalCount())
	}
	if res.Elapsed <= 0 || res.Elapsed > 10*time.Second {
		t.Errorf("window %v", res.Elapsed)
	}
}

func TestRunStopsByItselfWhenTheTargetHangs(t *testing.T) {
	// A target that reads each request and never answers.
	hung := testnet.StartRawBackend(t, func(net.Conn, testnet.RawRequest) {})
	for _, rate := range []float64{0, 100} {
		res := run(t, Options{URL: "http://" + hung.Addr + "/orders/1", Rate: rate, Connections: 2,
			Duration: 300 * time.Millisecond, Timeout: 150 * time.Millisecond})
		if containsReason(res.Invalid, "interrupted") || res.Valid {
			t.Errorf("rate %v: reasons %q, want invalid and not interrupted", rate, res.Invalid)
		}
	}
}

// Against a closed port every connect fails within microseconds: without a
// pause between attempts one run made 51,000 of them in 2 seconds.
func TestConnectionsBackOffFromAClosedPort(t *testing.T) {
	addr := testnet.FreeAddr(t)
	res := run(t, Options{URL: "http://" + addr + "/", Connections: 64, Duration: 2 * time.Second})
	attempts := res.Errors.Connect
	t.Logf("%d connect attempts in 2s, per second: %v", attempts, res.Series)
	if attempts == 0 || res.Errors.Total() != attempts || res.Requests != attempts {
		t.Fatalf("requests %d, errors %+v: want every request a connect error", res.Requests, res.Errors)
	}
	// The 64 connections reach their 320ms cap within half a second, then
	// dial about 270 times a second in all: about 1,000 attempts in 2s.
	if attempts > 1600 {
		t.Errorf("%d connect attempts in 2s, want about 1,000: the connections must back off", attempts)
	}
	if len(res.Series) >= 2 && res.Series[1].Requests > 500 {
		t.Errorf("%d attempts in the second second, want about 270", res.Series[1].Requests)
	}
	if !strings.Contains(res.ConnectError, "connection refused") || !strings.Contains(res.ConnectError, addr) {
		t.Errorf("ConnectError %q, want the refused address", res.ConnectError)
	}
	if !containsReason(res.Invalid, "connection refused") {
		t.Errorf("reasons %q do not say the connections were refused", res.Invalid)
	}
	var text strings.Builder
	if err := WriteText(&text, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "connect errors: dial tcp "+addr) {
		t.Errorf("text report does not name the refused connect:\n%s", text.String())
	}
}

func TestBackoffDoublesToItsCapAndEndsWithAnAnswer(t *testing.T) {
	o := Options{URL: "http://127.0.0.1:1/", Connections: 64}.withDefaults()
	specs, keys, err := buildSpecs(o)
	if err != nil {
		t.Fatal(err)
	}
	r := newRunState(o, target{host: "127.0.0.1:1"})
	r.start = time.Now()
	c := newConnection(r, r.shards[0], 0, specs, keys)
	done := make(chan struct{})
	close(done) // every wait returns at once: only the lengths are under test
	ms := time.Millisecond
	want := []time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 16 * ms, 32 * ms, 64 * ms, 128 * ms, 256 * ms, 320 * ms, 320 * ms}
	for i, w := range want {
		c.backOff(errConnect, done)
		if c.pause != w {
			t.Fatalf("wait after %d failed connects = %v, want %v", i+1, c.pause, w)
		}
	}
	for _, kind := range []errorKind{errNone, errTimeout, errOther} {
		c.backOff(errConnect, done)
		c.backOff(kind, done)
		if c.pause != 0 {
			t.Errorf("wait after an outcome of kind %d = %v, want 0: the connection was made", kind, c.pause)
		}
	}
	for conns, want := range map[int]time.Duration{1: 100 * ms, 64: 320 * ms, 200: time.Second, 5000: 5 * time.Second} {
		if got := backoffCap(conns); got != want {
			t.Errorf("backoffCap(%d) = %v, want %v", conns, got, want)
		}
	}
}

func TestARunFindsATargetThatComesBack(t *testing.T) {
	addr := testnet.FreeAddr(t)
	up := make(chan struct{})
	var listenErr error
	time.AfterFunc(300*time.Millisecond, func() {
		defer close(up)
		var ln net.Listener
		if ln, listenErr = net.Listen("tcp", addr); listenErr != nil {
			return
		}
		s := &fasthttp.Server{Handler: fixedLatency(0)}
		go func() { _ = s.Serve(ln) }()
		t.Cleanup(func() { _ = s.Shutdown() })
	})
	res := run(t, Options{URL: "http://" + addr + "/", Connections: 4, Duration: 1500 * time.Millisecond, MaxErrorRate: 1})
	<-up
	if listenErr != nil {
		t.Skipf("the port was taken meanwhile: %v", listenErr)
	}
	if res.Errors.Connect == 0 || res.Errors.Connect > 60 {
		t.Errorf("%d connect errors, want a few while the port was closed", res.Errors.Connect)
	}
	if res.Status[200] < 200 {
		t.Errorf("%d answers after the target came up, want many: a connection that connects must stop waiting", res.Status[200])
	}
}

func TestRunRecordsItsSettings(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	headers := []string{"Content-Type: application/json", "Authorization: Bearer s3cret"}
	res := run(t, Options{URL: url + "/orders/{seq}", Method: "POST", Body: `{"n":{seq}}`, Headers: headers,
		Rate: 100, Connections: 3, Requests: 20, Warmup: 50 * time.Millisecond, MaxLag: time.Second})
	want := Settings{URL: url + "/orders/{seq}", Method: "POST", Body: `{"n":{seq}}`,
		Rate: 100, Connections: 3, Requests: 20, Warmup: 50 * time.Millisecond, Timeout: 2 * time.Second,
		MaxErrorRate: 0.01, MaxLag: time.Second,
		Headers: []string{"Content-Type: application/json", "Authorization: <redacted>"}}
	if got := res.Settings; !reflect.DeepEqual(got, want) {
		t.Errorf("settings\n%+v\nwant\n%+v", got, want)
	}

	sc, err := LoadScenario("testdata/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res = run(t, Options{URL: url, Scenario: sc, Connections: 2, Requests: 10})
	s := res.Settings
	if s.URL != url || s.Method != "" || len(s.Scenario) != 2 {
		t.Fatalf("scenario settings %+v", s)
	}
	if r := s.Scenario[1]; r.Name != "write" || r.Weight != 1 || r.Method != "POST" || r.Path != url+"/orders" {
		t.Errorf("second scenario request recorded as %+v", r)
	}
}
