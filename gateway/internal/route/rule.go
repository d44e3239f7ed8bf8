package route

import (
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
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
	// case-insensitively; no port and no trailing dot. An IPv6 address is
	// written in brackets, as in a Host header ("[2001:db8::1]").
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
	// case-sensitively ("GET", not "get"). Empty accepts any method. Compile
	// refuses what no request could carry (a non-token, CONNECT, lower case)
	// and warns about a method that is not registered ("GETT"); see
	// checkMethod.
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

// Error is one problem with one rule. Compile returns every Error it finds,
// joined with errors.Join; [Table.Warnings] returns the doubts that do not
// stop a rule from compiling, in the same form.
type Error struct {
	// Rule is the index of the rule in the slice given to Compile.
	Rule int
	// Key names the field at fault in the configuration file's terms:
	// "host", "path", "path_prefix", "methods[1]", "headers.<name>" (the name
	// as given), or "" for the rule as a whole.
	Key string
	// Err is the reason; it quotes the offending value.
	Err error
}

func (e *Error) Error() string {
	s := "rule " + strconv.Itoa(e.Rule)
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ruleProblems collects the errors and warnings of one rule.
type ruleProblems struct {
	index            int
	errors, warnings []*Error
}

func (p *ruleProblems) fail(key, format string, args ...any) {
	p.errors = append(p.errors, &Error{Rule: p.index, Key: key, Err: fmt.Errorf(format, args...)})
}

func (p *ruleProblems) warn(key, format string, args ...any) {
	p.warnings = append(p.warnings, &Error{Rule: p.index, Key: key, Err: fmt.Errorf(format, args...)})
}

// compileRule validates r and returns its normalised form, with every
// problem found (each field is checked even when another is wrong, so that
// one run of `sluice validate` lists them all).
func compileRule(index int, r Rule) (rule, ruleProblems) {
	c := rule{index: index}
	p := ruleProblems{index: index}

	c.kind, c.host = compileHost(&p, r.Host)

	switch {
	case r.Path != "" && r.PathPrefix != "":
		p.fail("", "path and path_prefix are mutually exclusive")
	case r.Path != "":
		validPath(&p, "path", r.Path)
		c.path, c.exact = r.Path, true
	case r.PathPrefix != "":
		validPath(&p, "path_prefix", r.PathPrefix)
		c.path = r.PathPrefix
	default:
		c.path = "/"
	}
	c.dir = !c.exact && strings.HasSuffix(c.path, "/")

	for i, m := range r.Methods {
		if checkMethod(&p, fmt.Sprintf("methods[%d]", i), m) && !containsString(c.methods, m) {
			// A repeated method changes nothing, so it is listed once.
			c.methods = append(c.methods, m)
		}
	}

	for _, hv := range r.Headers {
		name, value := hv[0], hv[1]
		key := "headers." + name
		if !isToken(name) {
			p.fail(key, "%q is not a valid header name", name)
			continue
		}
		if err := validHeaderValue(value); err != nil {
			p.fail(key, "%w", err)
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if slices.ContainsFunc(c.headers, func(h headerCond) bool { return h.name == canon }) {
			// Two conditions on one name are either redundant or
			// unsatisfiable, and would skew specificity: refuse both.
			p.fail(key, "%q appears twice (names ignore case)", name)
			continue
		}
		c.headers = append(c.headers, headerCond{name: canon, value: value})
	}
	return c, p
}

// compileHost validates a host pattern and returns its kind and its
// lower-case form (a wildcard without its "*.").
func compileHost(p *ruleProblems, h string) (hostKind, string) {
	if h == "" {
		return hostAny, ""
	}
	for i := 0; i < len(h); i++ {
		// Checked before lower-casing: strings.ToLower maps some non-ASCII
		// runes (the Kelvin sign) to ASCII letters.
		if h[i] >= 0x80 {
			p.fail("host", "%+q must be ASCII (use the punycode form, xn--...)", h)
			return hostAny, ""
		}
	}
	host := strings.ToLower(h)
	kind := hostExact
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if strings.HasPrefix(rest, "[") {
			p.fail("host", "%q: an IP literal cannot take a wildcard", h)
			return hostAny, ""
		}
		kind, host = hostWildcard, rest
	}
	if err := validHostName(host); err != nil {
		p.fail("host", "%q %w", h, err)
		return hostAny, ""
	}
	return kind, host
}

// validHostName accepts a lower-case DNS name or IP literal as a request's
// Host carries it once the gateway has taken off the port and a trailing
// dot: labels of letters, digits, '-' and '_' (seen in the wild, though not
// in RFC 1123), or a bracketed IPv6 address. The error completes a sentence
// that starts with the quoted host.
func validHostName(h string) error {
	switch {
	case h == "":
		return errors.New("has no name after the wildcard")
	case strings.Contains(h, "@"):
		return errors.New("must not contain userinfo")
	case h[0] == '[':
		end := strings.IndexByte(h, ']')
		switch {
		case end < 0:
			return errors.New("is an unterminated IPv6 literal")
		case end != len(h)-1 && h[end+1] == ':':
			return errors.New("must not contain a port")
		case end != len(h)-1:
			return errors.New("has bytes after the IPv6 literal")
		}
		// No zone: a Host header cannot carry one usefully, and "%" would
		// have to be escaped.
		if a, err := netip.ParseAddr(h[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return errors.New("is not a valid IPv6 literal")
		}
		return nil
	case strings.Count(h, ":") > 1:
		return errors.New(`looks like an IPv6 address: write it in brackets ("[::1]")`)
	case strings.Contains(h, ":"):
		return errors.New("must not contain a port")
	case len(h) > 253:
		return errors.New("is longer than 253 bytes")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return errors.New("has an empty label (leave out a trailing dot)")
		}
		if len(label) > 63 {
			return errors.New("has a label longer than 63 bytes")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c == '*':
				return errors.New(`has a "*" that is not a whole leading label ("*.example.com")`)
			default:
				return fmt.Errorf("has an invalid byte %q", c)
			}
		}
	}
	return nil
}

// validPath accepts what the gateway's normalised request path can equal
// (see httpsafe.AppendPath): an absolute path of RFC 3986 path characters,
// percent-escapes in upper case and only for bytes that are not decoded,
// no empty, "." or ".." segments, no query or fragment. Anything else would
// never match, silently.
func validPath(p *ruleProblems, key, path string) {
	if !strings.HasPrefix(path, "/") {
		p.fail(key, `%q must start with "/"`, path)
		return
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '/' || pathByte(c):
			continue
		case c == '?' || c == '#':
			p.fail(key, "%q must not contain %q (a query or fragment is not part of the path)", path, c)
		case c == '%':
			if err := validEscape(path[i:]); err != nil {
				p.fail(key, "%q: %w", path, err)
			} else {
				i += 2
				continue
			}
		case c >= 0x80:
			p.fail(key, "%q must be ASCII: write %%%02X, as a request path carries it", path, c)
		default:
			p.fail(key, "%q must not contain %q: write %%%02X, as a request path carries it", path, c, c)
		}
		return
	}
	if strings.Contains(path, "//") {
		p.fail(key, `%q must not contain "//" (request paths are normalised)`, path)
		return
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			p.fail(key, `%q must not contain "." or ".." segments (request paths are normalised)`, path)
			return
		}
	}
}

