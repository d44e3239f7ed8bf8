// Command sluice is the Sluice API gateway: run it, validate its
// configuration, load-test a target, or start a synthetic backend.
//
//	sluice run gateway.yaml           start the gateway (-c FILE works too)
//	sluice validate gateway.yaml      check a file as run would; exit 1 listing every problem
//	sluice demo [-port-offset N]      three synthetic origins and the gateway, in one process
//	sluice origin -listen ADDR[,ADDR] synthetic order backend
//	sluice bench [flags] URL          load generator
//	sluice version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/bench"
	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // -h printed the usage
	default:
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

const usage = `usage: sluice <command> [flags]

commands:
  run [-c] FILE       start the gateway with configuration FILE (default gateway.yaml)
  validate [-c] FILE  check FILE as run would; print every problem and exit 1 if there are any
  demo [-c FILE] [-port-offset N] [-listen ADDR]
                      start synthetic origins for every backend in FILE, then the gateway
  origin [flags]      start a synthetic order backend (sluice origin -h)
  bench [flags] URL   load-test a URL (sluice bench -h)
  version             print the version
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runGateway(ctx, rest, stderr, false)
	case "demo":
		return runGateway(ctx, rest, stderr, true)
	case "validate":
		return validate(rest, stdout, stderr)
	case "origin":
		return origin.Run(ctx, rest, stdout, stderr)
	case "bench":
		return bench.RunBench(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "sluice", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// validate is `sluice validate`: checkFile, the checks `sluice run` makes
// before it opens anything, so that one accepts exactly what the other does.
func validate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	c := addConfigFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, err := configFile(fs, c)
	if err != nil {
		return err
	}
	var ports demoPorts // moves nothing
	_, warnings, err := checkFile(path, &ports)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", path, w)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

// checkFile loads path, its ports moved by ports, and checks it as `sluice
// run` does before it opens anything: config.Load, then gateway.Check's dry
// run of the routing table. The warnings come with an error too.
func checkFile(path string, ports *demoPorts) (cfg *config.Config, warnings []string, err error) {
	cfg, err = ports.load(path)
	if err == nil {
		warnings, err = gateway.Check(cfg)
	}
	if err != nil {
		return nil, warnings, fmt.Errorf("%s is not valid:\n%w", path, err)
	}
	return cfg, warnings, nil
}

// newFlagSet returns the flag set of command name, which writes its usage
// and errors to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// configFlag is -c, the configuration file. It keeps every value given, so
// that configFile can refuse two -c naming different files: with a plain
// string flag the last would silently win, and a command would check or
// run another file than the operator believes.
type configFlag struct {
	path  string   // the file: the last -c, else the default
	given []string // every -c, in order
}

func (f *configFlag) String() string {
	if f == nil {
		return ""
	}
	return f.path
}

func (f *configFlag) Set(s string) error {
	f.path = s
	f.given = append(f.given, s)
	return nil
}

// addConfigFlag registers -c on fs, with its default gateway.yaml.
func addConfigFlag(fs *flag.FlagSet) *configFlag {
	c := &configFlag{path: "gateway.yaml"}
	fs.Var(c, "c", "configuration `file` (or give it as the only argument)")
	return c
}

// configFile returns the file a command was given: -c FILE, or FILE alone,
// the habit from other tools. Anything else (two different files, by -c
// twice or by -c and an argument, or extra arguments) is refused rather
// than guessed, since a command that quietly checks ./gateway.yaml or the
// last file named instead of the one meant reports a success that means
// nothing.
func configFile(fs *flag.FlagSet, c *configFlag) (string, error) {
	for _, other := range c.given {
		if !sameFile(c.given[0], other) {
			return "", fmt.Errorf("-c %s and -c %s name two configuration files: give one", c.given[0], other)
		}
	}
	switch args := fs.Args(); {
	case len(args) == 0:
		return c.path, nil
	case len(args) > 1:
		return "", fmt.Errorf("too many arguments %q: give one configuration file, after the flags", args)
	case len(c.given) > 0 && !sameFile(c.path, args[0]):
		return "", fmt.Errorf("-c %s and %s name two configuration files: give one", c.path, args[0])
	default:
		return args[0], nil
	}
}

// sameFile reports whether a and b name one file ("./gateway.yaml" and
// "/etc/sluice/gateway.yaml" may).
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

func runGateway(ctx context.Context, args []string, stderr io.Writer, demo bool) error {
	name := "run"
	if demo {
		name = "demo"
	}
	fs := newFlagSet(name, stderr)
	c := addConfigFlag(fs)
	watch := fs.Bool("watch", true, "reload when the configuration file changes (SIGHUP always reloads)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file` when it ends (go tool pprof reads it)")
	var ports demoPorts // moves nothing for run
	if demo {
		ports.addFlags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, err := configFile(fs, c)
	if err != nil {
		return err
	}
	// A bad flag is refused before the demo starts its origins, not when
	// the gateway's listener fails after them.
	if err := ports.check(); err != nil {
		return err
	}
	cfg, warnings, err := checkFile(path, &ports)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	// The Redis client's logger is the library's one global: set here, at
	// the one place that wires the process.
	redis.SetLogger(redisLog{log})
	for _, w := range warnings {
		log.Warn("configuration warning", "file", path, "warning", w)
	}
	if *cpuProfile != "" {
		stop, err := profileCPU(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}

	if demo {
		stopOrigins, err := startDemoOrigins(cfg, log)
		if err != nil {
			return err
		}
		defer stopOrigins()
	}

	srv, err := gateway.New(cfg, gateway.Options{Logger: log})
	if err != nil {
		if demo {
			return fmt.Errorf("%w (-port-offset N or -listen ADDR moves the demo)", err)
		}
		return err
	}
	if demo {
		printDemo(stderr, srv, cfg)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if *watch {
		go func() {
			if err := ports.watchFile(watchCtx, srv, path, log); err != nil {
				log.Warn("not watching the configuration file; SIGHUP still reloads", "file", path, "error", err)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	for {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading", "file", path)
			_ = ports.reloadFile(srv, path, log)
		case err := <-served:
			return err
		case <-ctx.Done():
			skip, stopSkip := secondSignal(log)
			defer stopSkip()
			err := srv.Terminate(skip)
			<-served
			return err
		}
	}
}

// profileCPU starts a CPU profile written to path; stop ends it and closes
// the file.
func profileCPU(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// secondSignal returns a channel closed by the next SIGTERM or SIGINT after
// the one that began the shutdown: an operator's second Ctrl-C skips the
// rest of server.shutdown_delay. stop stops listening.
func secondSignal(log *slog.Logger) (skip <-chan struct{}, stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	skipped, done := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			log.Info("second signal: draining now", "signal", s.String())
			close(skipped)
		case <-done:
		}
	}()
	return skipped, func() { signal.Stop(sig); close(done) }
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	o := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}
