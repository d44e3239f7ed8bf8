package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestHTMLReportIsSelfContained(t *testing.T) {
	res := syntheticResult(true)
	var b bytes.Buffer
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<svg", "Latency over time", "Latency by percentile", "99.99%", "<polyline", "INVALID RUN", "lag too high"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Nothing may be fetched: the only URL allowed is the SVG namespace,
	// which browsers never load.
	rest := strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, bad := range []string{"http://", "https://", "<script src", "<link", "@import", "url("} {
		if strings.Contains(rest, bad) {
			t.Errorf("report refers to %q: it must open with no network", bad)
		}
	}
}

func TestHTMLReportDrawsAnEmptyRun(t *testing.T) {
	var b bytes.Buffer
	res := &Result{Mode: "closed", Latency: newHistogram(), Service: newHistogram(), Lag: newHistogram(), Status: map[int]int64{}}
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no data") {
		t.Error("an empty run should say there is no data")
	}
}

// syntheticResult builds a Result by hand: 10 seconds, one slow second.
func syntheticResult(corrected bool) *Result {
	res := &Result{
		Mode: "open", Corrected: corrected, Connections: 8, TargetRate: 1000, AchievedRate: 998,
		Elapsed: 10 * time.Second, Requests: 9980, Status: map[int]int64{200: 9980},
		Latency: newHistogram(), Service: newHistogram(), Lag: newHistogram(),
		Invalid: []string{"lag too high <b>"}, Warmup: time.Second,
	}
	for i := 0; i < 9980; i++ {
		d := time.Duration(1000+i%500) * time.Microsecond
		if i%100 == 0 {
			d = time.Second
		}
		recordNanos(res.Latency, int64(d))
		recordNanos(res.Service, int64(d/2))
		recordNanos(res.Lag, int64(time.Duration(i%50)*time.Microsecond))
	}
	for s := 1; s <= 10; s++ {
		res.Series = append(res.Series, Sample{At: time.Duration(s) * time.Second, Warmup: s == 1, Requests: 998, Rate: 998,
			P50: time.Millisecond, P99: time.Duration(s) * 10 * time.Millisecond, Max: time.Second})
	}
	return res
}

// percentilePoints indexed pts[len(pts)-1] of an empty slice when the
// histogram held one value: WriteHTML panicked for `-requests 1`, or any run
// with a single successful answer.
func TestHTMLReportDrawsARunWithOneSample(t *testing.T) {
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

func TestHTMLReportOfARunWithOnlyErrorsNeedsNoNetwork(t *testing.T) {
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

func TestHTMLReportShowsTheSettingsAndEachReasonOnce(t *testing.T) {
	res := syntheticResult(true)
	res.Settings = Settings{URL: "http://127.0.0.1:8080/api/orders/{seq}", Method: "GET", Rate: 1000, Connections: 8,
		Duration: 10 * time.Second, Warmup: time.Second, Timeout: 2 * time.Second, MaxErrorRate: 0.01, MaxLag: 10 * time.Millisecond}
	var b bytes.Buffer
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<title>sluice bench: GET http://127.0.0.1:8080/api/orders/{seq}", "open loop, 1000 req/s",
		"<td>8</td>", "10s, after a 1s warm-up", "generator lag p99 &gt; 10ms"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(page, "lag too high"); n != 1 {
		t.Errorf("the reason is on the page %d times, want once", n)
	}
}
