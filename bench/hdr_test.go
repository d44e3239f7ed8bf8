package bench

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSummarizeReadsPercentiles(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 10000; i++ {
		recordNanos(h, int64(i)*int64(time.Microsecond))
	}
	s := Summarize(h)
	near := func(got time.Duration, wantUs int64) bool {
		d := got - time.Duration(wantUs)*time.Microsecond
		return d >= -time.Duration(wantUs)*time.Microsecond/500 && d <= time.Duration(wantUs)*time.Microsecond/500
	}
	for _, c := range []struct {
		name string
		got  time.Duration
		want int64
	}{{"p50", s.P50, 5000}, {"p90", s.P90, 9000}, {"p99", s.P99, 9900}, {"p99.9", s.P999, 9990}, {"max", s.Max, 10000}} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %dus within 0.2%%", c.name, c.got, c.want)
		}
	}
	if s.Count != 10000 {
		t.Errorf("count %d", s.Count)
	}
}

func TestRecordClampsOutOfRangeValues(t *testing.T) {
	h := newHistogram()
	recordNanos(h, -5)
	recordNanos(h, int64(48*time.Hour))
	if h.TotalCount() != 2 || h.Min() != histLowest || !h.ValuesAreEquivalent(h.Max(), histHighest) {
		t.Errorf("count %d min %d max %d", h.TotalCount(), h.Min(), h.Max())
	}
}

func TestWriteHgrmEndsAtTheMaximum(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		recordNanos(h, int64(i)*int64(time.Millisecond))
	}
	var b bytes.Buffer
	if err := WriteHgrm(&b, h); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[0], "Percentile") || len(lines) < 30 {
		t.Fatalf("unexpected hgrm:\n%s", out)
	}
	var last string
	for _, l := range lines {
		if !strings.HasPrefix(l, "#") && strings.TrimSpace(l) != "" {
			last = l
		}
	}
	if f := strings.Fields(last); len(f) != 3 || f[1] != "1.000000000000" || f[2] != "1000" {
		t.Errorf("last row %q, want percentile 1 and count 1000", last)
	}
	if !strings.Contains(out, "#[Max     =     1000.") {
		t.Errorf("no max footer:\n%s", out)
	}
}

// A histogram whose values all share one bucket (one request, or a target
// that answers in the same microsecond every time) gave a .hgrm with only
// the three-column 100% row, which HdrHistogram's plotter skips: nothing to
// plot. Java writes the 0% row first; so must we.
func TestHgrmOfIdenticalValuesHasAPlottableRow(t *testing.T) {
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
