package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/balancer"
)

// validateRoutes checks what a route is in the configuration: a unique
// name, an existing pool, a strip_prefix that fits its path. What a route
// matches (host, path, methods, headers) is checked where it is compiled,
// by gateway/internal/route through gateway.Check, so that `sluice validate`
// and `sluice run` accept exactly the same rules.
func (c *Config) validateRoutes(p *problems) {
	if len(c.Routes) == 0 {
		p.add("routes", "at least one route is required")
		return
	}
	firstByName := make(map[string]int, len(c.Routes))
	for i := range c.Routes {
		r := &c.Routes[i]
		at := fmt.Sprintf("routes[%d]", i)
		switch first, dup := firstByName[r.Name]; {
		case r.Name == "":
			p.add(at+".name", "required")
		case dup:
			p.add(at+".name", "duplicate route name %q (first at routes[%d])", r.Name, first)
		default:
			firstByName[r.Name] = i
		}
		r.validateStripPrefix(p, at+".strip_prefix")
		c.validateRoutePools(p, r, at)
		r.validateRetries(p, at)
		switch r.Priority {
		case "", PriorityLow, PriorityNormal, PriorityHigh:
		default:
			p.add(at+".priority", "unknown priority %q (want %s, %s or %s)", r.Priority, PriorityLow, PriorityNormal, PriorityHigh)
		}
		r.validateUpgrade(p, at)
	}
}

// validateUpgrade requires each upgrade protocol to be an HTTP token, named
// once, and the tunnel bounds not to be negative.
func (r *Route) validateUpgrade(p *problems, at string) {
	seen := make(map[string]int, len(r.Upgrade))
	for j, proto := range r.Upgrade {
		key := fmt.Sprintf("%s.upgrade[%d]", at, j)
		lower := strings.ToLower(proto)
		switch first, dup := seen[lower]; {
		case proto == "":
			p.add(key, "must not be empty (a protocol such as websocket)")
		case !isToken(proto):
			p.add(key, "%q is not a protocol token (RFC 9110 section 7.8, e.g. websocket)", proto)
		case strings.EqualFold(proto, "h2c"):
			// An h2c upgrade carries the request's body and needs the
			// gateway to speak HTTP/2; it cannot be tunnelled as bytes.
			p.add(key, "h2c cannot be tunnelled (the gateway forwards HTTP/1.1 only)")
		case dup:
			p.add(key, "%q is already upgrade[%d]", proto, first)
		default:
			seen[lower] = j
		}
	}
	notNegative(p, at+".tunnel.idle_timeout", r.Tunnel.IdleTimeout)
	notNegative(p, at+".tunnel.max_duration", r.Tunnel.MaxDuration)
}

// isToken reports whether s is an RFC 9110 token: visible ASCII without
// delimiters. A protocol may carry a version after a slash ("foo/2"), which
// is kept with it.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.SplitN(s, "/", 2) {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
				return false
			}
		}
	}
	return true
}

// validateRoutePools requires exactly one of pool and shards, and every pool
// named to exist.
func (c *Config) validateRoutePools(p *problems, r *Route, at string) {
	sh := r.Shards
	sharded := len(sh.Pools) > 0 || sh.Key != ""
	switch _, ok := c.Pools[r.Pool]; {
	case r.Pool != "" && sharded:
		p.add(at+".pool", "set either pool or shards, not both")
	case r.Pool == "" && !sharded:
		p.add(at+".pool", "required (or shards)")
	case r.Pool != "" && !ok:
		p.add(at+".pool", "unknown pool %q", r.Pool)
	}
	if !sharded {
		return
	}
	if sh.Key == "" {
		p.add(at+".shards.key", "required (header:NAME, cookie:NAME, query:NAME, path:N or client)")
	} else if _, err := balancer.ParseKeySource(sh.Key); err != nil {
		p.add(at+".shards.key", "%v", err)
	}
	if len(sh.Pools) == 0 {
		p.add(at+".shards.pools", "at least one pool is required")
	}
	seen := make(map[string]int, len(sh.Pools))
	for j, name := range sh.Pools {
		key := fmt.Sprintf("%s.shards.pools[%d]", at, j)
		if first, dup := seen[name]; dup {
			p.add(key, "%q is already shard %d", name, first)
			continue
		}
		seen[name] = j
		if _, ok := c.Pools[name]; !ok {
			p.add(key, "unknown pool %q", name)
		}
	}
}

// maxRetryAttempts bounds Retries.Attempts: past a few tries a request only
// adds load to a pool that is failing anyway.
const maxRetryAttempts = 10

func (r *Route) validateRetries(p *problems, at string) {
	notNegative(p, at+".timeout", r.Timeout)
	rt := r.Retries
	at += ".retries"
	if rt.Attempts < 0 || rt.Attempts > maxRetryAttempts {
		p.add(at+".attempts", "%d must be between 1 and %d", rt.Attempts, maxRetryAttempts)
	}
	for j, on := range rt.On {
		switch code, err := strconv.Atoi(on); {
		case on == RetryOnConnect, on == RetryOnTimeout, on == RetryOnReset, on == RetryOn5xx:
		case err == nil && code >= 500 && code <= 599 && len(on) == 3:
		default:
			p.add(fmt.Sprintf("%s.on[%d]", at, j), "unknown condition %q (want %s, %s, %s, %s or a status from 500 to 599)", on,
				RetryOnConnect, RetryOnTimeout, RetryOnReset, RetryOn5xx)
		}
	}
	if rt.MinPerSecond != nil && *rt.MinPerSecond < 0 {
		p.add(at+".min_per_second", "%d must not be negative (0: no retries beyond the budget)", *rt.MinPerSecond)
	}
	notNegative(p, at+".per_try_timeout", rt.PerTryTimeout)
	if r.Timeout > 0 && rt.PerTryTimeout > r.Timeout {
		p.add(at+".per_try_timeout", "%v must not exceed the route's timeout %v", rt.PerTryTimeout, r.Timeout)
	}
}

// validateStripPrefix requires StripPrefix to be a prefix of the route's
// path that ends at a segment boundary: stripping "/api/ord" from
// "/api/orders" would send "ers", which is not a path.
func (r *Route) validateStripPrefix(p *problems, at string) {
	sp := r.StripPrefix
	if sp == "" {
		return
	}
	key, target := "path_prefix", r.Match.PathPrefix
	if r.Match.Path != "" && r.Match.PathPrefix == "" {
		key, target = "path", r.Match.Path
	}
	if target == "" {
		target = "/"
	}
	switch {
	case !strings.HasPrefix(target, sp):
		p.add(at, "%q is not a prefix of %s %q", sp, key, target)
	case len(target) > len(sp) && !strings.HasSuffix(sp, "/") && target[len(sp)] != '/':
		p.add(at, "%q does not end at a \"/\" boundary of %s %q", sp, key, target)
	}
}