// pathByte reports whether c may appear as itself in a normalised path:
// RFC 3986 unreserved, sub-delims, ':' and '@'.
func pathByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

// validEscape checks the "%XX" at the start of s against the form request
// paths are normalised to: hex digits in upper case, unreserved characters
// decoded, no NUL.
func validEscape(s string) error {
	if len(s) < 3 || !isHex(lower(s[1])) || !isHex(lower(s[2])) {
		return errors.New(`"%" must start an escape of two hex digits`)
	}
	esc := s[:3]
	if up := strings.ToUpper(esc); up != esc {
		return fmt.Errorf("write %s as %s: request paths carry escapes in upper case", esc, up)
	}
	v := unhex(s[1])<<4 | unhex(s[2])
	switch {
	case v == 0:
		return errors.New("must not contain %00")
	case v < 0x80 && (v >= 'a' && v <= 'z' || v >= 'A' && v <= 'Z' || v >= '0' && v <= '9' || strings.IndexByte("-._~", v) >= 0):
		return fmt.Errorf("write %s as %q: request paths carry it decoded", esc, v)
	}
	return nil
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func unhex(c byte) byte {
	if c >= '0' && c <= '9' {
		return c - '0'
	}
	return lower(c) - 'a' + 10
}

// validHeaderValue refuses values a parsed request can never carry: empty
// (indistinguishable from absent), surrounded by whitespace (trimmed by the
// parser) or holding control bytes.
func validHeaderValue(v string) error {
	if v == "" {
		return errors.New("value must not be empty")
	}
	if v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t' {
		return fmt.Errorf("value %q must not start or end with whitespace", v)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("value %q holds control byte %q", v, c)
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

// isHex reports whether c is a lower-case hex digit.
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

// firstSameMatch returns the index of the first of earlier that matches
// exactly the requests c matches (sameMatch), or -1.
func firstSameMatch(earlier []rule, c *rule) int {
	for i := range earlier {
		if sameMatch(&earlier[i], c) {
			return earlier[i].index
		}
	}
	return -1
}

// sameMatch reports whether a and b match exactly the same requests: the
// same host pattern, path, methods and header conditions, in any order.
// compareSpecificity ranks two such rules by their order alone, so the
// later one never matches: a copied route left unchanged, most often.
func sameMatch(a, b *rule) bool {
	return a.kind == b.kind && a.host == b.host && a.exact == b.exact && a.path == b.path &&
		sameElements(a.methods, b.methods) && sameElements(a.headers, b.headers)
}

// sameElements reports whether a and b hold the same elements, whatever
// their order and repetitions.
func sameElements[T comparable](a, b []T) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
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
