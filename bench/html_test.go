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
