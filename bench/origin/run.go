package origin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Run is the `sluice origin` command: it parses args, starts one origin
// per -listen address (a comma-separated list starts a pool in one process),
// prints one line per address to stdout, and serves until ctx is done. It
// returns flag.ErrHelp for -h, and a non-nil error for bad flags or an
// address that cannot be listened on (after closing what it started).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("origin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts   Options
		listen string
		name   string
	)
	fs.StringVar(&listen, "listen", "127.0.0.1:9001", "address to listen on; a comma-separated list starts one origin per address")
	fs.Var(&opts.Latency, "latency", "added latency: none, fixed:2ms, uniform:1ms-5ms, lognormal:MEDIAN:SIGMA[:CAP] (e.g. lognormal:2ms:0.5)")
	fs.IntVar(&opts.PayloadBytes, "payload", defaultPayloadBytes, "approximate size in bytes of a GET /orders/{id} body")
	fs.StringVar(&opts.CacheControl, "cache-control", "", "Cache-Control sent on GET /orders/{id}, e.g. max-age=5 (default: none)")
	fs.Float64Var(&opts.ErrorRate, "error-rate", 0, "fraction [0,1] of /orders requests answered 500")
	fs.Var(&opts.Fault, "fault", "initial fault mode: "+faultModeNames)
	fs.DurationVar(&opts.SlowBodyInterval, "slow-body-interval", defaultSlowBody, "pause between body bytes in fault mode slow_body")
	fs.StringVar(&name, "name", "", "X-Origin name (default: the address); with several addresses, a comma-separated list of as many names, or one prefix numbered -1, -2, ...")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("origin: unexpected arguments %q", fs.Args())
	}
	addrs := splitList(listen)
	if len(addrs) == 0 {
		return errors.New("origin: -listen needs at least one address")
	}
	names, err := expandNames(name, len(addrs))
	if err != nil {
		return err
	}

	origins := make([]*Server, 0, len(addrs))
	closeAll := func() error {
		var errs []error
		for _, o := range origins {
			errs = append(errs, o.Close())
		}
		return errors.Join(errs...)
	}
	for i, addr := range addrs {
		o := opts
		o.Addr = addr
		o.Name = names[i]
		org, err := Start(o)
		if err != nil {
			return errors.Join(err, closeAll())
		}
		origins = append(origins, org)
		fmt.Fprintf(stdout, "origin %s listening on http://%s (latency %s, payload %dB, fault %s)\n",
			org.Name(), org.Addr(), opts.Latency.String(), org.opts.PayloadBytes, org.Fault())
	}
	<-ctx.Done()
	return closeAll()
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// expandNames expands the -name flag to n names: "" leaves each origin its
// address; a list must have n items; a single name for several origins is
// numbered so each backend of the pool stays distinguishable.
func expandNames(flagValue string, n int) ([]string, error) {
	names := make([]string, n)
	list := splitList(flagValue)
	switch {
	case len(list) == 0:
	case len(list) == n:
		copy(names, list)
	case len(list) == 1:
		for i := range names {
			names[i] = list[0] + "-" + strconv.Itoa(i+1)
		}
	default:
		return nil, fmt.Errorf("origin: -name has %d names for %d -listen addresses", len(list), n)
	}
	return names, nil
}
