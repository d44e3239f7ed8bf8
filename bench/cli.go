package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ErrInvalidRun is returned by RunBench when the run finished but is marked
// invalid, so that the command exits non-zero.
var ErrInvalidRun = errors.New("invalid run")

// headerFlags collects repeated -H flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// RunBench is `sluice bench [flags] [URL]`: it parses args (without the
// program and subcommand names), runs, prints the report to stdout and the
// live line to stderr when stderr is a terminal, writes the requested files,
// and returns an error wrapping ErrInvalidRun when the run is invalid. The
// reasons are then written once in the report and once in the error (which
// the caller prints), except when the text report went to a terminal: the
// error then points at the report above instead of repeating it.
//
// The URL may be given as -url or, as wrk and hey take it, as the one
// argument, before or after the flags; -c is short for -connections.
func RunBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sluice bench [flags] URL\n\nflags:\n")
		fs.PrintDefaults()
	}
	var (
		o        Options
		headers  headerFlags
		scenario = fs.String("scenario", "", "scenario YAML `file` with weighted requests (replaces -method, -H, -body; format in the README, Load testing)")
		format   = fs.String("o", "text", "output `format`: text or json")
		hgrm     = fs.String("hgrm", "", "write the latency percentile distribution to this .hgrm `file`")
		html     = fs.String("html", "", "write a self-contained HTML report to this `file`")
	)
	fs.StringVar(&o.URL, "url", "", "target `URL`; the path may hold {seq}, {rand:LO-HI}, {zipf:S:N}")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: total requests per second, latency corrected for coordinated omission; 0 = closed loop")
	fs.IntVar(&o.Connections, "connections", 64, "number of connections")
	fs.IntVar(&o.Connections, "c", 64, "short for -connections")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured duration, after the warm-up (0 = bounded by -requests only)")
	fs.Int64Var(&o.Requests, "requests", 0, "stop after this many measured requests (0 = no bound)")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "warm-up left out of the results")
	fs.StringVar(&o.Method, "method", "GET", "HTTP method")
	fs.Var(&headers, "H", "request header \"Name: value\" (repeatable)")
	fs.StringVar(&o.Body, "body", "", "request body; may hold placeholders")
	fs.Float64Var(&o.MaxErrorRate, "max-error-rate", 0.01, "fraction of failed requests above which the run is invalid (0 = none allowed)")
	fs.DurationVar(&o.MaxLag, "max-lag", 10*time.Millisecond, "generator lag p99 above which an open-loop run is invalid")
	fs.DurationVar(&o.Timeout, "timeout", 2*time.Second, "per-request timeout")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(positional) > 1:
		return fmt.Errorf("bench: unexpected arguments %q: give one URL", positional[1:])
	case len(positional) == 1 && o.URL != "" && o.URL != positional[0]:
		return fmt.Errorf("bench: two URLs: -url %q and argument %q; give one", o.URL, positional[0])
	case len(positional) == 1:
		o.URL = positional[0]
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("bench: -o %q: want text or json", *format)
	}
	if o.MaxErrorRate == 0 {
		o.MaxErrorRate = -1 // the flag's 0 means "no error allowed", Options' 0 means the default
	}
	if o.Duration == 0 && o.Requests == 0 {
		return errors.New("bench: -duration 0 needs -requests: every run must stop by itself")
	}
	o.Headers = headers
	if *scenario != "" {
		sc, err := LoadScenario(*scenario)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		o.Scenario = sc
	} else if o.URL == "" {
		return errors.New("bench: no URL: give it as the argument (sluice bench http://127.0.0.1:8080/), with -url, or use -scenario")
	}
	if isTerminal(stderr) {
		o.Progress = func(s Sample) { fmt.Fprintln(stderr, FormatSample(s)) }
	}

	res, err := Run(ctx, o)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *format == "json" {
		err = WriteJSON(stdout, res)
	} else {
		err = WriteText(stdout, res)
	}
	if err != nil {
		return fmt.Errorf("bench: writing report: %w", err)
	}
	if *hgrm != "" {
		if err := writeFile(*hgrm, func(w io.Writer) error { return WriteHgrm(w, res.Latency) }); err != nil {
			return fmt.Errorf("bench: -hgrm: %w", err)
		}
	}
	if *html != "" {
		if err := writeFile(*html, func(w io.Writer) error { return WriteHTML(w, res) }); err != nil {
			return fmt.Errorf("bench: -html: %w", err)
		}
	}
	if !res.Valid {
		if *format == "text" && isTerminal(stdout) {
			return fmt.Errorf("bench: %w: see the report above", ErrInvalidRun)
		}
		return fmt.Errorf("bench: %w: %s", ErrInvalidRun, strings.Join(res.Invalid, "; "))
	}
	return nil
}

// parseInterspersed parses args with fs, allowing arguments between and
// before the flags (`sluice bench URL -c 10`, as well as the flags first), and
// returns the arguments. A lone "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// isTerminal reports whether w is a character device other than the null
// device (which is one too: `sluice bench URL >/dev/null` must still print the
// reasons of an invalid run).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
