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
// banner first when the run is invalid (the one place the text report gives
// the reasons), then what was asked, rates, the latency table, status codes
// and errors.
func WriteText(w io.Writer, res *Result) error {
	var b strings.Builder
	if !res.Valid {
		b.WriteString("!!! INVALID RUN: do not trust these numbers !!!\n")
		for _, why := range res.Invalid {
			fmt.Fprintf(&b, "!!!   %s\n", why)
		}
		b.WriteString("\n")
	}
	sw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, row := range settingRows(res.Settings) {
		fmt.Fprintf(sw, "%s\t%s\n", row[0], row[1])
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")
	if err := writeMeasures(&b, res); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMeasures writes what the text report says after the banner and the
// settings; the HTML report shows those two its own way.
func writeMeasures(b *strings.Builder, res *Result) error {
	if res.Corrected {
		fmt.Fprintf(b, "open loop, %d connections, target %.1f req/s: latency measured from when each request was due (coordinated omission corrected)\n",
			res.Connections, res.TargetRate)
	} else {
		fmt.Fprintf(b, "closed loop, %d connections: latency is UNCORRECTED service time (send to response); use -rate for corrected latency\n",
			res.Connections)
	}
	fmt.Fprintf(b, "%d requests in %v, %.1f req/s achieved\n\n", res.Requests, res.Elapsed.Round(time.Millisecond), res.AchievedRate)

	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
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
		fmt.Fprintf(b, " %s=%d", label, res.Status[code])
	}
	e := res.Errors
	fmt.Fprintf(b, "\nerrors: %d (connect=%d timeout=%d other=%d 4xx=%d 5xx=%d)\n",
		e.Total(), e.Connect, e.Timeout, e.Other, e.Status4xx, e.Status5xx)
	if e.Connect > 0 && res.ConnectError != "" {
		fmt.Fprintf(b, "connect errors: %s (each connection waited up to %v between attempts)\n",
			res.ConnectError, backoffCap(res.Settings.Connections))
	}
	if res.Valid {
		b.WriteString("run is valid\n")
	}
	return nil
}

// settingRows lists what a run was asked to do, one name and value a row,
// for the text and HTML reports.
func settingRows(s Settings) [][2]string {
	var rows [][2]string
	add := func(name, value string) { rows = append(rows, [2]string{name, value}) }
	if s.URL != "" {
		add("url", s.URL)
	}
	if s.Method != "" {
		add("method", s.Method)
	}
	for _, h := range s.Headers {
		add("header", h)
	}
	if s.Body != "" {
		add("body", s.Body)
	}
	for _, r := range s.Scenario {
		add("request", fmt.Sprintf("%s (weight %d): %s %s", r.Name, r.Weight, r.Method, r.Path))
	}
	if s.Rate > 0 {
		add("load", fmt.Sprintf("open loop, %g req/s", s.Rate))
	} else {
		add("load", "closed loop")
	}
	add("connections", fmt.Sprint(s.Connections))
	duration := "no time bound"
	if s.Duration > 0 {
		duration = s.Duration.String()
	}
	if s.Warmup > 0 {
		duration += fmt.Sprintf(", after a %v warm-up", s.Warmup)
	}
	add("duration", duration)
	if s.Requests > 0 {
		add("requests", fmt.Sprintf("at most %d", s.Requests))
	}
	add("timeout", s.Timeout.String())
	limits := fmt.Sprintf("error rate > %.2f%%", s.MaxErrorRate*100)
	if s.Rate > 0 {
		limits += fmt.Sprintf(", generator lag p99 > %v", s.MaxLag)
	}
	add("invalid if", limits)
	return rows
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

type jsonScenarioRequest struct {
	Name    string            `json:"name"`
	Weight  int               `json:"weight"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

type jsonSettings struct {
	URL          string                `json:"url,omitempty"`
	Method       string                `json:"method,omitempty"`
	Headers      []string              `json:"headers,omitempty"`
	Body         string                `json:"body,omitempty"`
	Scenario     []jsonScenarioRequest `json:"scenario,omitempty"`
	Mode         string                `json:"mode"`
	Rate         float64               `json:"rate"`
	Connections  int                   `json:"connections"`
	DurationS    float64               `json:"duration_s"` // 0: bounded by requests only
	Requests     int64                 `json:"requests"`   // 0: no bound
	WarmupS      float64               `json:"warmup_s"`
	TimeoutS     float64               `json:"timeout_s"`
	MaxErrorRate float64               `json:"max_error_rate"`
	MaxLagMs     float64               `json:"max_lag_ms"`
}

func toJSONSettings(s Settings) jsonSettings {
	js := jsonSettings{
		URL: s.URL, Method: s.Method, Headers: s.Headers, Body: s.Body,
		Mode: "closed", Rate: s.Rate, Connections: s.Connections,
		DurationS: s.Duration.Seconds(), Requests: s.Requests, WarmupS: s.Warmup.Seconds(),
		TimeoutS: s.Timeout.Seconds(), MaxErrorRate: s.MaxErrorRate, MaxLagMs: ms(s.MaxLag),
	}
	if s.Rate > 0 {
		js.Mode = "open"
	}
	for _, r := range s.Scenario {
		js.Scenario = append(js.Scenario, jsonScenarioRequest{r.Name, r.Weight, r.Method, r.Path, r.Headers, r.Body})
	}
	return js
}

type jsonReport struct {
	Valid        bool             `json:"valid"`
	Invalid      []string         `json:"invalid"`
	Settings     jsonSettings     `json:"settings"`
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
	ConnectError string           `json:"connect_error,omitempty"`
	Latency      jsonSummary      `json:"latency"`
	Service      jsonSummary      `json:"service_time"`
	Lag          jsonSummary      `json:"generator_lag"`
	Series       []jsonSample     `json:"series"`
}

// WriteJSON writes the run as one JSON object; durations are in
// milliseconds (fields ending in _ms) or seconds (_s).
func WriteJSON(w io.Writer, res *Result) error {
	rep := jsonReport{
		Valid: res.Valid, Invalid: res.Invalid, Settings: toJSONSettings(res.Settings),
		Mode: res.Mode, Corrected: res.Corrected,
		Connections: res.Connections, TargetRate: res.TargetRate, AchievedRate: res.AchievedRate,
		ElapsedS: res.Elapsed.Seconds(), Requests: res.Requests,
		Status: make(map[string]int64, len(res.Status)), Errors: res.Errors, ErrorsTotal: res.Errors.Total(),
		ConnectError: res.ConnectError,
		Latency:      toJSONSummary(Summarize(res.Latency)),
		Service:      toJSONSummary(Summarize(res.Service)),
		Lag:          toJSONSummary(Summarize(res.Lag)),
		Series:       make([]jsonSample, 0, len(res.Series)),
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
