package route

import (
	"slices"
	"strings"
	"testing"
)

type request struct {
	host, method, path string
	headers            testHeaders
}

func get(host, path string, kv ...string) request {
	r := request{host: host, method: "GET", path: path}
	if len(kv) > 0 {
		r.headers = hdrs(kv...)
	}
	return r
}

func (r request) with(method string) request { r.method = method; return r }

func TestMatch(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		req   request
		want  int
	}{
		// Hosts.
		{"an exact host matches only that host", []Rule{{Host: "api.example.com"}},
			get("api.example.com", "/"), 0},
		{"an exact host does not match another host", []Rule{{Host: "api.example.com"}},
			get("www.example.com", "/"), -1},
		{"a host in upper case in the rule matches the lower-cased request host", []Rule{{Host: "API.Example.COM"}},
			get("api.example.com", "/"), 0},
		{"a request host with a trailing dot is not stripped by the table", []Rule{{Host: "api.example.com"}},
			get("api.example.com.", "/"), -1},
		{"a wildcard matches one more label", []Rule{{Host: "*.example.com"}},
			get("a.example.com", "/"), 0},
		{"a wildcard matches several more labels", []Rule{{Host: "*.example.com"}},
			get("a.b.example.com", "/"), 0},
		{"a wildcard does not match its apex", []Rule{{Host: "*.example.com"}},
			get("example.com", "/"), -1},
		{"a wildcard does not match a host that merely ends with its suffix", []Rule{{Host: "*.example.com"}},
			get("badexample.com", "/"), -1},
		{"a wildcard does not match an empty leading label", []Rule{{Host: "*.example.com"}},
			get(".example.com", "/"), -1},
		{"a wildcard in upper case matches", []Rule{{Host: "*.EXAMPLE.com"}},
			get("a.example.com", "/"), 0},
		{"an exact host beats a wildcard listed first", []Rule{{Host: "*.example.com"}, {Host: "a.example.com"}},
			get("a.example.com", "/"), 1},
		{"an exact host beats any host listed first", []Rule{{}, {Host: "a.example.com"}},
			get("a.example.com", "/"), 1},
		{"a wildcard beats any host listed first", []Rule{{}, {Host: "*.example.com"}},
			get("a.example.com", "/"), 1},
		{"a longer wildcard suffix beats a shorter one listed first", []Rule{{Host: "*.example.com"}, {Host: "*.b.example.com"}},
			get("a.b.example.com", "/"), 1},
		{"a shorter wildcard serves hosts outside a longer one", []Rule{{Host: "*.example.com"}, {Host: "*.b.example.com"}},
			get("a.c.example.com", "/"), 0},
		{"the longer wildcard's apex falls to the shorter wildcard", []Rule{{Host: "*.example.com"}, {Host: "*.b.example.com"}},
			get("b.example.com", "/"), 0},
		{"a shorter wildcard still matches when the longer one's path does not", []Rule{{Host: "*.example.com"}, {Host: "*.b.example.com", PathPrefix: "/x"}},
			get("a.b.example.com", "/y"), 0},
		{"an exact host falls back to a matching wildcard", []Rule{{Host: "a.example.com", PathPrefix: "/x"}, {Host: "*.example.com"}},
			get("a.example.com", "/y"), 1},
		{"an exact host does not fall back to a wildcard for its apex", []Rule{{Host: "example.com", PathPrefix: "/x"}, {Host: "*.example.com"}},
			get("example.com", "/y"), -1},
		{"an exact host falls back to any host", []Rule{{Host: "a.example.com", PathPrefix: "/x"}, {}},
			get("a.example.com", "/y"), 1},
		{"an empty request host matches only any-host rules", []Rule{{Host: "a.example.com"}, {Host: "*.example.com"}, {}},
			get("", "/"), 2},
		{"a host beats a more specific path", []Rule{{Path: "/api/orders"}, {Host: "a.example.com"}},
			get("a.example.com", "/api/orders"), 1},

		// Paths.
		{"a prefix matches itself", []Rule{{PathPrefix: "/api/orders"}}, get("h", "/api/orders"), 0},
		{"a prefix matches a path below it", []Rule{{PathPrefix: "/api/orders"}}, get("h", "/api/orders/42"), 0},
		{"a prefix matches its directory form", []Rule{{PathPrefix: "/api/orders"}}, get("h", "/api/orders/"), 0},
		{"a prefix does not match a longer segment", []Rule{{PathPrefix: "/api/orders"}}, get("h", "/api/ordersX"), -1},
		{"a prefix does not match a shorter path", []Rule{{PathPrefix: "/api/orders"}}, get("h", "/api"), -1},
		{"a prefix ending in a slash matches below it", []Rule{{PathPrefix: "/api/"}}, get("h", "/api/x"), 0},
		{"a prefix ending in a slash matches itself", []Rule{{PathPrefix: "/api/"}}, get("h", "/api/"), 0},
		{"a prefix ending in a slash does not match the path without it", []Rule{{PathPrefix: "/api/"}}, get("h", "/api"), -1},
		{"the root prefix matches every path", []Rule{{PathPrefix: "/"}}, get("h", "/anything/at/all"), 0},
		{"no path and no prefix match every path", []Rule{{}}, get("h", "/anything"), 0},
		{"an exact path matches itself", []Rule{{Path: "/health"}}, get("h", "/health"), 0},
		{"an exact path does not match below it", []Rule{{Path: "/health"}}, get("h", "/health/x"), -1},
		{"an exact path does not match its directory form", []Rule{{Path: "/health"}}, get("h", "/health/"), -1},
		{"an exact path beats an equal prefix listed first", []Rule{{PathPrefix: "/api/orders"}, {Path: "/api/orders"}},
			get("h", "/api/orders"), 1},
		{"an exact path beats a longer prefix listed first", []Rule{{PathPrefix: "/api/orders/"}, {Path: "/api/orders/42"}},
			get("h", "/api/orders/42"), 1},
		{"a longer prefix beats a shorter one listed first", []Rule{{PathPrefix: "/api"}, {PathPrefix: "/api/orders"}},
			get("h", "/api/orders/42"), 1},
		{"a shorter prefix serves what a longer one does not", []Rule{{PathPrefix: "/api"}, {PathPrefix: "/api/orders"}},
			get("h", "/api/users"), 0},
		{"a prefix with a trailing slash beats the same prefix without", []Rule{{PathPrefix: "/api"}, {PathPrefix: "/api/"}},
			get("h", "/api/x"), 1},
		{"a path beats methods", []Rule{{PathPrefix: "/api", Methods: []string{"GET"}}, {PathPrefix: "/api/orders"}},
			get("h", "/api/orders"), 1},

		// Methods.
		{"a listed method matches", []Rule{{Methods: []string{"POST", "GET"}}}, get("h", "/"), 0},
		{"an unlisted method does not match", []Rule{{Methods: []string{"POST"}}}, get("h", "/"), -1},
		{"methods are case-sensitive", []Rule{{Methods: []string{"GET"}}}, get("h", "/").with("get"), -1},
		{"a rule with methods beats one without listed first", []Rule{{}, {Methods: []string{"GET"}}},
			get("h", "/"), 1},
		{"a rule without methods serves other methods", []Rule{{}, {Methods: []string{"GET"}}},
			get("h", "/").with("DELETE"), 0},
		{"methods beat headers", []Rule{{Headers: [][2]string{{"X-A", "1"}}}, {Methods: []string{"GET"}}},
			get("h", "/", "X-A", "1"), 1},

		// Headers.
		{"an equal header matches", []Rule{{Headers: [][2]string{{"X-Tenant", "acme"}}}},
			get("h", "/", "X-Tenant", "acme"), 0},
		{"header names are case-insensitive", []Rule{{Headers: [][2]string{{"x-tenant", "acme"}}}},
			get("h", "/", "X-TENANT", "acme"), 0},
		{"header values are case-sensitive", []Rule{{Headers: [][2]string{{"X-Tenant", "acme"}}}},
			get("h", "/", "X-Tenant", "ACME"), -1},
		{"an absent header does not match", []Rule{{Headers: [][2]string{{"X-Tenant", "acme"}}}},
			get("h", "/", "X-Other", "acme"), -1},
		{"nil headers do not match a header condition", []Rule{{Headers: [][2]string{{"X-Tenant", "acme"}}}},
			get("h", "/"), -1},
		{"all header conditions must hold", []Rule{{Headers: [][2]string{{"X-A", "1"}, {"X-B", "2"}}}},
			get("h", "/", "X-A", "1", "X-B", "3"), -1},
		{"more header conditions beat fewer listed first", []Rule{{Headers: [][2]string{{"X-A", "1"}}}, {Headers: [][2]string{{"X-A", "1"}, {"X-B", "2"}}}},
			get("h", "/", "X-A", "1", "X-B", "2"), 1},
		{"fewer header conditions serve what more do not", []Rule{{Headers: [][2]string{{"X-A", "1"}}}, {Headers: [][2]string{{"X-A", "1"}, {"X-B", "2"}}}},
			get("h", "/", "X-A", "1"), 0},

		// Ties.
		{"identical rules are won by the first", []Rule{{PathPrefix: "/a"}, {PathPrefix: "/a"}},
			get("h", "/a"), 0},
		{"equally specific header rules are won by the first", []Rule{{Headers: [][2]string{{"X-A", "1"}}}, {Headers: [][2]string{{"X-B", "1"}}}},
			get("h", "/", "X-A", "1", "X-B", "1"), 0},
		{"equally specific method rules are won by the first", []Rule{{Methods: []string{"GET"}}, {Methods: []string{"GET", "POST"}}},
			get("h", "/"), 0},
		{"the tie goes to the first also when it is listed last of three", []Rule{{PathPrefix: "/x"}, {PathPrefix: "/a"}, {PathPrefix: "/a"}},
			get("h", "/a"), 1},

		{"an empty table matches nothing", nil, get("h", "/"), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := mustCompile(t, tt.rules)
			h := headersOrNil(tt.req.headers)
			got := table.Match([]byte(tt.req.host), []byte(tt.req.method), []byte(tt.req.path), h)
			if got != tt.want {
				t.Errorf("Match(%q, %q, %q) = %d, want %d", tt.req.host, tt.req.method, tt.req.path, got, tt.want)
			}
			if ref := refMatch(tt.rules, tt.req.host, tt.req.method, tt.req.path, h); ref != tt.want {
				t.Errorf("reference matcher = %d, want %d (the reference is wrong)", ref, tt.want)
			}
		})
	}
}

