package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func runBench(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = RunBench(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestRunBenchWritesJSONAndFiles(t *testing.T) {
	url := startServer(t, fixedLatency(time.Millisecond))
	dir := t.TempDir()
	hgrm, html := filepath.Join(dir, "lat.hgrm"), filepath.Join(dir, "report.html")
	out, _, err := runBench(t, "-url", url+"/x/{seq}", "-rate", "200", "-connections", "4",
		"-duration", "1500ms", "-warmup", "200ms", "-o", "json", "-hgrm", hgrm, "-html", html,
		"-H", "X-Test: 1", "-max-lag", "500ms")
	if err != nil && !errors.Is(err, ErrInvalidRun) {
		t.Fatalf("RunBench: %v\n%s", err, out)
	}
	var rep struct {
		Valid     bool             `json:"valid"`
		Mode      string           `json:"mode"`
		Corrected bool             `json:"corrected"`
		Requests  int64            `json:"requests"`
		Status    map[string]int64 `json:"status"`
		Latency   map[string]float64
		Series    []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	// A starved test machine may make the run invalid; the report must say
	// so consistently, and must be complete either way.
	if rep.Valid != (err == nil) {
		t.Errorf("report valid = %v but RunBench returned %v", rep.Valid, err)
	}
	if rep.Mode != "open" || !rep.Corrected || rep.Requests < 250 || rep.Status["200"] != rep.Requests {
		t.Errorf("report %+v", rep)
	}
	for _, k := range []string{"p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "p99_99_ms", "max_ms"} {
		if v, ok := rep.Latency[k]; !ok || v < 1 {
			t.Errorf("latency %s = %v, want >= 1ms", k, v)
		}
	}
	if len(rep.Series) == 0 {
		t.Error("no per-second series")
	}
	for _, f := range []struct{ path, want string }{{hgrm, "Percentile"}, {html, "<svg"}} {
		b, err := os.ReadFile(f.path)
		if err != nil || !strings.Contains(string(b), f.want) {
			t.Errorf("%s: err %v, does not contain %q", f.path, err, f.want)
		}
	}
}

// The reasons of an invalid run are written once in the report and once in
// the error, which main prints on stderr: the report used to say them twice
// and RunBench wrote them to stderr before main did again.
func TestRunBenchFailsAnInvalidRunLoudlyOnce(t *testing.T) {
	url := startServer(t, fixedLatency(50*time.Millisecond))
	for _, format := range []string{"text", "json"} {
		t.Run("with -o "+format, func(t *testing.T) {
			out, stderr, err := runBench(t, "-url", url, "-rate", "400", "-connections", "2", "-duration", "1s", "-warmup", "0", "-o", format)
			if !errors.Is(err, ErrInvalidRun) {
				t.Fatalf("err = %v, want ErrInvalidRun", err)
			}
			const reason = "achieved rate"
			if n := strings.Count(err.Error(), reason); n != 1 {
				t.Errorf("error %q names the reason %d times, want once", err, n)
			}
			if n := strings.Count(out, reason); n != 1 {
				t.Errorf("report names the reason %d times, want once:\n%s", n, out)
			}
			if stderr != "" {
				t.Errorf("stderr %q, want nothing: the caller prints the error", stderr)
			}
			if format == "text" && !strings.HasPrefix(out, "!!! INVALID RUN") {
				t.Errorf("report does not open with the invalid banner:\n%s", out)
			}
		})
	}
}

func TestRunBenchPrintsAClosedLoopTable(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	out, _, err := runBench(t, "-url", url, "-connections", "2", "-requests", "200", "-duration", "0", "-warmup", "0")
	if err != nil {
		t.Fatalf("RunBench: %v\n%s", err, out)
	}
	for _, want := range []string{"closed loop", "UNCORRECTED", "p99.99", "200 requests", "status: 200=200", "run is valid"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunBenchRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no url", []string{"-rate", "10"}},
		{"an unknown output format", []string{"-url", "http://127.0.0.1:1", "-o", "xml"}},
		{"a run with no bound", []string{"-url", "http://127.0.0.1:1", "-duration", "0"}},
		{"an unknown flag", []string{"-url", "http://127.0.0.1:1", "-nope"}},
		{"a second url", []string{"-url", "http://127.0.0.1:1", "http://127.0.0.1:2"}},
		{"two url arguments", []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}},
		{"a missing scenario file", []string{"-scenario", "testdata/none.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is an error", func(t *testing.T) {
			if _, _, err := runBench(t, tc.args...); err == nil || errors.Is(err, ErrInvalidRun) {
				t.Errorf("err = %v, want a usage error", err)
			}
		})
	}
}

func TestRunBenchLoadsAScenario(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	out, _, err := runBench(t, "-scenario", "testdata/mixed.yaml", "-url", url, "-rate", "300", "-connections", "4",
		"-requests", "150", "-duration", "0", "-warmup", "0", "-max-lag", "1s", "-o", "json")
	if err != nil && !errors.Is(err, ErrInvalidRun) {
		t.Fatalf("RunBench: %v\n%s", err, out)
	}
	var rep struct {
		Requests int64            `json:"requests"`
		Status   map[string]int64 `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 150 || rep.Status["200"] != 150 {
		t.Errorf("requests %d status %v, want 150 answered 200", rep.Requests, rep.Status)
	}
}

func TestRunBenchPrintsAPartialReportWhenCancelled(t *testing.T) {
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

// wrk and hey take the URL as their argument and -c for connections.
func TestRunBenchTakesTheURLAsItsArgument(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	bound := []string{"-requests", "30", "-duration", "0", "-warmup", "0", "-o", "json"}
	tests := []struct {
		name string
		args []string
	}{
		{"after the flags", append(append([]string{"-c", "3"}, bound...), url+"/x")},
		{"before the flags", append([]string{url + "/x", "-c", "3"}, bound...)},
		{"between the flags", append([]string{"-c", "3", url + "/x"}, bound...)},
		{"after --", append(append([]string{"-c", "3"}, bound...), "--", url+"/x")},
		{"given also as the same -url", append([]string{"-url", url + "/x", "-connections", "3", url + "/x"}, bound...)},
	}
	for _, tc := range tests {
		t.Run("the url "+tc.name, func(t *testing.T) {
			out, _, err := runBench(t, tc.args...)
			if err != nil {
				t.Fatalf("RunBench %q: %v\n%s", tc.args, err, out)
			}
			var rep struct {
				Requests int64 `json:"requests"`
				Settings struct {
					URL         string `json:"url"`
					Connections int    `json:"connections"`
				} `json:"settings"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Requests != 30 || rep.Settings.URL != url+"/x" || rep.Settings.Connections != 3 {
				t.Errorf("report %+v, want 30 requests to %s/x on 3 connections", rep, url)
			}
		})
	}
}

func TestRunBenchRefusesTwoDifferentURLs(t *testing.T) {
	_, _, err := runBench(t, "-url", "http://127.0.0.1:1/a", "http://127.0.0.1:1/b")
	if err == nil || !strings.Contains(err.Error(), "/a") || !strings.Contains(err.Error(), "/b") {
		t.Errorf("err = %v, want an error naming both URLs", err)
	}
}

// A report must say what was loaded and how, so that it can be read and
// repeated without the command line that produced it.
func TestRunBenchReportsRecordTheSettings(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	html := filepath.Join(t.TempDir(), "report.html")
	out, _, err := runBench(t, "-method", "POST", "-body", "{}", "-H", "Authorization: Bearer s3cret",
		"-rate", "200", "-c", "2", "-requests", "40", "-duration", "5s", "-warmup", "0", "-timeout", "1s",
		"-max-lag", "1s", "-o", "json", "-html", html, url+"/orders")
	if err != nil && !errors.Is(err, ErrInvalidRun) {
		t.Fatalf("RunBench: %v\n%s", err, out)
	}
	var rep struct {
		Settings map[string]any `json:"settings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"url": url + "/orders", "method": "POST", "body": "{}", "headers": []any{"Authorization: <redacted>"},
		"mode": "open", "rate": 200.0, "connections": 2.0, "requests": 40.0, "duration_s": 5.0, "warmup_s": 0.0,
		"timeout_s": 1.0, "max_error_rate": 0.01, "max_lag_ms": 1000.0,
	}
	if !reflect.DeepEqual(rep.Settings, want) {
		t.Errorf("JSON settings\n%v\nwant\n%v", rep.Settings, want)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{url + "/orders", "POST", "open loop, 200 req/s", "<td>2</td>", "at most 40", "Authorization: &lt;redacted&gt;"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	if strings.Contains(string(page), "s3cret") || strings.Contains(out, "s3cret") {
		t.Error("a report holds the Authorization header's value")
	}
}

// The null device is a character device too; a report sent there is not on
// a terminal, so the error must carry the reasons.
func TestTheNullDeviceIsNotATerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Errorf("isTerminal(%s) = true", os.DevNull)
	}
}
