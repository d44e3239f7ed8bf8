package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/cache"
	"github.com/sluice-gw/sluice/ratelimit"
)

// Defaults of a rate limit's own keys (the rest are ratelimit's).
const (
	defaultLimitKey  = "ip"
	defaultIP6Prefix = 64
	MissingDeny      = "deny"
	MissingShared    = "shared"
)

// completeShared fills the defaults of the sections shared between
// instances: each limit's name (its map key) and key defaults.
func (c *Config) completeShared() {
	for name, l := range c.RateLimits {
		l.Name = name
		if l.Key == "" {
			l.Key = defaultLimitKey
		}
		if l.IP6Prefix == 0 {
			l.IP6Prefix = defaultIP6Prefix
		}
		if l.Missing == "" {
			l.Missing = MissingDeny
		}
		c.RateLimits[name] = l
	}
}

func (c *Config) validateAdminToken(p *problems) {
	if c.Admin.TokenFile == "" {
		return
	}
	if _, err := ReadToken(c.Admin.TokenFile); err != nil {
		p.addErr("admin.token_file", err)
	}
}

// ReadToken reads an admin bearer token file: its content without
// surrounding whitespace, which must not be empty.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return tok, nil
}

func (r *Redis) validate(p *problems) {
	for i, a := range r.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			p.add(fmt.Sprintf("redis.addrs[%d]", i), "invalid address %q: want host:port", a)
		}
	}
	if r.Timeout <= 0 {
		p.add("redis.timeout", "must be positive (a request never waits longer than this for Redis)")
	}
	if r.DB < 0 {
		p.add("redis.db", "must not be negative")
	}
	if r.DB != 0 && len(r.Addrs) > 1 {
		p.add("redis.db", "a Redis Cluster (several addrs) has only database 0")
	}
}

func (c *Config) validateCache(p *problems) {
	addFieldErrors(p, "cache", c.Cache.Validate())
	for i := range c.Routes {
		rc := &c.Routes[i].Cache
		at := fmt.Sprintf("routes[%d].cache", i)
		if err := rc.Validate(); err != nil {
			addFieldErrors(p, at, err) // NewPolicy would report them again
		} else if rc.Enabled {
			if _, err := cache.NewPolicy(*rc, c.Cache); err != nil {
				addFieldErrors(p, at, err)
			}
		}
	}
}

func (c *Config) validateRateLimits(p *problems) {
	names := make([]string, 0, len(c.RateLimits))
	for name := range c.RateLimits {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		l := c.RateLimits[name]
		at := "rate_limits." + name
		addFieldErrors(p, at, l.Options.Validate())
		if _, err := ratelimit.ParseKey(l.Key); err != nil {
			p.addErr(at+".key", err)
		}
		if l.IP6Prefix < 1 || l.IP6Prefix > 128 {
			p.add(at+".ip6_prefix", "%d is not a prefix length (1-128)", l.IP6Prefix)
		}
		if l.Missing != MissingDeny && l.Missing != MissingShared {
			p.add(at+".missing", "unknown policy %q: want deny or shared", l.Missing)
		}
	}
	for i, r := range c.Routes {
		for j, name := range r.RateLimits {
			at := fmt.Sprintf("routes[%d].rate_limits[%d]", i, j)
			if _, ok := c.RateLimits[name]; !ok {
				p.add(at, "unknown limit %q", name)
			}
			// Listed twice, a limit would charge each request twice.
			if k := slices.Index(r.RateLimits, name); k < j {
				p.add(at, "limit %q is already listed at rate_limits[%d]", name, k)
			}
		}
	}
}

// addFieldErrors adds the errors of an option type's Validate under prefix.
// The option packages report the key inside their section as a FieldError;
// the path from the file's root is ours to add.
func addFieldErrors(p *problems, prefix string, err error) {
	for _, e := range Problems(err) {
		var ce *cache.FieldError
		var re *ratelimit.FieldError
		switch {
		case errors.As(e, &ce):
			p.addErr(prefix+"."+ce.Path, ce.Err)
		case errors.As(e, &re):
			p.addErr(prefix+"."+re.Path, re.Err)
		default:
			p.addErr(prefix, e)
		}
	}
}
