package route

import (
	"slices"
	"strings"
	"testing"
)

// Pools the structured fuzz target draws rules and requests from. They are
// small on purpose so that random rules overlap and compete for requests.
var (
	fuzzHosts       = []string{"", "example.com", "a.example.com", "b.example.com", "x.b.example.com", "*.example.com", "*.b.example.com", "*.com", "other.test"}
	fuzzReqHosts    = []string{"", "example.com", "a.example.com", "b.example.com", "x.b.example.com", "y.x.b.example.com", "com", "other.test", "badexample.com", ".example.com"}
	fuzzPaths       = []string{"/", "/api", "/api/", "/api/orders", "/api/orders/", "/api/orders/1", "/apix", "/b"}
	fuzzReqPaths    = []string{"/", "/api", "/api/", "/api/orders", "/api/orders/", "/api/orders/1", "/api/orders/1/x", "/apix", "/b", "/b/c", "/api/ordersX", ""}
	fuzzMethods     = []string{"GET", "POST", "PUT"}
	fuzzReqMethods  = []string{"GET", "POST", "PUT", "DELETE", "get"}
	fuzzHeaderConds = [][2]string{{"X-A", "1"}, {"x-b", "1"}, {"X-C", "2"}}
	fuzzReqHeaders  = []testHeaders{nil, hdrs("X-A", "1"), hdrs("x-a", "1", "X-B", "1"), hdrs("X-A", "2", "X-C", "2"), hdrs("X-A", "1", "X-B", "1", "X-C", "2")}
)

// byteReader hands out bytes of the fuzz input, then zeros.
type byteReader []byte

func (r *byteReader) next() int {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return int(b)
}

func pick[T any](r *byteReader, list []T) T { return list[r.next()%len(list)] }

// FuzzMatchEqualsReference decodes random rules and requests from the input
// and checks Table against the brute-force reference, for both the winner
// and the 405 method list.
func FuzzMatchEqualsReference(f *testing.F) {
	f.Add([]byte{3, 5, 1, 0, 0, 2, 3, 1, 1, 0, 1, 0, 0, 0, 2, 4, 1, 1, 0, 1})
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("\x0c\x06\x04\x05\x07\x02\x01\x00\x03\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := byteReader(data)
		rules := make([]Rule, r.next()%13)
		for i := range rules {
			rule := Rule{Host: pick(&r, fuzzHosts)}
			switch p := pick(&r, fuzzPaths); r.next() % 3 {
			case 0:
				rule.PathPrefix = p
			case 1:
				rule.Path = p
			}
			mask := r.next()
			for j, m := range fuzzMethods {
				if mask&(1<<j) != 0 {
					rule.Methods = append(rule.Methods, m)
				}
			}
			for j, c := range fuzzHeaderConds {
				if mask&(1<<(j+3)) != 0 {
					rule.Headers = append(rule.Headers, c)
				}
			}
			rules[i] = rule
		}
		table, err := Compile(rules)
		if err != nil {
			t.Fatalf("Compile(%+v): %v", rules, err)
		}
		for len(r) > 0 {
			host, method, path := pick(&r, fuzzReqHosts), pick(&r, fuzzReqMethods), pick(&r, fuzzReqPaths)
			h := headersOrNil(pick(&r, fuzzReqHeaders))
			got, allow := table.MatchOrAllowed([]byte(host), []byte(method), []byte(path), h, nil)
			if want := refMatch(rules, host, method, path, h); got != want {
				t.Fatalf("rules %+v\nrequest %s %s%s %v: Match = %d, reference = %d", rules, method, host, path, h, got, want)
			}
			if m := table.Match([]byte(host), []byte(method), []byte(path), h); m != got {
				t.Fatalf("Match = %d, MatchOrAllowed = %d", m, got)
			}
			if gotSet, wantSet := splitAllow(allow), refAllowed(rules, host, method, path, h); !slices.Equal(gotSet, wantSet) {
				t.Fatalf("rules %+v\nrequest %s %s%s %v: allow = %v, reference = %v", rules, method, host, path, h, gotSet, wantSet)
			}
		}
	})
}

// FuzzCompileAndMatch feeds arbitrary strings to Compile and, when it
// accepts them, arbitrary requests to Match: neither may panic, and an
// accepted rule must agree with the reference.
func FuzzCompileAndMatch(f *testing.F) {
	f.Add("*.example.com", "/api/orders", "", "GET", "X-A", "1", "a.example.com", "GET", "/api/orders/1", "X-A", "1")
	f.Add("", "", "/health", "", "", "", "", "HEAD", "/health", "", "")
	f.Add("[::1]", "/a/", "", "POST", "x-b", "v", "[::1]", "POST", "/a/", "X-B", "v")
	f.Fuzz(func(t *testing.T, host, prefix, path, method, hname, hval, reqHost, reqMethod, reqPath, reqHName, reqHVal string) {
		rule := Rule{Host: host, PathPrefix: prefix, Path: path}
		if method != "" {
			rule.Methods = []string{method}
		}
		if hname != "" {
			rule.Headers = [][2]string{{hname, hval}}
		}
		rules := []Rule{rule, {PathPrefix: "/"}}
		table, err := Compile(rules)
		if err != nil {
			return
		}
		h := hdrs(reqHName, reqHVal)
		// The gateway hands over lower-cased hosts; try both forms anyway.
		for _, rh := range []string{reqHost, strings.ToLower(reqHost), strings.ToLower(host)} {
			for _, rp := range []string{reqPath, prefix, path} {
				got := table.Match([]byte(rh), []byte(reqMethod), []byte(rp), h)
				if want := refMatch(rules, rh, reqMethod, rp, h); got != want {
					t.Fatalf("rule %+v, request %s %s%s %v: Match = %d, reference = %d", rule, reqMethod, rh, rp, h, got, want)
				}
			}
		}
	})
}
