package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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

func TestRunBenchFailsAnInvalidRunLoudly(t *testing.T) {
	url := startServer(t, fixedLatency(50*time.Millisecond))
	out, stderr, err := runBench(t, "-url", url, "-rate", "400", "-connections", "2", "-duration", "1s", "-warmup", "0")
	if !errors.Is(err, ErrInvalidRun) {
		t.Fatalf("err = %v, want ErrInvalidRun", err)
	}
	if !strings.HasPrefix(out, "!!! INVALID RUN") || !strings.Contains(stderr, "INVALID RUN") {
		t.Errorf("stdout:\n%s\nstderr:\n%s\nwant the invalid banner on both", out, stderr)
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
		{"a stray argument", []string{"-url", "http://127.0.0.1:1", "extra"}},
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
