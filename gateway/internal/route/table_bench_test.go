package route

import (
	"fmt"
	"testing"
)

// benchRules builds n rules shaped like a real gateway file: a few exact
// hosts and a wildcard, each with its own services, plus host-less routes;
// every fourth route is method-restricted and every tenth checks a header.
func benchRules(n int) []Rule {
	hosts := []string{"api.example.com", "shop.example.com", "admin.example.com", "*.tenants.example.com", ""}
	rules := make([]Rule, 0, n)
	for i := range n {
		r := Rule{
			Host:       hosts[i%len(hosts)],
			PathPrefix: fmt.Sprintf("/v1/svc%03d/items", i),
		}
		if i%4 == 0 {
			r.Methods = []string{"GET", "HEAD"}
		}
		if i%10 == 0 {
			r.Headers = [][2]string{{"X-Api-Version", "2"}}
		}
		rules = append(rules, r)
	}
	return rules
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 200} {
		rules := benchRules(n)
		table := mustCompile(b, rules)
		last := n - 1 // the last any-host rule: shortest-equal paths keep file order, so it is scanned last
		for rules[last].Host != "" {
			last--
		}
		cases := []struct {
			name string
			req  request
		}{
			{"exact host hit", get("api.example.com", "/v1/svc005/items/42")},
			{"wildcard host hit", get("acme.tenants.example.com", "/v1/svc003/items/42")},
			{"any host hit on the last rule", get("other.test", fmt.Sprintf("/v1/svc%03d/items", last))},
			{"exact host miss", get("api.example.com", "/v2/nothing")},
			{"any host miss", get("other.test", "/v2/nothing")},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("%d routes/%s", n, c.name), func(b *testing.B) {
				host, method, path := []byte(c.req.host), []byte(c.req.method), []byte(c.req.path)
				h := Headers(hdrs("X-Api-Version", "2"))
				b.ReportAllocs()
				for b.Loop() {
					table.Match(host, method, path, h)
				}
			})
		}
	}
}

func BenchmarkMatchOrAllowed405(b *testing.B) {
	for _, n := range []int{10, 200} {
		table := mustCompile(b, benchRules(n))
		host, method, path := []byte("api.example.com"), []byte("DELETE"), []byte("/v1/svc005/items")
		if n == 10 {
			path = []byte("/v1/svc000/items") // rule 0: api.example.com, GET and HEAD
		}
		h := Headers(hdrs("X-Api-Version", "2"))
		allow := make([]byte, 0, 64)
		b.Run(fmt.Sprintf("%d routes", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, allow = table.MatchOrAllowed(host, method, path, h, allow[:0])
			}
		})
	}
}
