//go:build !race

package gateway

import (
	"testing"
)

func TestRateLimitedRequestDoesNotAllocate(t *testing.T) {
	limits := `  per_client: {key: ip, rate: 1000000/s}
  per_key: {key: "header:X-API-Key+query:tenant+cookie:session", rate: 1000000/s}
  spent: {key: ip, rate: 1/h, burst: 1}`
	yaml := limitYAML(limitBackend(t), limits, "[per_client]", false) +
		"  - {name: headers, match: {path_prefix: /headers}, pool: app, rate_limits: [per_client, per_key], rate_limit_headers: true}\n" +
		"  - {name: spent, match: {path_prefix: /spent}, pool: app, rate_limits: [spent]}\n"
	s := startGateway(t, yaml)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"an allowed request", "GET /api/orders/17 HTTP/1.1\r\nHost: shop.example\r\n\r\n", 200},
		{"an allowed IPv6 client behind a trusted proxy", "GET /api/orders/17 HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 2001:db8:1:2::7\r\n\r\n", 200},
		{"an allowed request with RateLimit headers and a three-part key",
			"GET /headers/1?tenant=t%31 HTTP/1.1\r\nHost: shop.example\r\nX-API-Key: k1\r\nCookie: session=s1\r\n\r\n", 200},
		{"a refused request", "GET /spent/1 HTTP/1.1\r\nHost: shop.example\r\n\r\n", 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serve := serveRaw(t, s, tt.raw)
			serve() // the first request of a client creates its bucket
			for i := 0; i < 100; i++ {
				if st := serve(); st != tt.status {
					t.Fatalf("status %d, want %d", st, tt.status)
				}
			}
			if n := testing.AllocsPerRun(1000, func() { serve() }); n != 0 {
				t.Errorf("%s allocates %v times per request, want 0", tt.name, n)
			}
		})
	}
}
