package bench

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkOriginServeOrder measures the handler alone on the hot path,
// GET /orders/{id} with no latency or fault: the origin's own cost per
// request when it is the backend of a proxy benchmark.
func BenchmarkOriginServeOrder(b *testing.B) {
	o, err := StartOrigin(OriginOptions{CacheControl: "max-age=5"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	ctx := originHandlerCtx(b, originGet("/orders/12345", "Accept: application/json\r\n", "User-Agent: bench\r\n"))
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		o.serve(ctx)
	}
}

// BenchmarkOriginLoopback measures whole requests over loopback keep-alive
// connections with fasthttp's client, in parallel: what a load generator
// sees from the origin alone, before a gateway sits in between.
func BenchmarkOriginLoopback(b *testing.B) {
	o, err := StartOrigin(OriginOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	c := &fasthttp.HostClient{Addr: o.Addr(), MaxConns: 64, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		var uri []byte
		for i := 1; pb.Next(); i++ {
			uri = strconv.AppendInt(append(uri[:0], "http://origin.test/orders/"...), int64(i%1000+1), 10)
			req.SetRequestURIBytes(uri)
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("request: %v %d", err, resp.StatusCode())
			}
		}
	})
}

// originHandlerCtx returns a RequestCtx holding raw, parsed as the server
// parses it, so RawHeaders and the request line are what the wire carried.
func originHandlerCtx(tb testing.TB, raw string) *fasthttp.RequestCtx {
	tb.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatalf("parse request: %v", err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}, nil)
	return &ctx
}
