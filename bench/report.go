package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the final report of a run as a human reads it: a loud
// banner first when the run is invalid, then rates, the latency table, status
// codes and errors.
func WriteText(w io.Writer, res *Result) error {
	var b strings.Builder
	if !res.Valid {
		b.WriteString("!!! INVALID RUN: do not trust these numbers !!!\n")
		for _, why := range res.Invalid {
			fmt.Fprintf(&b, "!!!   %s\n", why)
		}
		b.WriteString("\n")
	}
	if res.Corrected {
		fmt.Fprintf(&b, "open loop, %d connections, target %.1f req/s: latency measured from when each request was due (coordinated omission corrected)\n",
			res.Connections, res.TargetRate)
	} else {
		fmt.Fprintf(&b, "closed loop, %d connections: latency is UNCORRECTED service time (send to response); use -rate for corrected latency\n",
			res.Connections)
	}
	fmt.Fprintf(&b, "%d requests in %v, %.1f req/s achieved\n\n", res.Requests, res.Elapsed.Round(time.Millisecond), res.AchievedRate)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcount\tp50\tp90\tp99\tp99.9\tp99.99\tmax\t")
	row := func(name string, s Summary) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, s.Count,
			fmtDur(s.P50), fmtDur(s.P90), fmtDur(s.P99), fmtDur(s.P999), fmtDur(s.P9999), fmtDur(s.Max))
	}
	if res.Corrected {
		row("latency (corrected)", Summarize(res.Latency))
		row("service time", Summarize(res.Service))
		row("generator lag", Summarize(res.Lag))
	} else {
		row("latency (uncorrected)", Summarize(res.Latency))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	b.WriteString("\nstatus:")
	for _, code := range sortedCodes(res.Status) {
		label := fmt.Sprint(code)
		if code == 0 {
			label = "other"
		}
		fmt.Fprintf(&b, " %s=%d", label, res.Status[code])
	}
	e := res.Errors
	fmt.Fprintf(&b, "\nerrors: %d (connect=%d timeout=%d other=%d 4xx=%d 5xx=%d)\n",
		e.Total(), e.Connect, e.Timeout, e.Other, e.Status4xx, e.Status5xx)
	if res.Valid {
		b.WriteString("run is valid\n")
	} else {
		b.WriteString("INVALID RUN (see above)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatSample renders the live line printed once a second.
func FormatSample(s Sample) string {
	phase := ""
	if s.Warmup {
		phase = " (warm-up)"
	}
	return fmt.Sprintf("%6.1fs  %9.1f req/s  errors %d  p50 %s  p99 %s  max %s%s",
		s.At.Seconds(), s.Rate, s.Errors, fmtDur(s.P50), fmtDur(s.P99), fmtDur(s.Max), phase)
}

// fmtDur prints a latency in milliseconds with microsecond precision, the
// unit and precision the histograms keep.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", ms(d))
}

func sortedCodes(m map[int]int64) []int {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	return codes
}

// jsonSummary is a Summary in milliseconds, for machines.
type jsonSummary struct {
	Count  int64   `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p99_9_ms"`
	P9999  float64 `json:"p99_99_ms"`
	Max    float64 `json:"max_ms"`
}

func toJSONSummary(s Summary) jsonSummary {
	return jsonSummary{s.Count, ms(s.Min), ms(s.Mean), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.P9999), ms(s.Max)}
}

type jsonSample struct {
	AtS      float64 `json:"at_s"`
	Warmup   bool    `json:"warmup,omitempty"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Rate     float64 `json:"rate"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

type jsonReport struct {
	Valid        bool             `json:"valid"`
	Invalid      []string         `json:"invalid"`
	Mode         string           `json:"mode"`
	Corrected    bool             `json:"corrected"`
	Connections  int              `json:"connections"`
	TargetRate   float64          `json:"target_rate"`
	AchievedRate float64          `json:"achieved_rate"`
	ElapsedS     float64          `json:"elapsed_s"`
	Requests     int64            `json:"requests"`
	Status       map[string]int64 `json:"status"`
	Errors       ErrorCounts      `json:"errors"`
	ErrorsTotal  int64            `json:"errors_total"`
	Latency      jsonSummary      `json:"latency"`
	Service      jsonSummary      `json:"service_time"`
	Lag          jsonSummary      `json:"generator_lag"`
	Series       []jsonSample     `json:"series"`
}

// WriteJSON writes the run as one JSON object; durations are in
// milliseconds (fields ending in _ms) or seconds (_s).
func WriteJSON(w io.Writer, res *Result) error {
	rep := jsonReport{
		Valid: res.Valid, Invalid: res.Invalid, Mode: res.Mode, Corrected: res.Corrected,
		Connections: res.Connections, TargetRate: res.TargetRate, AchievedRate: res.AchievedRate,
		ElapsedS: res.Elapsed.Seconds(), Requests: res.Requests,
		Status: make(map[string]int64, len(res.Status)), Errors: res.Errors, ErrorsTotal: res.Errors.Total(),
		Latency: toJSONSummary(Summarize(res.Latency)),
		Service: toJSONSummary(Summarize(res.Service)),
		Lag:     toJSONSummary(Summarize(res.Lag)),
		Series:  make([]jsonSample, 0, len(res.Series)),
	}
	if rep.Invalid == nil {
		rep.Invalid = []string{}
	}
	for code, n := range res.Status {
		rep.Status[fmt.Sprint(code)] = n
	}
	for _, s := range res.Series {
		rep.Series = append(rep.Series, jsonSample{s.At.Seconds(), s.Warmup, s.Requests, s.Errors, s.Rate, ms(s.P50), ms(s.P99), ms(s.Max)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
