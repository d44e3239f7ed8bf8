package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms record microseconds. One microsecond is below anything a
// loopback HTTP round trip can show, and one hour is far above any timeout a
// run would use; three significant figures keep every percentile within 0.1%
// of the true value at about 180 KB per histogram.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histSigFigs)
}

// recordNanos records a duration given in nanoseconds, clamped into the
// histogram's range so that RecordValue never builds an error (which would
// allocate on the hot path).
func recordNanos(h *hdrhistogram.Histogram, ns int64) {
	us := ns / int64(time.Microsecond)
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	_ = h.RecordValue(us)
}

// Summary is the headline of one histogram, in durations.
type Summary struct {
	Count int64
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
	P9999 time.Duration
	Max   time.Duration
}

// Summarize reads the report percentiles out of h (recorded in microseconds).
// A nil or empty histogram gives a zero Summary.
func Summarize(h *hdrhistogram.Histogram) Summary {
	if h == nil || h.TotalCount() == 0 {
		return Summary{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	q := [...]float64{50, 90, 99, 99.9, 99.99}
	v := h.ValueAtPercentilesSlice(q[:])
	return Summary{
		Count: h.TotalCount(),
		Min:   us(h.Min()),
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(v[0]),
		P90:   us(v[1]),
		P99:   us(v[2]),
		P999:  us(v[3]),
		P9999: us(v[4]),
		Max:   us(h.Max()),
	}
}

// WriteHgrm writes h in the percentile-distribution text format of
// HdrHistogram's outputPercentileDistribution (the ".hgrm" file that
// hdrhistogram.github.io/HdrHistogram/plotFiles.html plots), with values in
// milliseconds. The percentile steps halve the remaining distance to 100%
// five ticks at a time, as the Java and C implementations do.
func WriteHgrm(w io.Writer, h *hdrhistogram.Histogram) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")
	total := h.TotalCount()
	if total > 0 {
		const ticksPerHalf = 5
		cum := cumulativeCounts(h)
		pct := 0.0
		for {
			v := h.ValueAtPercentile(pct)
			count := cum(v)
			frac := pct / 100
			// The 0% row is always written, as Java's iterator does: when
			// every value shares one bucket it is the only four-column row,
			// the kind the plotter reads (it skips the three-column 100% row).
			if pct == 0 || count < total && pct < 100 {
				fmt.Fprintf(bw, "%12.3f %2.12f %10d %14.2f\n", float64(v)/1000, frac, count, 1/(1-frac))
			}
			if count >= total || pct >= 100 {
				fmt.Fprintf(bw, "%12.3f %2.12f %10d\n", float64(h.Max())/1000, 1.0, total)
				break
			}
			halvings := math.Floor(math.Log2(100 / (100 - pct)))
			ticks := ticksPerHalf * math.Pow(2, halvings+1)
			pct += 100 / ticks
		}
	}
	s := Summarize(h)
	fmt.Fprintf(bw, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", ms(s.Mean), h.StdDev()/1000)
	fmt.Fprintf(bw, "#[Max     = %12.3f, Total count    = %12d]\n", ms(s.Max), total)
	return bw.Flush()
}

// cumulativeCounts returns a function giving how many recorded values are at
// or below v. It walks the histogram's bars once.
func cumulativeCounts(h *hdrhistogram.Histogram) func(v int64) int64 {
	bars := h.Distribution()
	return func(v int64) int64 {
		var n int64
		for _, b := range bars {
			if b.From > v {
				break
			}
			n += b.Count
		}
		return n
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
