package config

import (
	"fmt"
	"sort"
	"strings"
)

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
		r.Match.validate(p, at+".match")
		r.validateStripPrefix(p, at+".strip_prefix")
		switch _, ok := c.Pools[r.Pool]; {
		case r.Pool == "":
			p.add(at+".pool", "required")
		case !ok:
			p.add(at+".pool", "unknown pool %q", r.Pool)
		}
	}
}

func (m *Match) validate(p *problems, at string) {
	validateHost(p, at+".host", m.Host)
	if m.PathPrefix != "" && m.Path != "" {
		p.add(at, "path_prefix and path are mutually exclusive")
	}
	if m.PathPrefix != "" {
		validatePath(p, at+".path_prefix", m.PathPrefix)
	}
	if m.Path != "" {
		validatePath(p, at+".path", m.Path)
	}
	seen := make(map[string]bool, len(m.Methods))
	for i, method := range m.Methods {
		key := fmt.Sprintf("%s.methods[%d]", at, i)
		switch {
		case !isToken(method):
			p.add(key, "invalid method %q", method)
		case strings.ToUpper(method) != method:
			p.add(key, "method %q must be upper case", method)
		case method == "CONNECT":
			p.add(key, "CONNECT is not supported: the gateway is not a forward proxy")
		case seen[method]:
			p.add(key, "duplicate method %q", method)
		}
		seen[method] = true
	}
	names := make([]string, 0, len(m.Headers))
	for name := range m.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	folded := make(map[string]string, len(names))
	for _, name := range names {
		if !isToken(name) {
			p.add(at+".headers", "invalid header name %q", name)
			continue
		}
		lower := strings.ToLower(name)
		if other, dup := folded[lower]; dup {
			p.add(at+".headers", "header %q given twice (also as %q)", name, other)
			continue
		}
		folded[lower] = name
		if !isFieldValue(m.Headers[name]) {
			p.add(at+".headers", "invalid value %q for header %q", m.Headers[name], name)
		}
	}
}

// validateHost accepts "", an exact host name or "*." followed by one.
func validateHost(p *problems, at, h string) {
	if h == "" {
		return
	}
	switch {
	case strings.Contains(h, "@"):
		p.add(at, "%q must not contain userinfo", h)
		return
	case strings.Contains(h, ":"):
		p.add(at, "%q must not contain a port", h)
		return
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		p.add(at, "%q: a wildcard is only allowed as a leading \"*.\"", h)
		return
	}
	if !isHostName(name) {
		p.add(at, "invalid host name %q", h)
	}
}

// isHostName accepts dot-separated labels of letters, digits, '-' and '_'
// (seen in the wild, though not in RFC 1123), none empty or longer than 63
// bytes, none starting or ending with '-'.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validatePath refuses what the gateway's path normalisation would change
// or reject, so that a configured prefix can match a normalised path.
func validatePath(p *problems, at, path string) {
	if !strings.HasPrefix(path, "/") {
		p.add(at, "%q must start with \"/\"", path)
	}
	for _, bad := range []string{"//", "%", "?", "#"} {
		if strings.Contains(path, bad) {
			p.add(at, "%q must not contain %q", path, bad)
		}
	}
	for i := 0; i < len(path); i++ {
		if path[i] <= ' ' || path[i] == 0x7f {
			p.add(at, "%q must not contain spaces or control characters", path)
			break
		}
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			p.add(at, "%q must not contain \".\" or \"..\" segments", path)
			break
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

// isToken reports whether s is an RFC 9110 token (method and header name
// syntax).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// isFieldValue reports whether s can be sent as a header value: visible
// characters, spaces, tabs and obs-text, no CR, LF or NUL.
func isFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
