package origin

import (
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkServeOrder measures the handler alone on the hot path,
// GET /orders/{id} with no latency or fault: the origin's own cost per
// request when it is the backend of a proxy benchmark.
func BenchmarkServeOrder(b *testing.B) {
	o, err := Start(Options{CacheControl: "max-age=5"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	ctx := handlerCtx(b, rawGet("/orders/12345", "Accept: application/json\r\n", "User-Agent: bench\r\n"))
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		o.serve(ctx)
	}
}

// BenchmarkLoopback measures whole requests over loopback keep-alive
// connections with fasthttp's client, in parallel: what a load generator
// sees from the origin alone, before a gateway sits in between.
func BenchmarkLoopback(b *testing.B) {
	o, err := Start(Options{})
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
