package route

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
)

// Rule is the matching part of one route, as written in the configuration
// file. Its index in the slice given to [Compile] is the value [Table.Match]
// returns, so the caller keeps its own per-route data in a parallel slice.
type Rule struct {
	// Host selects the request's host. "" matches any host;
	// "api.example.com" matches that host exactly; "*.example.com" matches
	// any host with at least one more label ("a.example.com",
	// "a.b.example.com") but not "example.com" itself. Compared
	// case-insensitively; no port and no trailing dot.
	Host string
	// PathPrefix matches whole path segments: "/api/orders" matches
	// "/api/orders" and "/api/orders/..." but not "/api/ordersX". A prefix
	// ending in "/" matches anything under it (but not the path without the
	// slash). "/" matches every path.
	PathPrefix string
	// Path matches one path exactly. At most one of Path and PathPrefix may
	// be set; with neither the rule behaves as PathPrefix "/".
	Path string
	// Methods lists the methods the rule accepts, compared exactly and
	// case-sensitively ("GET", not "get"). Empty accepts any method.
	Methods []string
	// Headers lists {name, value} conditions that must all hold: the
	// request's first value of the header (name compared case-insensitively)
	// must equal value byte for byte. An absent header never matches.
	Headers [][2]string
}

// hostKind orders the three kinds of host pattern by specificity.
type hostKind uint8

const (
	hostAny hostKind = iota
	hostWildcard
	hostExact
)

type headerCond struct {
	name  string // canonical form (Content-Type), as fasthttp normalises it
	value string
}

// rule is a validated, normalised Rule. Slices are shared between the
// copies held by the buckets of a Table and are never written after Compile.
type rule struct {
	index   int
	kind    hostKind
	host    string // exact host, or the wildcard's suffix without "*.", lower-case
	path    string
	exact   bool // path must equal; otherwise path is a segment-aware prefix
	dir     bool // prefix ends in '/': a plain byte prefix test suffices
	methods []string
	headers []headerCond
}

// compileRule validates r and returns its normalised form. Errors name the
// configuration key at fault; the caller prefixes the rule index.
func compileRule(index int, r Rule) (rule, error) {
	c := rule{index: index}

	for i := 0; i < len(r.Host); i++ {
		// Checked before lower-casing: strings.ToLower maps some non-ASCII
		// runes (the Kelvin sign) to ASCII letters.
		if r.Host[i] >= 0x80 {
			return rule{}, fmt.Errorf("host %q: must be ASCII (use the punycode form)", r.Host)
		}
	}
	switch host := strings.ToLower(r.Host); {
	case host == "":
		c.kind = hostAny
	case strings.HasPrefix(host, "*."):
		if strings.HasPrefix(host, "*.[") {
			return rule{}, fmt.Errorf("host %q: an IP literal cannot take a wildcard", r.Host)
		}
		if err := validHostName(host[2:]); err != nil {
			return rule{}, fmt.Errorf("host %q: %w", r.Host, err)
		}
		c.kind, c.host = hostWildcard, host[2:]
	default:
		if err := validHostName(host); err != nil {
			return rule{}, fmt.Errorf("host %q: %w", r.Host, err)
		}
		c.kind, c.host = hostExact, host
	}

	switch {
	case r.Path != "" && r.PathPrefix != "":
		return rule{}, errors.New("path and path_prefix are mutually exclusive")
	case r.Path != "":
		if err := validPath(r.Path); err != nil {
			return rule{}, fmt.Errorf("path %q: %w", r.Path, err)
		}
		c.path, c.exact = r.Path, true
	case r.PathPrefix != "":
		if err := validPath(r.PathPrefix); err != nil {
			return rule{}, fmt.Errorf("path_prefix %q: %w", r.PathPrefix, err)
		}
		c.path = r.PathPrefix
	default:
		c.path = "/"
	}
	c.dir = !c.exact && strings.HasSuffix(c.path, "/")

	for _, m := range r.Methods {
		if !isToken(m) {
			return rule{}, fmt.Errorf("methods: %q is not a valid method token", m)
		}
		if !containsString(c.methods, m) { // a repeated method changes nothing
			c.methods = append(c.methods, m)
		}
	}

	for _, hv := range r.Headers {
		name, value := hv[0], hv[1]
		if !isToken(name) {
			return rule{}, fmt.Errorf("headers: %q is not a valid header name", name)
		}
		if err := validHeaderValue(value); err != nil {
			return rule{}, fmt.Errorf("headers: %q: %w", name, err)
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		for _, prev := range c.headers {
			if prev.name == name {
				// Two conditions on one name are either redundant or
				// unsatisfiable, and would skew specificity: refuse both.
				return rule{}, fmt.Errorf("headers: %q appears twice", hv[0])
			}
		}
		c.headers = append(c.headers, headerCond{name: name, value: value})
	}
	return c, nil
}

// validHostName accepts a lower-case DNS name or IP literal without port or
// trailing dot: non-empty labels of letters, digits, '-' and '_', or a
// bracketed IPv6 literal.
func validHostName(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if h[0] == '[' {
		if h[len(h)-1] != ']' || len(h) < 3 {
			return errors.New("unterminated IPv6 literal")
		}
		for i := 1; i < len(h)-1; i++ {
			if c := h[i]; !(c == ':' || c == '.' || isHex(c)) {
				return fmt.Errorf("invalid byte %q in IPv6 literal", c)
			}
		}
		return nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return errors.New("empty label (a trailing dot must be left out)")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c == ':':
				return errors.New("must not contain a port")
			case c == '*':
				return errors.New(`"*" is only allowed as a whole leading label ("*.example.com")`)
			default:
				return fmt.Errorf("invalid byte %q", c)
			}
		}
	}
	return nil
}

