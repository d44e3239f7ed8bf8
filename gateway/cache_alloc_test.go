//go:build !race

package gateway

import "testing"

func TestCacheHitDoesNotAllocate(t *testing.T) {
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	tests := []struct {
		name, raw string
		status    int
	}{
		{"a hit", "GET /c/x?cc=max-age%3D600 HTTP/1.1\r\nHost: shop.example\r\nX-Tenant: a\r\n\r\n", 200},
		{"a HEAD hit on a stored GET", "HEAD /c/x?cc=max-age%3D600 HTTP/1.1\r\nHost: shop.example\r\nX-Tenant: a\r\n\r\n", 200},
		{"a hit answered with 304", "GET /c/e?cc=max-age%3D600&etag=%22v%22 HTTP/1.1\r\nHost: shop.example\r\nIf-None-Match: \"v\"\r\n\r\n", 304},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serve := serveRaw(t, s, tt.raw)
			for range 100 {
				serve()
			}
			if st := serve(); st != tt.status {
				t.Fatalf("status %d, want %d", st, tt.status)
			}
			if n := testing.AllocsPerRun(1000, func() { serve() }); n != 0 {
				t.Errorf("%s allocates %v times per request, want 0", tt.name, n)
			}
		})
	}
}
