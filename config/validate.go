package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/balancer"
)

// Validate reports every problem of c at once, joined with errors.Join, each
// a *FieldError whose message is "key.path: reason". The order is fixed:
// top-level keys in schema order, then pools by name, then routes by index.
// Validate does not change c; it checks pool options as completed by
// balancer's WithDefaults, so a zero pool field is never an error. What a
// route matches is not checked here but where it is compiled (see
// validateRoutes): a Config that validates can still fail gateway.Check.
func (c *Config) Validate() error {
	var p problems
	validateListen(&p, "listen", c.Listen, true)
	c.validateTLS(&p)
	if c.Admin.Listen != "" {
		validateListen(&p, "admin.listen", c.Admin.Listen, false)
		// Port 0 asks the kernel for a free port, so two ":0" listeners differ.
		if c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			p.add("admin.listen", "must differ from listen %q", c.Listen)
		}
	}
	c.validateAdminToken(&p)
	c.Server.validate(&p)
	c.Redis.validate(&p)
	c.validateCache(&p)
	c.validateRateLimits(&p)
	c.Log.validate(&p)
	c.AccessLog.validate(&p)
	c.validatePools(&p)
	c.validateRoutes(&p)
	return p.join()
}

// validateListen checks a host:port to listen on. An empty host means every
// interface, port 0 a free port (useful in tests).
func validateListen(p *problems, path, addr string, required bool) {
	if addr == "" {
		if required {
			p.add(path, "must not be empty")
		}
		return
	}
	if err := CheckListen(addr); err != nil {
		p.addErr(path, err)
	}
}

// CheckListen reports whether addr is a host:port a listener can be asked
// for: an empty host means every interface, port 0 a free port. It is the
// rule of listen and admin.listen, exported for flags that override them
// (`sluice demo -listen`), so that a bad address is refused before anything
// starts rather than when the listener opens.
func CheckListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port %q in address %q (want 0-65535)", port, addr)
	}
	return nil
}

func (c *Config) validateTLS(p *problems) {
	cert, key := c.TLS.CertFile, c.TLS.KeyFile
	switch {
	case cert == "" && key == "":
		return
	case cert == "":
		p.add("tls.cert_file", "required when tls.key_file is set")
		return
	case key == "":
		p.add("tls.key_file", "required when tls.cert_file is set")
		return
	}
	ok := true
	for _, f := range []struct{ path, file string }{{"tls.cert_file", cert}, {"tls.key_file", key}} {
		if _, err := os.Stat(f.file); err != nil {
			p.addErr(f.path, err)
			ok = false
		}
	}
	if !ok {
		return
	}
	// Loading the pair here, not only when the listener starts, is what
	// lets a reload with a mismatched key be refused before it changes
	// anything.
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		p.add("tls", "cannot load certificate and key: %w", err)
	}
}

// minHeaderBytes is the smallest server.max_header_bytes accepted.
const minHeaderBytes = 1 << 10

func (s *Server) validate(p *problems) {
	notNegative(p, "server.read_timeout", s.ReadTimeout)
	notNegative(p, "server.write_timeout", s.WriteTimeout)
	notNegative(p, "server.idle_timeout", s.IdleTimeout)
	for _, sz := range []struct {
		key string
		v   Size
	}{
		{"server.max_request_body", s.MaxRequestBody},
		{"server.buffer_request", s.BufferRequest},
		{"server.max_header_bytes", s.MaxHeaderBytes},
		{"server.max_uri_length", s.MaxURILength},
	} {
		positiveSize(p, sz.key, sz.v)
	}
	if s.MaxHeaderBytes > 0 && s.MaxHeaderBytes < minHeaderBytes {
		// Every request would get 431: a request line, Host and the few
		// fields every client sends take several hundred bytes.
		p.add("server.max_header_bytes", "%d is too small to hold a request head; at least %d (1KiB), 16KiB by default", s.MaxHeaderBytes, minHeaderBytes)
	}
	for i, tp := range s.TrustedProxies {
		if _, err := parseTrusted(tp); err != nil {
			p.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "invalid CIDR or IP %q", tp)
		}
	}
	if s.MaxConcurrency < 0 {
		p.add("server.max_concurrency", "%d must not be negative (0: no limit)", s.MaxConcurrency)
	}
	notNegative(p, "server.drain_timeout", s.DrainTimeout)
	notNegative(p, "server.shutdown_delay", s.ShutdownDelay)
	if s.ShutdownDelay > 0 && s.DrainTimeout >= 0 && s.ShutdownDelay >= s.DrainTimeout {
		// Both count from SIGTERM: a delay that uses up the drain deadline
		// leaves in-flight requests no time at all.
		p.add("server.shutdown_delay", "%v must be shorter than server.drain_timeout (%v), which it counts towards", s.ShutdownDelay, s.DrainTimeout)
	}
}

