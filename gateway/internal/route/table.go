package route

import (
	"errors"
	"slices"
)

// Headers gives read access to a request's header fields.
// *fasthttp.RequestHeader satisfies it.
type Headers interface {
	// Peek returns the first value of the named header, nil when absent.
	Peek(name string) []byte
}

// Table is a compiled, immutable set of rules. It is safe for concurrent use
// by any number of goroutines; a reload builds a new Table and swaps it.
type Table struct {
	// Each bucket holds every rule that can match a host of its class,
	// sorted most specific first, so a lookup is one bucket choice and one
	// scan that stops at the first full match.
	exact    map[string][]rule // by exact host: its rules + matching wildcards + any-host rules
	wildcard map[string][]rule // by wildcard suffix ("example.com"): its rules + shorter matching wildcards + any-host rules
	anyHost  []rule            // hosts matched by neither map
	n        int
	warnings []*Error
}

// Compile validates rules and builds a Table. Each problem is an *Error
// naming the rule's index and key (`rule 2: path_prefix: "api" must start
// with "/"`); all problems of all rules are reported, joined with
// errors.Join. Doubts that do not stop a rule from working (an unregistered
// method) do not fail Compile: [Table.Warnings] returns them. The Table
// keeps no reference to rules or their slices.
func Compile(rules []Rule) (*Table, error) {
	compiled := make([]rule, 0, len(rules))
	var errs []error
	var warnings []*Error
	for i, r := range rules {
		c, p := compileRule(i, r)
		for _, e := range p.errors {
			errs = append(errs, e)
		}
		if len(p.errors) == 0 {
			if first := firstSameMatch(compiled, &c); first >= 0 {
				p.warn("", "the same match as routes[%d], which comes first and so always wins: this route is never used", first)
			}
		}
		warnings = append(warnings, p.warnings...)
		compiled = append(compiled, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	t := &Table{
		exact:    make(map[string][]rule),
		wildcard: make(map[string][]rule),
		n:        len(rules),
		warnings: warnings,
	}
	// The bucket of an exact host is every rule matching that host. The
	// bucket of a wildcard suffix S serves the hosts whose longest matching
	// wildcard is S; the wildcards matching such a host are exactly S and
	// those matching S itself, and no exact rule matches it.
	bucket := func(host string, under bool) []rule {
		var b []rule
		for i := range compiled {
			c := &compiled[i]
			switch {
			case under && c.kind == hostExact:
				continue
			case c.matchHost(host), under && c.kind == hostWildcard && c.host == host:
				b = append(b, *c)
			}
		}
		slices.SortFunc(b, func(x, y rule) int { return compareSpecificity(&x, &y) })
		return slices.Clip(b)
	}
	for i := range compiled {
		c := &compiled[i]
		switch c.kind {
		case hostExact:
			if _, ok := t.exact[c.host]; !ok {
				t.exact[c.host] = bucket(c.host, false)
			}
		case hostWildcard:
			if _, ok := t.wildcard[c.host]; !ok {
				t.wildcard[c.host] = bucket(c.host, true)
			}
		}
	}
	t.anyHost = bucket("", false)
	return t, nil
}

// Len returns the number of rules the Table was compiled from.
func (t *Table) Len() int { return t.n }

// Warnings returns what Compile accepted but doubts, in rule order: each an
// *Error like those Compile fails with. The slice is shared: do not modify
// it.
func (t *Table) Warnings() []*Error { return t.warnings }

// candidates returns the bucket for host. map[string(b)] lookups do not
// allocate.
func (t *Table) candidates(host []byte) []rule {
	if b, ok := t.exact[string(host)]; ok {
		return b
	}
	if len(t.wildcard) > 0 {
		// The first dot after a non-empty label gives the longest suffix.
		for i := 1; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			if b, ok := t.wildcard[string(host[i+1:])]; ok {
				return b
			}
		}
	}
	return t.anyHost
}

// Match returns the index of the most specific rule matching the request,
// or -1. host must already be lower-case, without port or trailing dot;
// path must already be normalised (no dot segments, no "//"). h may be nil
// when the request has no headers; rules with header conditions then do not
// match. Match does not allocate (h.Peek permitting).
func (t *Table) Match(host, method, path []byte, h Headers) int {
	b := t.candidates(host)
	for i := range b {
		r := &b[i]
		if r.matchPath(path) && r.matchMethod(method) && r.matchHeaders(h) {
			return r.index
		}
	}
	return -1
}

// MatchOrAllowed is Match that, on a miss, also tells 404 from 405. When a
// rule matches, it returns its index and allow unchanged. When none does, it
// returns -1 and allow with the methods of every rule that matches the
// request in all but its method appended, as an Allow header value: "GET,
// POST", deduplicated, most specific rule's methods first. The caller
// answers 405 when the returned slice grew and 404 when it did not. Pass a
// reused buffer (buf[:0]) to keep the call free of allocations; the
// methods are listed as written, so HEAD appears only if a rule names it.
func (t *Table) MatchOrAllowed(host, method, path []byte, h Headers, allow []byte) (int, []byte) {
	b := t.candidates(host)
	for i := range b {
		r := &b[i]
		if r.matchPath(path) && r.matchMethod(method) && r.matchHeaders(h) {
			return r.index, allow
		}
	}
	// A rule without methods that matched path and headers would have
	// matched above, so every rule that still matches them lists methods.
	start := len(allow)
	for i := range b {
		r := &b[i]
		if !r.matchPath(path) || !r.matchHeaders(h) {
			continue
		}
		for _, m := range r.methods {
			if hasToken(allow[start:], m) {
				continue
			}
			if len(allow) > start {
				allow = append(allow, ", "...)
			}
			allow = append(allow, m...)
		}
	}
	return -1, allow
}

// hasToken reports whether list, a ", "-separated list, holds tok.
func hasToken(list []byte, tok string) bool {
	for len(list) > 0 {
		end := 0
		for end < len(list) && list[end] != ',' {
			end++
		}
		if string(list[:end]) == tok {
			return true
		}
		if end == len(list) {
			return false
		}
		list = list[end+2:] // skip ", "
	}
	return false
}
