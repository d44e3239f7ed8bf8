package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Regression tests from a review of the measurement itself. Each test names
// the defect it guards against.

// The open-loop schedule used to compute slot k of connection i as
// int64(phase + k×interval), truncated: with rate 333 over 7 connections the
// slot due exactly at the end of the warm-up fell 1ns short of it, so a
// one-second window held 332 slots, not 333.
func TestReviewScheduleHoldsRateTimesDurationSlotsInAWindow(t *testing.T) {
	for _, rate := range []int{7, 300, 333, 1000, 12345, 20000} {
		for _, conns := range []int{1, 3, 7, 64} {
			t.Run(strconv.Itoa(rate)+"/s over "+strconv.Itoa(conns)+" connections", func(t *testing.T) {
				const warm, end = int64(time.Second), int64(2 * time.Second)
				n := 0
				for i := 0; i < conns; i++ {
					for k := 0; ; k++ {
						due := slotDue(float64(rate), conns, i, k)
						if due >= end {
							break
						}
						if due >= warm {
							n++
						}
					}
				}
				if n != rate {
					t.Errorf("%d slots due in the measured second, want %d", n, rate)
				}
			})
		}
	}
}

func TestReviewScheduleInterleavesTheConnectionsEvenly(t *testing.T) {
	const rate, conns = 1000.0, 8
	var dues []int64
	for k := 0; k < 4; k++ {
		for i := 0; i < conns; i++ {
			dues = append(dues, slotDue(rate, conns, i, k))
		}
	}
	for j, d := range dues {
		if want := int64(j) * int64(time.Millisecond); d != want {
			t.Fatalf("slot %d due at %d, want %d", j, d, want)
		}
	}
}

// percentilePoints indexed pts[len(pts)-1] of an empty slice when the
// histogram held one value: WriteHTML panicked for `-requests 1`, or any run
// with a single successful answer.
func TestReviewHTMLReportDrawsARunWithOneSample(t *testing.T) {
	one := newHistogram()
	recordNanos(one, int64(3*time.Millisecond))
	res := &Result{Mode: "open", Corrected: true, TargetRate: 10, Latency: one, Service: one, Lag: one, Status: map[int]int64{200: 1}, Requests: 1}
	var b bytes.Buffer
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("WriteHTML panicked: %v", p)
			}
		}()
		if err := WriteHTML(&b, res); err != nil {
			t.Fatal(err)
		}
	}()
	if !strings.Contains(b.String(), "<polyline") {
		t.Error("the percentile chart of one sample draws nothing")
	}
}