// validPath accepts what a normalised request path can equal: an absolute
// path without query, fragment, control bytes, empty segments or dot
// segments. Anything else would silently never match.
func validPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New(`must start with "/"`)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '?' || c == '#':
			return fmt.Errorf("must not contain %q", c)
		case c <= ' ' || c == 0x7f:
			return fmt.Errorf("invalid byte %q", c)
		}
	}
	if strings.Contains(p, "//") {
		return errors.New(`must not contain "//" (request paths are normalised)`)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return errors.New(`must not contain "." or ".." segments (request paths are normalised)`)
		}
	}
	return nil
}

// validHeaderValue refuses values a parsed request can never carry: empty
// (indistinguishable from absent), surrounded by whitespace (trimmed by the
// parser) or holding control bytes.
func validHeaderValue(v string) error {
	if v == "" {
		return errors.New("value must not be empty")
	}
	if v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t' {
		return errors.New("value must not start or end with whitespace")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("value holds control byte %q", c)
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token (method or header name).
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

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// matchHost reports whether a request host matches the rule's host pattern.
// Used at Compile to fill buckets; Match relies on the buckets instead.
func (r *rule) matchHost(host string) bool {
	switch r.kind {
	case hostExact:
		return host == r.host
	case hostWildcard:
		return len(host) > len(r.host)+1 && strings.HasSuffix(host, r.host) &&
			host[len(host)-len(r.host)-1] == '.'
	default:
		return true
	}
}

func (r *rule) matchPath(path []byte) bool {
	if r.exact {
		return string(path) == r.path
	}
	if len(path) < len(r.path) || string(path[:len(r.path)]) != r.path {
		return false
	}
	return r.dir || len(path) == len(r.path) || path[len(r.path)] == '/'
}

func (r *rule) matchMethod(method []byte) bool {
	if len(r.methods) == 0 {
		return true
	}
	for _, m := range r.methods {
		if string(method) == m {
			return true
		}
	}
	return false
}

func (r *rule) matchHeaders(h Headers) bool {
	if len(r.headers) == 0 {
		return true
	}
	if h == nil {
		return false
	}
	for _, c := range r.headers {
		if string(h.Peek(c.name)) != c.value {
			return false
		}
	}
	return true
}

// compareSpecificity orders a before b (negative) when a is more specific:
// exact host > wildcard host (longer suffix first) > any host; then exact
// path > longer path prefix; then methods > no methods; then more header
// conditions > fewer; then earlier index. Only rules that can match the same
// request are ever compared, so host strings of equal kind are either equal
// or (wildcards) suffixes of one another.
func compareSpecificity(a, b *rule) int {
	if a.kind != b.kind {
		return int(b.kind) - int(a.kind)
	}
	if a.kind == hostWildcard && len(a.host) != len(b.host) {
		return len(b.host) - len(a.host)
	}
	if a.exact != b.exact {
		if a.exact {
			return -1
		}
		return 1
	}
	if len(a.path) != len(b.path) {
		return len(b.path) - len(a.path)
	}
	if am, bm := len(a.methods) > 0, len(b.methods) > 0; am != bm {
		if am {
			return -1
		}
		return 1
	}
	if len(a.headers) != len(b.headers) {
		return len(b.headers) - len(a.headers)
	}
	return a.index - b.index
}
