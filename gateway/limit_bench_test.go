package gateway

import (
	"io"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/bench/origin"
)

// BenchmarkHandleProxiedGETWithLimit measures what a per-client limit that
// every request passes adds to the whole request path of a proxied GET
// (compare the two sub-benchmarks; the issue asks for under 3%).
func BenchmarkHandleProxiedGETWithLimit(b *testing.B) {
	o, err := origin.Start(origin.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	for _, limited := range []bool{false, true} {
		name, yaml := "no_limit", gatewayYAML(o.Addr())
		if limited {
			name = "per_client_limit"
			yaml = strings.Replace(yaml, "routes:", "rate_limits:\n  per_client: {key: ip, rate: 1000000000/s}\nroutes:", 1)
			yaml = strings.Replace(yaml, "    pool: orders\n", "    pool: orders\n    rate_limits: [per_client]\n", 1)
		}
		b.Run(name, func(b *testing.B) {
			s, err := New(loadConfig(b, yaml), Options{Logger: discardLogger(), AccessLogOutput: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			go s.Serve() //nolint:errcheck
			defer s.Shutdown(b.Context())
			if limited && len(s.table.Load().routes[0].limits.list) != 1 {
				b.Fatal("the route has no limit")
			}
			serve := serveRaw(b, s, "GET /api/orders/17 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: b\r\n\r\n")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if serve() != 200 {
					b.Fatal("not 200")
				}
			}
		})
	}
}
