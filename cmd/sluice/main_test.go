package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

const validYAML = `
pools:
  orders: {backends: [{addr: 127.0.0.1:9001}]}
routes:
  - {name: orders, pool: orders, match: {path_prefix: /api/orders}}
`

// badYAML refers to a pool that does not exist.
const badYAML = `
pools:
  orders: {backends: [{addr: 127.0.0.1:9001}]}
routes:
  - {name: orders, pool: ordrs}
`

// chdirToConfigs makes a fresh directory the working directory and writes
// three files there: gateway.yaml (the default) and good.yaml, both valid,
// and bad.yaml, refused. It returns the paths of bad.yaml and good.yaml.
func chdirToConfigs(t *testing.T) (bad, good string) {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	testnet.WriteFile(t, filepath.Join(dir, "gateway.yaml"), validYAML)
	bad = testnet.WriteFile(t, filepath.Join(dir, "bad.yaml"), badYAML)
	good = testnet.WriteFile(t, filepath.Join(dir, "good.yaml"), validYAML)
	return bad, good
}

func TestValidateChecksTheFileItIsGiven(t *testing.T) {
	// The working directory holds a valid gateway.yaml, the default: a
	// command that ignored the file it was given would check that one and
	// report success.
	bad, good := chdirToConfigs(t)

	tests := []struct {
		name    string
		args    []string
		wantOut string // stdout on success
		wantErr string // part of the error otherwise
	}{
		{"no file means gateway.yaml", []string{"validate"}, "gateway.yaml: ok\n", ""},
		{"a positional file is the file", []string{"validate", bad}, "", bad + ` is not valid:` + "\n" + `routes[0].pool: unknown pool "ordrs"`},
		{"a positional good file passes", []string{"validate", good}, good + ": ok\n", ""},
		{"-c names the file", []string{"validate", "-c", bad}, "", bad + " is not valid"},
		{"-c and the same positional file agree", []string{"validate", "-c", good, "./good.yaml"}, "./good.yaml: ok\n", ""},
		{"-c and a different positional file are refused", []string{"validate", "-c", good, bad},
			"", "-c " + good + " and " + bad + " name two configuration files: give one"},
		{"-c twice with different files is refused, not the last one taken", []string{"validate", "-c", good, "-c", bad},
			"", "-c " + good + " and -c " + bad + " name two configuration files: give one"},
		{"-c twice with the same file is accepted", []string{"validate", "-c", good, "-c", "./good.yaml"}, "./good.yaml: ok\n", ""},
		{"two positional files are refused", []string{"validate", good, bad},
			"", `too many arguments ["` + good + `" "` + bad + `"]: give one configuration file, after the flags`},
		{"a flag after the file is refused, not ignored", []string{"validate", good, "-c", bad},
			"", "too many arguments"},
		{"a missing positional file is named", []string{"validate", "nope.yaml"}, "", "open nope.yaml: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if stdout.String() != tt.wantOut {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantOut)
			}
		})
	}
}

func TestRunUsesTheFileItIsGiven(t *testing.T) {
	// Each file here is refused before anything listens, so run returns at
	// once; what matters is which file it refused.
	bad, good := chdirToConfigs(t)

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"a positional file is the file", []string{"run", bad}, bad + " is not valid"},
		{"-c names the file", []string{"run", "-watch=false", "-c", bad}, bad + " is not valid"},
		{"-c and a different positional file are refused", []string{"run", "-c", good, bad}, "name two configuration files"},
		{"-c twice with different files is refused", []string{"run", "-watch=false", "-c", bad, "-c", good}, "name two configuration files"},
		{"two positional files are refused", []string{"run", good, bad}, "too many arguments"},
		{"a flag after the file is refused, not ignored", []string{"run", good, "-watch=false"}, "too many arguments"},
		{"demo takes a positional file too", []string{"demo", bad}, bad + " is not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidatePrintsWarnings(t *testing.T) {
	dir := t.TempDir()
	path := testnet.WriteFile(t, filepath.Join(dir, "gateway.yaml"), `
pools:
  orders: {backends: [{addr: 127.0.0.1:9001}]}
routes:
  - {name: orders, pool: orders, match: {methods: [GETT]}}
`)
	t.Setenv("SLUICE_SERVER_READ_TIMOUT", "3s")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"validate", path}, &stdout, &stderr); err != nil {
		t.Fatalf("validate: %v", err)
	}
	for _, want := range []string{
		path + `: warning: SLUICE_SERVER_READ_TIMOUT is set but names no setting; it is ignored (did you mean SLUICE_SERVER_READ_TIMEOUT?)`,
		path + `: warning: routes[0].match.methods[0]: "GETT" is not a registered HTTP method; the route matches only requests whose method is exactly "GETT"`,
	} {
		if !strings.Contains(stderr.String(), want+"\n") {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.String() != path+": ok\n" {
		t.Errorf("stdout %q", stdout.String())
	}
}

// listeningAddr finds the front address in the "sluice listening" log line.
var listeningAddr = regexp.MustCompile(`"msg":"sluice listening","addr":"([^"]+)"|msg="sluice listening" addr=(\S+)`)

// runOnce is `sluice run` with args (a file and flags), stopped as soon as
// it serves. It returns the log, and run's error when the gateway refused to
// start, nil when it served a request and then shut down cleanly.
func runOnce(t *testing.T, args ...string) (log string, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testnet.Buffer{}
	done := make(chan error, 1)
	go func() { done <- runGateway(ctx, append([]string{"-watch=false"}, args...), out, false) }()

	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("run returned nil before it was stopped; log:\n%s", out)
			}
			return out.String(), err
		case <-deadline:
			t.Fatalf("run neither failed nor served within 10s; log:\n%s", out)
		case <-time.After(10 * time.Millisecond):
		}
		m := listeningAddr.FindStringSubmatch(out.String())
		if m == nil {
			continue
		}
		// An answer, whatever its status, means the server is serving; only
		// then is a stop certain to be seen.
		resp, err := http.Get("http://" + m[1] + m[2] + "/")
		if err != nil {
			continue
		}
		resp.Body.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run did not stop cleanly: %v", err)
			}
			return out.String(), nil
		case <-time.After(30 * time.Second):
			t.Fatalf("run did not stop within 30s of its context ending")
		}
	}
}