func notNegative(p *problems, key string, d time.Duration) {
	if d < 0 {
		p.add(key, "%v must not be negative", d)
	}
}

// parseTrusted reads a CIDR or a single IP (as a /32 or /128).
func parseTrusted(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// TrustedPrefixes returns Server.TrustedProxies parsed, single IPs as
// full-length prefixes. Call it on a validated Config; entries that do not
// parse are skipped.
func (s *Server) TrustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s.TrustedProxies))
	for _, tp := range s.TrustedProxies {
		if pf, err := parseTrusted(tp); err == nil {
			out = append(out, pf.Masked())
		}
	}
	return out
}

func positiveSize(p *problems, key string, v Size) {
	if v <= 0 {
		p.add(key, "%d must be positive", int64(v))
	}
}

func (l *Log) validate(p *problems) {
	levels := []string{"debug", "info", "warn", "error"}
	if !slices.Contains(levels, l.Level) {
		p.add("log.level", "unknown level %q (want debug, info, warn or error)", l.Level)
	}
	if l.Format != "json" && l.Format != "text" {
		p.add("log.format", "unknown format %q (want json or text)", l.Format)
	}
}

func (a *AccessLog) validate(p *problems) {
	positiveSize(p, "access_log.buffer", a.Buffer)
	switch a.Path {
	case "stdout", "stderr":
	case "":
		p.add("access_log.path", "must not be empty (stdout, stderr or a file path)")
	default:
		if !a.Enabled {
			return // not opened, so where it would go does not matter yet
		}
		dir := filepath.Dir(a.Path)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			p.add("access_log.path", "directory %q does not exist", dir)
		}
	}
}

func (c *Config) validatePools(p *problems) {
	if len(c.Pools) == 0 {
		p.add("pools", "at least one pool is required")
		return
	}
	names := make([]string, 0, len(c.Pools))
	for name := range c.Pools {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		prefix := "pools." + name
		if name == "" {
			p.add(prefix, "pool name must not be empty")
		}
		o := c.Pools[name]
		for _, err := range Problems(o.Validate()) {
			// balancer names the key inside the pool; the path from the
			// file's root is ours to add.
			var fe *balancer.FieldError
			if errors.As(err, &fe) {
				p.addErr(prefix+"."+fe.Path, fe.Err)
				continue
			}
			p.addErr(prefix, err)
		}
	}
}

// doubts lists settings of a valid configuration that have no effect where
// they are, which usually means the operator meant something else.
func (c *Config) doubts() []string {
	var out []string
	for i, r := range c.Routes {
		if r.Tunnel != (Tunnel{}) && len(r.Upgrade) == 0 {
			out = append(out, fmt.Sprintf("routes[%d].tunnel: the route has no upgrade, so it opens no tunnel: these settings have no effect", i))
		}
		if r.RateLimitHeaders && len(r.RateLimits) == 0 {
			out = append(out, fmt.Sprintf("routes[%d].rate_limit_headers: the route has no rate_limits, so there is nothing to report: no header is added", i))
		}
	}
	return out
}
