package config

import (
	"fmt"
	"strings"
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
		switch _, ok := c.Pools[r.Pool]; {
		case r.Pool == "":
			p.add(at+".pool", "required")
		case !ok:
			p.add(at+".pool", "unknown pool %q", r.Pool)
		}
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
