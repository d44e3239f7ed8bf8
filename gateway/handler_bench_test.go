package gateway

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/origin"
)

// BenchmarkHandleProxiedGET measures the whole request path of one proxied
// GET, including the exchange with a loopback origin, with and without the
// access log.
func BenchmarkHandleProxiedGET(b *testing.B) {
	o, err := origin.Start(origin.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	for _, accessLog := range []bool{false, true} {
		name := "plain"
		yaml := gatewayYAML(o.Addr())
		if accessLog {
			name = "access_log"
			yaml = strings.Replace(yaml, "log:", "access_log: {enabled: true}\nlog:", 1)
		}
		b.Run(name, func(b *testing.B) {
			s, err := New(loadConfig(b, yaml), Options{Logger: discardLogger(), AccessLogOutput: io.Discard})
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
		})
	}
}

// BenchmarkHandleCacheHit measures the whole request path of a GET answered
// from memory (L1): the ceiling of a cached route.
func BenchmarkHandleCacheHit(b *testing.B) {
	o, err := origin.Start(origin.Options{Addr: "127.0.0.1:0", CacheControl: "public, max-age=3600"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	yaml := strings.Replace(gatewayYAML(o.Addr()), "    strip_prefix: /api\n    pool: orders\n",
		"    strip_prefix: /api\n    pool: orders\n    cache: {enabled: true}\n", 1)
	s, err := New(loadConfig(b, yaml), Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve() //nolint:errcheck
	defer s.Shutdown(b.Context())
	serve := serveRaw(b, s, "GET /api/orders/17 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: b\r\n\r\n")
	serve()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if serve() != 200 {
			b.Fatal("not 200")
		}
	}
}

// BenchmarkServeProxiedGET is one proxied GET through the whole gateway over
// loopback: a keep-alive client connection, fasthttp's server loop and the
// client connection's deadlines, the handler and the exchange with an
// in-process origin. Run it under `valgrind --tool=callgrind` with a fixed
// -benchtime (say 3000x) to compare instructions per request.
func BenchmarkServeProxiedGET(b *testing.B) {
	o, err := origin.Start(origin.Options{Addr: "127.0.0.1:0"})
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
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /api/orders/17 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: b\r\n\r\n")
	br := bufio.NewReader(c)
	var resp fasthttp.Response
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := resp.Read(br); err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode() != 200 {
			b.Fatalf("status %d", resp.StatusCode())
		}
	}
}
