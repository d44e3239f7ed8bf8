package origin

import (
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestLatency(t *testing.T) {
	t.Run("a fixed latency delays the answer", func(t *testing.T) {
		o := startServer(t, Options{Latency: Latency{Dist: "fixed", Fixed: 50 * time.Millisecond}})
		start := time.Now()
		testnet.Do(t, o.Addr(), rawGet("/orders/1"))
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("answered in %v, want at least 50ms", d)
		}
	})
	t.Run("a slow request does not hold up other connections", func(t *testing.T) {
		// An hour of latency: only concurrent handling lets both requests
		// arrive, and only Close ends them.
		o := startServer(t, Options{Latency: Latency{Dist: "fixed", Fixed: time.Hour}})
		for i := 0; i < 2; i++ {
			io.WriteString(testnet.Dial(t, o.Addr()), rawGet("/orders/1"))
		}
		waitRequests(t, o, 2)
		closeWithin(t, o)
	})
}

func TestLatencyFlag(t *testing.T) {
	tests := []struct {
		in   string
		want Latency
		err  bool
	}{
		{in: "none", want: Latency{}},
		{in: "", want: Latency{}},
		{in: "fixed:2ms", want: Latency{Dist: "fixed", Fixed: 2 * time.Millisecond}},
		{in: "uniform:1ms-5ms", want: Latency{Dist: "uniform", Min: time.Millisecond, Max: 5 * time.Millisecond}},
		{in: "lognormal:2ms:0.5", want: Latency{Dist: "lognormal", Median: 2 * time.Millisecond, Sigma: 0.5}},
		{in: "lognormal:2ms:0.5:50ms", want: Latency{Dist: "lognormal", Median: 2 * time.Millisecond, Sigma: 0.5, Max: 50 * time.Millisecond}},
		{in: "uniform:5ms-1ms", err: true},
		{in: "uniform:5ms", err: true},
		{in: "fixed:soon", err: true},
		{in: "lognormal:0s:1", err: true},
		{in: "lognormal:1ms:-1", err: true},
		{in: "lognormal:1ms:NaN", err: true},
		{in: "gaussian:1ms", err: true},
	}
	for _, tt := range tests {
		t.Run("parsing "+strconv.Quote(tt.in), func(t *testing.T) {
			var l Latency
			err := l.Set(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("Set(%q) error %v, want error %v", tt.in, err, tt.err)
			}
			if err != nil {
				return
			}
			if l != tt.want {
				t.Fatalf("Set(%q) = %+v, want %+v", tt.in, l, tt.want)
			}
			var again Latency
			if err := again.Set(l.String()); err != nil || again != l {
				t.Errorf("String %q does not parse back: %+v %v", l.String(), again, err)
			}
		})
	}
	t.Run("samples stay within their bounds", func(t *testing.T) {
		u := Latency{Dist: "uniform", Min: time.Millisecond, Max: 2 * time.Millisecond}
		ln := Latency{Dist: "lognormal", Median: time.Millisecond, Sigma: 3, Max: 4 * time.Millisecond}
		for i := 0; i < 1000; i++ {
			if d := u.sample(); d < u.Min || d > u.Max {
				t.Fatalf("uniform sample %v outside [%v,%v]", d, u.Min, u.Max)
			}
			if d := ln.sample(); d < 0 || d > ln.Max {
				t.Fatalf("lognormal sample %v outside [0,%v]", d, ln.Max)
			}
		}
	})
}
