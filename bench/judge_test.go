package bench

import (
	"strings"
	"testing"
	"time"
)

// judge is the one place that decides whether a run is valid; each rule is
// exercised alone, on a result that passes every other rule.
func TestJudgeMarksEachKindOfInvalidRun(t *testing.T) {
	passing := func() *Result {
		res := &Result{Requests: 1000, AchievedRate: 1000, Lag: newHistogram()}
		for i := 0; i < 1000; i++ {
			recordNanos(res.Lag, int64(100*time.Microsecond))
		}
		return res
	}
	o := Options{Rate: 1000, MaxLag: time.Millisecond, MaxErrorRate: 0.01}
	tests := []struct {
		name   string
		mutate func(*Result)
		want   string // "" = valid
	}{
		{"a run that keeps its rate, lag and error budget is valid", func(*Result) {}, ""},
		{"a rate below 99% of the target is invalid", func(r *Result) { r.AchievedRate = 989 }, "achieved rate"},
		{"a large generator lag is invalid", func(r *Result) {
			for i := 0; i < 100; i++ {
				recordNanos(r.Lag, int64(5*time.Millisecond))
			}
		}, "generator lag"},
		{"errors over the threshold are invalid", func(r *Result) { r.Errors.Status5xx = 11 }, "error rate"},
		{"a run with no measured request is invalid", func(r *Result) { r.Requests, r.AchievedRate = 0, 1000 }, "no request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := passing()
			tt.mutate(res)
			(&runState{o: o}).judge(res)
			if tt.want == "" {
				if !res.Valid {
					t.Fatalf("invalid: %q", res.Invalid)
				}
				return
			}
			if res.Valid || !strings.Contains(strings.Join(res.Invalid, "; "), tt.want) {
				t.Fatalf("valid %v, reasons %q; want invalid for %q", res.Valid, res.Invalid, tt.want)
			}
		})
	}
}

func TestRateCheckIsStrictlyBelow99Percent(t *testing.T) {
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