func TestReviewHTMLReportOfARunWithOnlyErrorsNeedsNoNetwork(t *testing.T) {
	res := &Result{Mode: "open", Corrected: true, TargetRate: 100, Requests: 50,
		Errors: ErrorCounts{Timeout: 50}, Latency: newHistogram(), Service: newHistogram(), Lag: newHistogram(),
		Status: map[int]int64{}, Series: []Sample{{At: time.Second, Requests: 50, Errors: 50}}}
	var b bytes.Buffer
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	page := strings.ReplaceAll(b.String(), `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, bad := range []string{"http://", "https://", "src=", "href=", "url(", "@import", "NaN", "Inf"} {
		if strings.Contains(page, bad) {
			t.Errorf("report holds %q", bad)
		}
	}
}

// {rand:LO-HI} drew lo + Uint64N(hi-lo+1), which panics when the span is the
// whole uint64 range (hi-lo+1 overflows to 0), although the parser accepts it.
func TestReviewRandIncludesBothEndsAndTheFullRange(t *testing.T) {
	var seq atomic.Uint64
	t.Run("the full uint64 range renders", func(t *testing.T) {
		tpl, err := parseTemplate("{rand:0-18446744073709551615}", 0)
		if err != nil {
			t.Fatal(err)
		}
		r := newRenderer(1, &seq, nil)
		r.prepare(tpl)
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("render panicked: %v", p)
			}
		}()
		if _, err := strconv.ParseUint(string(r.render(nil, tpl)), 10, 64); err != nil {
			t.Error(err)
		}
	})
	t.Run("a small range draws both of its ends and nothing outside", func(t *testing.T) {
		tpl, _ := parseTemplate("{rand:3-5}", 0)
		r := newRenderer(2, &seq, nil)
		r.prepare(tpl)
		seen := map[string]int{}
		for i := 0; i < 300; i++ {
			seen[string(r.render(nil, tpl))]++
		}
		if len(seen) != 3 || seen["3"] == 0 || seen["5"] == 0 {
			t.Errorf("drew %v, want 3, 4 and 5", seen)
		}
	})
}

// {zipf:S:N} must draw k in [1, N] with P(k) ∝ k^-S. The draws are seeded,
// so the counts are deterministic; the bounds are loose statistically.
func TestReviewZipfFollowsItsExponent(t *testing.T) {
	const s, n, draws = 1.1, 100000, 200000
	tpl, err := parseTemplate("{zipf:1.1:100000}", 0)
	if err != nil {
		t.Fatal(err)
	}
	var seq atomic.Uint64
	r := newRenderer(42, &seq, nil)
	r.prepare(tpl)
	counts := map[uint64]int{}
	var buf []byte
	for i := 0; i < draws; i++ {
		buf = r.render(buf[:0], tpl)
		v, err := strconv.ParseUint(string(buf), 10, 64)
		if err != nil || v < 1 || v > n {
			t.Fatalf("drew %q, want an integer in [1, %d]", buf, n)
		}
		counts[v]++
	}
	var h float64 // generalised harmonic number H(N, s)
	for k := 1; k <= n; k++ {
		h += math.Pow(float64(k), -s)
	}
	for _, k := range []uint64{1, 2, 4, 10} {
		want := draws * math.Pow(float64(k), -s) / h
		if got := float64(counts[k]); math.Abs(got-want) > 0.05*want+5*math.Sqrt(want) {
			t.Errorf("key %d drawn %.0f times, want about %.0f", k, got, want)
		}
	}
	one, _ := parseTemplate("{zipf:1.1:1}", 0)
	r.prepare(one)
	for i := 0; i < 20; i++ {
		if got := string(r.render(nil, one)); got != "1" {
			t.Fatalf("{zipf:1.1:1} drew %q, want 1", got)
		}
	}
}

// A histogram whose values all share one bucket (one request, or a target
// that answers in the same microsecond every time) gave a .hgrm with only
// the three-column 100% row, which HdrHistogram's plotter skips: nothing to
// plot. Java writes the 0% row first; so must we.
func TestReviewHgrmOfIdenticalValuesHasAPlottableRow(t *testing.T) {
	h := newHistogram()
	for i := 0; i < 1000; i++ {
		recordNanos(h, int64(time.Millisecond))
	}
	var b bytes.Buffer
	if err := WriteHgrm(&b, h); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, l := range strings.Split(b.String(), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && !strings.HasPrefix(l, "#") {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				rows++
				if v != 1.0 {
					t.Errorf("row %q: value %v, want 1.000 (milliseconds)", l, v)
				}
			}
		}
	}
	if rows == 0 {
		t.Errorf("no four-column row for the plotter:\n%s", b.String())
	}
}

func TestReviewRateCheckIsStrictlyBelow99Percent(t *testing.T) {
	r := &runState{o: Options{Rate: 20000, Duration: 10 * time.Second}.withDefaults()}
	for _, tc := range []struct {
		name     string
		requests int64
		valid    bool
	}{
		{"exactly 99% of the target is valid", 198000, true},
		{"one request fewer is invalid", 197999, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &Result{Requests: tc.requests, Lag: newHistogram(), Elapsed: 10 * time.Second}
			res.AchievedRate = float64(tc.requests) / res.Elapsed.Seconds()
			r.judge(res)
			if res.Valid != tc.valid {
				t.Errorf("valid %v (%q), want %v", res.Valid, res.Invalid, tc.valid)
			}
		})
	}
}

func TestReviewA5xxIsOneErrorAndOneStatus(t *testing.T) {
	o, err := StartOrigin(OriginOptions{Fault: Fault5xx})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	res := run(t, Options{URL: "http://" + o.Addr() + "/orders/{seq}", Rate: 200, Connections: 4,
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

func TestReviewRequestsBoundCountsOnlyAfterTheWarmup(t *testing.T) {
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

func TestReviewRunStopsByItselfWhenTheTargetHangs(t *testing.T) {
	o, err := StartOrigin(OriginOptions{Fault: FaultHang})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	for _, rate := range []float64{0, 100} {
		res := run(t, Options{URL: "http://" + o.Addr() + "/orders/1", Rate: rate, Connections: 2,
			Duration: 300 * time.Millisecond, Timeout: 150 * time.Millisecond})
		if containsReason(res.Invalid, "interrupted") || res.Valid {
			t.Errorf("rate %v: reasons %q, want invalid and not interrupted", rate, res.Invalid)
		}
	}
}

func TestReviewCancelPrintsAPartialReport(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	err := RunBench(ctx, []string{"-url", url, "-rate", "100", "-connections", "2", "-duration", "1m", "-warmup", "0s"}, &out, &errOut)
	if !errors.Is(err, ErrInvalidRun) {
		t.Fatalf("err %v, want ErrInvalidRun", err)
	}
	if !strings.Contains(out.String(), "interrupted") || !strings.Contains(out.String(), "latency (corrected)") {
		t.Errorf("no partial report:\n%s", out.String())
	}
}

func TestReviewEveryOrderIsValidJSON(t *testing.T) {
	ids := []int64{1, 2, 3, 4, 5, 9799, 9800, 10007, 99999, 100000, 1 << 31, 1<<53 - 1, 1 << 53}
	for id := int64(6); id < 20000; id += 7 {
		ids = append(ids, id)
	}
	for _, id := range ids {
		for _, size := range []int{0, 300, 4096} {
			b := originAppendOrder(nil, id, "", size)
			var doc struct {
				ID int64 `json:"id"`
			}
			if err := json.Unmarshal(b, &doc); err != nil || doc.ID != id {
				t.Fatalf("order %d (size %d): %v, id %d: %s", id, size, err, doc.ID, b)
			}
			if size >= 300 && len(b) != size {
				t.Fatalf("order %d: %d bytes, want %d", id, len(b), size)
			}
		}
	}
}