func TestMatchOrAllowed(t *testing.T) {
	rules := []Rule{
		{Host: "api.example.com", PathPrefix: "/orders", Methods: []string{"GET", "HEAD"}},
		{PathPrefix: "/orders", Methods: []string{"POST", "GET"}},
		{Path: "/orders/export", Methods: []string{"PUT"}, Headers: [][2]string{{"X-Admin", "yes"}}},
		{PathPrefix: "/open"},
	}
	table := mustCompile(t, rules)
	tests := []struct {
		name      string
		req       request
		wantIdx   int
		wantAllow string
	}{
		{"a matching request returns its rule and no methods", get("api.example.com", "/orders"), 0, ""},
		{"a path no rule serves is a 404", get("api.example.com", "/users"), -1, ""},
		{"a path served for other methods lists them all, most specific first", get("api.example.com", "/orders").with("DELETE"), -1, "GET, HEAD, POST"},
		{"another host lists only the rules for its host", get("www.example.com", "/orders").with("DELETE"), -1, "POST, GET"},
		{"methods of rules whose headers do not hold are left out", get("www.example.com", "/orders/export").with("DELETE"), -1, "POST, GET"},
		{"methods of rules whose headers hold are listed", get("www.example.com", "/orders/export", "X-Admin", "yes").with("DELETE"), -1, "PUT, POST, GET"},
		{"a rule without methods never gives a 405", get("h", "/open").with("BREW"), 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte("keep")
			idx, allow := table.MatchOrAllowed([]byte(tt.req.host), []byte(tt.req.method), []byte(tt.req.path), headersOrNil(tt.req.headers), buf)
			if idx != tt.wantIdx {
				t.Errorf("index = %d, want %d", idx, tt.wantIdx)
			}
			if got := string(allow); got != "keep"+tt.wantAllow {
				t.Errorf("allow = %q, want %q appended to %q", got, tt.wantAllow, "keep")
			}
		})
	}
}

