package balancer

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// BenchmarkPick is one pick from 8 backends weighted 1 to 8; consistent_hash
// hashes a 24-byte key.
func BenchmarkPick(b *testing.B) {
	key := []byte("203.0.113.7:client-4711")
	for _, policy := range allPolicies {
		o := testOptions("a:1", "b:2", "c:3", "d:4", "e:5", "f:6", "g:7", "h:8")
		o.Policy = policy
		for i := range o.Backends {
			o.Backends[i].Weight = i + 1
		}
		p, err := NewPool("bench", o, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(policy+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p.Pick(key) == nil {
					b.Fatal("no backend")
				}
			}
		})
		b.Run(policy+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if p.Pick(key) == nil {
						b.Fatal("no backend")
					}
				}
			})
		})
	}
}

// BenchmarkBackendDo is one proxied GET against a loopback fasthttp server:
// the server's work is included. "pipelined" has upstream.pipeline on
// (depth 8, the default conns and batch_delay); "parallel16" keeps 16
// requests per GOMAXPROCS in flight, as behind a busy gateway, which is
// where pipelining pays off (the server answers pipelined requests in
// batches too).
func BenchmarkBackendDo(b *testing.B) {
	addr := testnet.Serve(b, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	for _, mode := range []struct {
		name  string
		depth int
	}{{"ordinary", 0}, {"pipelined", 8}} {
		o := testOptions()
		o.Upstream.Pipeline = PipelineOptions{Depth: mode.depth}.WithDefaults()
		bk := NewBackend(addr, 1, o)
		b.Cleanup(bk.Close)
		for _, par := range []int{0, 1, 16} {
			name := mode.name + "/serial"
			if par > 0 {
				name = fmt.Sprintf("%s/parallel%d", mode.name, par)
			}
			b.Run(name, func(b *testing.B) { benchmarkDo(b, bk, par) })
		}
	}
}

// benchmarkDo runs bk.Do in a loop, or from parallelism*GOMAXPROCS
// goroutines when parallelism is above 0.
func benchmarkDo(b *testing.B, bk *Backend, parallelism int) {
	loop := func(next func() bool) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("/orders/42")
		req.Header.SetHost("backend")
		for next() {
			if err := bk.Do(req, resp, time.Now().Add(5*time.Second)); err != nil {
				b.Error(err)
				return
			}
		}
	}
	b.ReportAllocs()
	if parallelism == 0 {
		loop(b.Loop)
		return
	}
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) { loop(pb.Next) })
}

// BenchmarkConnCheck is the cost of the non-blocking peek done before each
// reuse of a pooled connection (one recvfrom(MSG_PEEK|MSG_DONTWAIT)), to
// compare with BenchmarkBackendDo: through the runtime's RawConn (check, the
// pipelined writer's) and on the descriptor (checkOwned, the ordinary
// transport's).
func BenchmarkConnCheck(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			var buf [1]byte
			_, _ = c.Read(buf[:]) // hold the connection open until the end
		}
	}()
	c, err := dial(ln.Addr().String(), time.Second, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bc := c.(*backendConn)
	for name, check := range map[string]func() connState{"RawConn": bc.check, "owned": bc.checkOwned} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if check() != connClean {
					b.Fatal("idle connection is not clean")
				}
			}
		})
	}
}

// BenchmarkAcquireRelease is the breaker's fast path around a pick: below
// the caps, so nothing waits or locks (round_robin, 8 backends).
func BenchmarkAcquireRelease(b *testing.B) {
	for _, cb := range []struct {
		name string
		o    CircuitBreakerOptions
	}{
		{"no caps", CircuitBreakerOptions{}},
		{"capped", CircuitBreakerOptions{MaxRequestsPerBackend: 1 << 20, MaxRequests: 1 << 20}},
	} {
		o := testOptions("a:1", "b:2", "c:3", "d:4", "e:5", "f:6", "g:7", "h:8")
		o.CircuitBreaker = cb.o.WithDefaults()
		p, err := NewPool("bench", o, nil)
		if err != nil {
			b.Fatal(err)
		}
		ok := Outcome{Status: 200, Latency: time.Millisecond}
		b.Run(cb.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bk, err := p.Acquire(nil, nil, time.Time{})
					if err != nil {
						b.Fatal(err)
					}
					p.Release(bk, ok)
				}
			})
		})
	}
}

// BenchmarkRetryBudget is every request counted (Request) and, in the
// "every request retries" case, a retry asked for too (TryRetry).
func BenchmarkRetryBudget(b *testing.B) {
	rb := NewRetryBudget(0.2, 10)
	b.Run("request/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rb.Request(rb.now())
			}
		})
	})
	b.Run("request+retry/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rb.Request(rb.now())
				_ = rb.TryRetry()
			}
		})
	})
}
