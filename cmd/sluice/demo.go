package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway"
)

// demoPorts moves `sluice demo` off the ports its file names, so that it runs
// where 8080 or 9001 is already taken. The file is not changed: the ports are
// moved on every load of it, the first and each reload, so that a reload does
// not point the gateway back at the file's ports. The zero value, which
// `sluice run` uses, moves nothing and loads and reloads through the gateway
// as they are.
type demoPorts struct {
	// offset is added to every port of the file: listen, admin.listen and
	// every backend (which the demo's origins then listen on). A port 0
	// (any free port) stays 0.
	offset int
	// listen, when set, replaces the gateway's listen address, after offset.
	listen string
}

// addFlags registers the demo's flags on fs.
func (d *demoPorts) addFlags(fs *flag.FlagSet) {
	fs.IntVar(&d.offset, "port-offset", 0, "add `N` to every port of the file (listen, admin.listen, each backend and its demo origin)")
	fs.StringVar(&d.listen, "listen", "", "the gateway's listen `address`, instead of the file's (overrides -port-offset for it)")
}

// check refuses a -listen that no listener could take, with the rule of the
// file's listen key.
func (d *demoPorts) check() error {
	if d.listen == "" {
		return nil
	}
	if err := config.CheckListen(d.listen); err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	// Well-formed is not enough: a host that does not resolve, or a port
	// in use, would fail only after the demo's origins had started.
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	return ln.Close()
}

func (d *demoPorts) moves() bool { return d.offset != 0 || d.listen != "" }

// load is config.Load with the ports moved.
func (d *demoPorts) load(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil || !d.moves() {
		return cfg, err
	}
	if err := d.apply(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// apply moves the ports of cfg.
func (d *demoPorts) apply(cfg *config.Config) error {
	var err error
	if cfg.Listen, err = d.shift("listen", cfg.Listen); err != nil {
		return err
	}
	if cfg.Admin.Listen != "" {
		if cfg.Admin.Listen, err = d.shift("admin.listen", cfg.Admin.Listen); err != nil {
			return err
		}
	}
	for name, p := range cfg.Pools {
		backends := append(p.Backends[:0:0], p.Backends...)
		for i := range backends {
			key := fmt.Sprintf("pools.%s.backends[%d].addr", name, i)
			if backends[i].Addr, err = d.shift(key, backends[i].Addr); err != nil {
				return err
			}
		}
		p.Backends = backends
		cfg.Pools[name] = p
	}
	if d.listen != "" {
		cfg.Listen = d.listen
	}
	return nil
}

// shift adds the offset to the port of addr, the value of key.
func (d *demoPorts) shift(key, addr string) (string, error) {
	if d.offset == 0 {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		return addr, nil // a named or any-free port is left as it is
	}
	moved := n + d.offset
	if moved < 1 || moved > 65535 {
		return "", fmt.Errorf("-port-offset %d: %s %q would move to port %d", d.offset, key, addr, moved)
	}
	return net.JoinHostPort(host, strconv.Itoa(moved)), nil
}

// reloadFile is srv.ReloadFile through load.
func (d *demoPorts) reloadFile(srv *gateway.Server, path string, log *slog.Logger) error {
	if !d.moves() {
		return srv.ReloadFile(path)
	}
	cfg, err := d.load(path)
	if err != nil {
		srv.ReloadFailed(err)
		return err
	}
	if err := srv.Reload(cfg); err != nil {
		log.Error("configuration not reloaded; keeping the running one", "file", path, "error", err)
		return err
	}
	return nil
}

// watchFile is srv.WatchFile through load.
func (d *demoPorts) watchFile(ctx context.Context, srv *gateway.Server, path string, log *slog.Logger) error {
	if !d.moves() {
		return srv.WatchFile(ctx, path)
	}
	return config.Watch(ctx, path, func() {
		log.Info("configuration file changed", "file", path)
		_ = d.reloadFile(srv, path, log)
	})
}

// startDemoOrigins starts one synthetic origin for every backend address in
// cfg, so the demo needs nothing but this binary.
func startDemoOrigins(cfg *config.Config, log *slog.Logger) (func(), error) {
	var origins []*origin.Server
	stop := func() {
		for _, o := range origins {
			o.Close()
		}
	}
	for _, p := range cfg.Pools {
		for _, b := range p.Backends {
			if b.Addr == cfg.Listen {
				return nil, fmt.Errorf("demo: the gateway's listen address %s is also a backend's: give -listen another port", b.Addr)
			}
		}
	}
	seen := map[string]bool{}
	for _, p := range cfg.Pools {
		for _, b := range p.Backends {
			if seen[b.Addr] {
				continue
			}

			seen[b.Addr] = true
			o, err := origin.Start(origin.Options{Addr: b.Addr, CacheControl: "max-age=5"})
			if err != nil {
				stop()
				return nil, fmt.Errorf("demo: starting origin %s: %w (-port-offset N moves every port of the demo)", b.Addr, err)
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
	fmt.Fprintf(&b, "  curl -i %s/api/cached/orders/42       # twice: Cache-Status says miss, then hit\n", base)
	fmt.Fprintf(&b, "  curl -o /dev/null %s/api/download?size=50MiB   # streamed, never held whole\n", base)
	fmt.Fprintf(&b, "  curl -N %s/api/events?n=10                     # server-sent events, one at a time\n", base)
	fmt.Fprintf(&b, "  curl -i %s/nope                       # 404: no route\n", base)
	fmt.Fprintf(&b, "  curl -i -N -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \\\n"+
		"       -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' %s/ws   # 101: a WebSocket tunnel to the echo\n", base)
	fmt.Fprintf(&b, "  curl -i --path-as-is '%s/api/orders/../../admin'   # normalised before routing\n", base)
	if a := srv.AdminAddr(); a != nil {
		fmt.Fprintf(&b, "  curl -s http://%s/admin/pools\n", a)
		fmt.Fprintf(&b, "  curl -s http://%s/metrics | grep sluice_\n", a)
	}
	// Under `go run`, killing the go command leaves this process running:
	// give the pid that stops it.
	fmt.Fprintf(&b, "\nPress Ctrl-C to stop (or kill %d; killing `go run` leaves the demo running).\n\n", os.Getpid())
	fmt.Fprint(w, b.String())
}