func TestMatchOrAllowedAgreesWithMatch(t *testing.T) {
	rules := []Rule{
		{Host: "*.example.com", PathPrefix: "/a/", Methods: []string{"GET"}},
		{PathPrefix: "/a", Methods: []string{"POST", "GET"}},
		{Path: "/b"},
	}
	table := mustCompile(t, rules)
	for _, host := range []string{"", "x.example.com", "example.com"} {
		for _, path := range []string{"/", "/a", "/a/1", "/b", "/c"} {
			for _, method := range []string{"GET", "POST", "PUT"} {
				want := table.Match([]byte(host), []byte(method), []byte(path), nil)
				got, allow := table.MatchOrAllowed([]byte(host), []byte(method), []byte(path), nil, nil)
				if got != want {
					t.Errorf("%s %s%s: MatchOrAllowed = %d, Match = %d", method, host, path, got, want)
				}
				gotSet := splitAllow(allow)
				wantSet := refAllowed(rules, host, method, path, nil)
				if !slices.Equal(gotSet, wantSet) {
					t.Errorf("%s %s%s: allow = %v, want %v", method, host, path, gotSet, wantSet)
				}
			}
		}
	}
}

// splitAllow turns an Allow value into a sorted set.
func splitAllow(allow []byte) []string {
	if len(allow) == 0 {
		return nil
	}
	set := strings.Split(string(allow), ", ")
	slices.Sort(set)
	return set
}

func TestLen(t *testing.T) {
	table := mustCompile(t, []Rule{{}, {Path: "/a"}, {Host: "*.x.y"}})
	if got := table.Len(); got != 3 {
		t.Errorf("Len() = %d, want 3", got)
	}
}

func TestCompileDoesNotKeepTheCallersSlices(t *testing.T) {
	rules := []Rule{{Methods: []string{"GET"}, Headers: [][2]string{{"X-A", "1"}}}}
	table := mustCompile(t, rules)
	rules[0].Methods[0] = "POST"
	rules[0].Headers[0][1] = "2"
	if got := table.Match([]byte("h"), []byte("GET"), []byte("/"), hdrs("X-A", "1")); got != 0 {
		t.Errorf("after editing the rules, Match = %d, want 0", got)
	}
}
