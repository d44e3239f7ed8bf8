package gateway

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// pipelinedYAML is gatewayYAML with upstream.pipeline on for the pool.
func pipelinedYAML(addr string) string {
	return strings.Replace(gatewayYAML(addr), "    timeout: 2s\n",
		"    timeout: 2s\n    upstream: {pipeline: {depth: 8, conns: 2}}\n", 1)
}

func TestUpstreamPipelining(t *testing.T) {
	t.Parallel()
	t.Run("every client gets the response to its own request", func(t *testing.T) {
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
		})
		s := startGateway(t, pipelinedYAML(rb.Addr))
		var wg sync.WaitGroup
		for c := range 16 {
			wg.Go(func() {
				for i := range 10 {
					path := fmt.Sprintf("/orders/c%d-%d", c, i)
					if r := do(t, "GET", s.url("/api"+path), ""); r.status != 200 || r.body != path {
						t.Errorf("GET %s: %d %q", path, r.status, r.body)
					}
				}
			})
		}
		wg.Wait()
		if r := do(t, "POST", s.url("/echo/post"), "x"); r.status != 200 || r.body != "/echo/post" {
			t.Errorf("POST: %d %q", r.status, r.body)
		}
		pools := do(t, "GET", "http://"+s.AdminAddr().String()+"/admin/pools", "")
		if !strings.Contains(pools.body, `"pipelined"`) || strings.Contains(pools.body, "pipeline_off") {
			t.Errorf("/admin/pools shows no pipelined requests, or pipelining off:\n%s", pools.body)
		}
	})

	t.Run("a backend that sends stray bytes has pipelining turned off, logged once", func(t *testing.T) {
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path) + "garbage"))
		})
		var logs testnet.Buffer
		s := startGateway(t, pipelinedYAML(rb.Addr), func(o *Options) {
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		for i := range 5 {
			path := fmt.Sprintf("/orders/%d", i)
			if r := do(t, "GET", s.url("/api"+path), ""); r.status != 200 || r.body != path {
				t.Errorf("GET %s: %d %q", path, r.status, r.body)
			}
		}
		const msg = "pipelining to a backend turned off"
		testnet.Eventually(t, "the turn-off to be logged", func() bool { return strings.Contains(logs.String(), msg) })
		if lines := testnet.Lines(logs.String(), msg); strings.Count(lines, "\n") != 0 || !strings.Contains(lines, rb.Addr) {
			t.Errorf("want one log line naming the backend, got:\n%s", lines)
		}
	})
}

// BenchmarkServePipelinedGET is one proxied GET through the whole gateway
// with upstream.pipeline on (depth 8, batch_delay 50us, as bench/compare.sh's
// sluice_pipeline), from 16 keep-alive client connections per GOMAXPROCS to
// an in-process origin. Run it with -cpu 1 under `valgrind --tool=callgrind`
// (GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off) with a fixed -benchtime to
// compare instructions per request.
func BenchmarkServePipelinedGET(b *testing.B) {
	o, err := origin.Start(origin.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	yaml := strings.Replace(gatewayYAML(o.Addr()), "    timeout: 2s\n",
		"    timeout: 2s\n    upstream: {pipeline: {depth: 8, batch_delay: 50us}}\n", 1)
	s, err := New(loadConfig(b, yaml), Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve() //nolint:errcheck
	defer s.Shutdown(b.Context())
	req := []byte("GET /api/orders/17 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: b\r\n\r\n")
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var resp fasthttp.Response
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if err := resp.Read(br); err != nil || resp.StatusCode() != 200 {
				b.Errorf("status %d, err %v", resp.StatusCode(), err)
				return
			}
		}
	})
}
