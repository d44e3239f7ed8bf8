//go:build !race

package route

import "testing"

func TestMatchDoesNotAllocate(t *testing.T) {
	table := mustCompile(t, []Rule{
		{Host: "api.example.com", PathPrefix: "/orders", Methods: []string{"GET"}},
		{Host: "*.example.com", PathPrefix: "/orders/", Headers: [][2]string{{"X-Tenant", "acme"}}},
		{PathPrefix: "/static/"},
		{Path: "/orders", Methods: []string{"POST"}},
	})
	h := hdrs("X-Tenant", "acme")
	reqs := []request{
		get("api.example.com", "/orders"),                       // exact host hit
		get("a.b.example.com", "/orders/1", "X-Tenant", "acme"), // wildcard hit with a header
		get("unknown.test", "/static/app.js"),                   // any-host hit
		get("api.example.com", "/nothing"),                      // 404
		get("www.example.com", "/orders").with("DELETE"),        // 405
	}
	allow := make([]byte, 0, 64)
	for _, r := range reqs {
		host, method, path := []byte(r.host), []byte(r.method), []byte(r.path)
		var hh Headers = h
		if n := testing.AllocsPerRun(1000, func() { table.Match(host, method, path, hh) }); n != 0 {
			t.Errorf("Match(%s %s%s) allocates %v times, want 0", r.method, r.host, r.path, n)
		}
		if n := testing.AllocsPerRun(1000, func() {
			_, allow = table.MatchOrAllowed(host, method, path, hh, allow[:0])
		}); n != 0 {
			t.Errorf("MatchOrAllowed(%s %s%s) allocates %v times, want 0", r.method, r.host, r.path, n)
		}
	}
}
