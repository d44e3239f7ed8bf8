package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/config"
)

// corpusCase is one configuration file of config/testdata and what loading
// and checking it must give (see config/testdata/corpus/README.md).
type corpusCase struct {
	path             string
	errors, warnings []string
}

// corpus reads every configuration of the config package's test corpus.
func corpus(t *testing.T) []corpusCase {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../config/testdata/*.yaml", "../config/testdata/corpus/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found %d corpus files, want the whole corpus", len(files))
	}
	cases := make([]corpusCase, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusCase{path: f}
		for _, line := range strings.Split(string(b), "\n") {
			if s, ok := strings.CutPrefix(line, "# error: "); ok {
				c.errors = append(c.errors, s)
			}
			if s, ok := strings.CutPrefix(line, "# warning: "); ok {
				c.warnings = append(c.warnings, s)
			}
		}
		cases = append(cases, c)
	}
	return cases
}

// loadAndCheck is what `sluice validate` does with a file.
func loadAndCheck(path string) (warnings []string, err error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return Check(cfg)
}

// problems returns the message of each problem joined in err.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, problems(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func TestCheckGivesWhatTheCorpusSays(t *testing.T) {
	for _, c := range corpus(t) {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			warnings, err := loadAndCheck(c.path)
			if got := problems(err); !slices.Equal(got, c.errors) {
				t.Errorf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.errors, "\n"))
			}
			if !slices.Equal(warnings, c.warnings) {
				t.Errorf("warnings\n%s\nwant\n%s", strings.Join(warnings, "\n"), strings.Join(c.warnings, "\n"))
			}
			if err == nil {
				return
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *config.FieldError
				if !errors.As(e, &fe) {
					t.Errorf("problem %q does not name its key (not a *config.FieldError)", e)
				}
			}
		})
	}
}

// TestNewAcceptsExactlyWhatCheckAccepts is the promise of `sluice validate`:
// over the whole corpus, a file it passes starts a gateway and a file it
// refuses does not.
func TestNewAcceptsExactlyWhatCheckAccepts(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range corpus(t) {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			cfg, err := config.Load(c.path)
			if err != nil {
				return // refused before either could look at it
			}
			_, checkErr := Check(cfg)

			// Free ports, so that what is compared is the configuration,
			// not what else runs on this machine.
			cfg.Listen = "127.0.0.1:0"
			if cfg.Admin.Listen != "" {
				cfg.Admin.Listen = "127.0.0.1:0"
			}
			srv, newErr := New(cfg, Options{Logger: quiet, AccessLogOutput: io.Discard})
			if srv != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				// Never served: fasthttp closes only the listeners Serve was
				// given.
				srv.frontLn.Close()
			}
			if (checkErr == nil) != (newErr == nil) {
				t.Errorf("Check says %v, New says %v", checkErr, newErr)
			}
		})
	}
}

func TestCheckStartsNothing(t *testing.T) {
	// A real backend that counts the connections it gets: Check must not
	// probe it, though the pool has health checks every 10ms.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	yaml := fmt.Sprintf(`
pools:
  orders:
    backends: [{addr: %q}]
    health_check: {path: /healthz, interval: 10ms, timeout: 5ms}
routes:
  - {name: orders, pool: orders}
`, ln.Addr().String())
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}

	before := runtime.NumGoroutine()
	for range 50 {
		if _, err := Check(cfg); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	time.Sleep(100 * time.Millisecond) // ten probe intervals
	if n := conns.Load(); n != 0 {
		t.Errorf("Check opened %d connections to the backend", n)
	}
	// Allow for goroutines of the runtime and of other tests' cleanup.
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines: %d before 50 Checks, %d after", before, after)
	}
}
