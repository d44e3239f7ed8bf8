package route

import (
	"slices"
	"strings"
)

// The reference matcher answers the same question as Table by brute force
// over the raw rules, written independently of the compiled form: it checks
// every rule, computes its specificity as a tuple and keeps the best. The
// fuzz target holds Table to it.

func refHostMatch(pattern, host string) bool {
	pattern = strings.ToLower(pattern)
	if pattern == "" {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok { // suffix is ".example.com"
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return host == pattern
}

func refPathMatch(r Rule, path string) bool {
	if r.Path != "" {
		return path == r.Path
	}
	prefix := r.PathPrefix
	if prefix == "" {
		prefix = "/"
	}
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func refHeadersMatch(r Rule, h Headers) bool {
	for _, c := range r.Headers {
		if h == nil {
			return false
		}
		v := h.Peek(c[0])
		if v == nil || string(v) != c[1] {
			return false
		}
	}
	return true
}

// refSpecificity is compared lexicographically, larger is more specific.
func refSpecificity(r Rule) [6]int {
	var s [6]int
	switch {
	case r.Host == "":
	case strings.HasPrefix(r.Host, "*."):
		s[0], s[1] = 1, len(r.Host)
	default:
		s[0] = 2
	}
	if r.Path != "" {
		s[2] = 1
	} else {
		s[3] = max(len(r.PathPrefix), 1)
	}
	if len(r.Methods) > 0 {
		s[4] = 1
	}
	s[5] = len(r.Headers)
	return s
}

func refMatch(rules []Rule, host, method, path string, h Headers) int {
	best := -1
	var bestSpec [6]int
	for i, r := range rules {
		if !refHostMatch(r.Host, host) || !refPathMatch(r, path) || !refHeadersMatch(r, h) {
			continue
		}
		if len(r.Methods) > 0 && !slices.Contains(r.Methods, method) {
			continue
		}
		spec := refSpecificity(r)
		if best < 0 || slices.Compare(spec[:], bestSpec[:]) > 0 {
			best, bestSpec = i, spec
		}
	}
	return best
}

// refAllowed returns the set of methods for a 405 answer: those of every
// rule matching all but the method, when no rule matches at all.
func refAllowed(rules []Rule, host, method, path string, h Headers) []string {
	if refMatch(rules, host, method, path, h) >= 0 {
		return nil
	}
	var allowed []string
	for _, r := range rules {
		if refHostMatch(r.Host, host) && refPathMatch(r, path) && refHeadersMatch(r, h) {
			for _, m := range r.Methods {
				if !slices.Contains(allowed, m) {
					allowed = append(allowed, m)
				}
			}
		}
	}
	slices.Sort(allowed)
	return allowed
}