func TestRunLogsWarnings(t *testing.T) {
	path := testnet.WriteFile(t, filepath.Join(t.TempDir(), "gateway.yaml"), `
listen: 127.0.0.1:0
admin: {listen: ""}
log: {format: text}
pools:
  orders: {backends: [{addr: 127.0.0.1:9001}]}
routes:
  - {name: orders, pool: orders, match: {methods: [GETT]}}
`)
	log, err := runOnce(t, path)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if want := `warning="routes[0].match.methods[0]: \"GETT\" is not a registered HTTP method`; !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

// TestValidateAgreesWithRun holds `sluice validate` and `sluice run` to the
// same verdict over the configuration test corpus, and validate to the
// problems each file lists (config/testdata/corpus/README.md).
func TestValidateAgreesWithRun(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../../config/testdata/*.yaml", "../../config/testdata/corpus/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found %d corpus files, want the whole corpus", len(files))
	}
	// Free ports and no access log, so that the verdicts depend on the
	// files, not on this machine. Both commands see the same environment.
	t.Setenv("SLUICE_LISTEN", "127.0.0.1:0")
	t.Setenv("SLUICE_ADMIN_LISTEN", "127.0.0.1:0")
	t.Setenv("SLUICE_ACCESS_LOG_ENABLED", "false")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var wantErrors []string
			for _, line := range strings.Split(string(b), "\n") {
				if s, ok := strings.CutPrefix(line, "# error: "); ok {
					wantErrors = append(wantErrors, s)
				}
			}

			validateErr := run([]string{"validate", file}, io.Discard, io.Discard)
			_, runErr := runOnce(t, file)

			if (validateErr == nil) != (runErr == nil) {
				t.Fatalf("validate says %v\nrun says %v", validateErr, runErr)
			}
			if (validateErr == nil) != (len(wantErrors) == 0) {
				t.Fatalf("validate says %v, the file wants %q", validateErr, wantErrors)
			}
			for _, want := range wantErrors {
				if !strings.Contains(validateErr.Error(), "\n"+want) {
					t.Errorf("validate's error lacks %q:\n%v", want, validateErr)
				}
			}
		})
	}
}

// -cpuprofile writes a profile of the whole run, readable by go tool pprof
// (a gzipped protocol buffer), when the run ends.
func TestRunWritesACPUProfile(t *testing.T) {
	dir := t.TempDir()
	path := testnet.WriteFile(t, filepath.Join(dir, "gateway.yaml"), `
listen: 127.0.0.1:0
admin: {listen: ""}
log: {format: text}
pools:
  orders: {backends: [{addr: 127.0.0.1:9001}]}
routes:
  - {name: orders, pool: orders, match: {path_prefix: /}}
`)
	prof := filepath.Join(dir, "cpu.pprof")
	if _, err := runOnce(t, "-cpuprofile", prof, path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("the profile is %d bytes, not gzipped", len(b))
	}
	if _, err := runOnce(t, "-cpuprofile", filepath.Join(dir, "no", "such", "dir"), path); err == nil ||
		!strings.Contains(err.Error(), "cpuprofile") {
		t.Errorf("an unwritable profile: %v, want an error naming the flag", err)
	}
}
