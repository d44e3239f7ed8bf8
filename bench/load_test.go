package bench

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startServer serves h on a free loopback port until the test ends and
// returns its base URL.
func startServer(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &fasthttp.Server{Handler: h, CloseOnShutdown: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.Shutdown()
		<-done
	})
	return "http://" + ln.Addr().String()
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
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

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
