package gateway

import (
	"testing"

	"github.com/sluice-gw/sluice/bench"
)

// BenchmarkHandleProxiedGET measures the whole request path of one proxied
// GET, including the exchange with a loopback origin.
func BenchmarkHandleProxiedGET(b *testing.B) {
	o, err := bench.StartOrigin(bench.OriginOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	s, err := New(loadConfig(b, gatewayYAML(o.Addr())), Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve() //nolint:errcheck
	defer s.Shutdown(b.Context())
	serve := serveRaw(b, s, "GET /api/orders/17 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: b\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if serve() != 200 {
			b.Fatal("not 200")
		}
	}
}
