// Command sluice is the Sluice API gateway: run it, validate its
// configuration, load-test a target, or start a synthetic backend.
//
//	sluice run -c gateway.yaml        start the gateway
//	sluice validate -c gateway.yaml   check a file; exit 1 listing every problem
//	sluice demo                       three synthetic origins and the gateway, in one process
//	sluice origin -listen ADDR[,ADDR] synthetic order backend
//	sluice bench -url URL [flags]     load generator
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
	"strings"
	"syscall"

	"github.com/sluice-gw/sluice/bench"
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
  run -c FILE         start the gateway with configuration FILE (default gateway.yaml)
  validate -c FILE    check FILE; print every problem and exit 1 if there are any
  demo [-c FILE]      start synthetic origins for every backend in FILE, then the gateway
  origin [flags]      start a synthetic order backend (sluice origin -h)
  bench [flags]       load-test a URL (sluice bench -h)
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
		return validate(rest, stdout)
	case "origin":
		return bench.RunOrigin(ctx, rest, stdout, stderr)
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

func validate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path := fs.String("c", "gateway.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := config.Load(*path); err != nil {
		return fmt.Errorf("%s is not valid:\n%w", *path, err)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}

func runGateway(ctx context.Context, args []string, stderr io.Writer, demo bool) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("c", "gateway.yaml", "configuration file")
	watch := fs.Bool("watch", true, "reload when the configuration file changes (SIGHUP always reloads)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("%s is not valid:\n%w", *path, err)
	}
	log := newLogger(cfg.Log, stderr)

	if demo {
		stopOrigins, err := startDemoOrigins(cfg, log)
		if err != nil {
			return err
		}
		defer stopOrigins()
	}

	srv, err := gateway.New(cfg, gateway.Options{Logger: log})
	if err != nil {
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
			if err := srv.WatchFile(watchCtx, *path); err != nil {
				log.Warn("not watching the configuration file; SIGHUP still reloads", "file", *path, "error", err)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	for {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading", "file", *path)
			_ = srv.ReloadFile(*path)
		case err := <-served:
			return err
		case <-ctx.Done():
			drain := cfg.Server.DrainTimeout
			log.Info("shutting down", "drain_timeout", drain.String())
			sctx, cancel := context.WithTimeout(context.Background(), drain)
			err := srv.Shutdown(sctx)
			cancel()
			<-served
			return err
		}
	}
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

// startDemoOrigins starts one synthetic origin for every backend address in
// cfg, so the demo needs nothing but this binary.
func startDemoOrigins(cfg *config.Config, log *slog.Logger) (func(), error) {
	var origins []*bench.Origin
	stop := func() {
		for _, o := range origins {
			o.Close()
		}
	}
	seen := map[string]bool{}
	for _, p := range cfg.Pools {
		for _, b := range p.Backends {
			if seen[b.Addr] {
				continue
			}
			seen[b.Addr] = true
			o, err := bench.StartOrigin(bench.OriginOptions{Addr: b.Addr, CacheControl: "max-age=5"})
			if err != nil {
				stop()
				return nil, fmt.Errorf("demo: starting origin %s: %w", b.Addr, err)
			}
			log.Info("demo origin started", "addr", o.Addr())
			origins = append(origins, o)
		}
	}
	return stop, nil
}

func printDemo(w io.Writer, srv *gateway.Server, cfg *config.Config) {
	base := "http://" + srv.Addr().String()
	var b strings.Builder
	fmt.Fprintf(&b, "\nSluice demo is running. Try:\n\n")
	fmt.Fprintf(&b, "  curl -i %s/api/orders/42\n", base)
	fmt.Fprintf(&b, "  curl -i -X POST -d '{\"customer\":\"c-1\",\"items\":[{\"sku\":\"A-1\",\"qty\":2}]}' %s/api/orders\n", base)
	fmt.Fprintf(&b, "  curl -i %s/nope                       # 404: no route\n", base)
	fmt.Fprintf(&b, "  curl -i --path-as-is '%s/api/orders/../../admin'   # normalised before routing\n", base)
	if a := srv.AdminAddr(); a != nil {
		fmt.Fprintf(&b, "  curl -s http://%s/admin/pools\n", a)
		fmt.Fprintf(&b, "  curl -s http://%s/metrics | grep sluice_\n", a)
	}
	fmt.Fprintf(&b, "\nPress Ctrl-C to stop.\n\n")
	fmt.Fprint(w, b.String())
}
