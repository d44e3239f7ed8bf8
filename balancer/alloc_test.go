//go:build !race

package balancer

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestPickDoesNotAllocate(t *testing.T) {
	for _, policy := range []string{PolicyRoundRobin, PolicyWeightedRoundRobin, PolicyLeastConn} {
		t.Run(policy, func(t *testing.T) {
			o := testOptions("a:1", "b:2", "c:3")
			o.Policy = policy
			p := newTestPool(t, o, nil)
			p.Backends()[1].SetHealthy(false)
			key := []byte("client")
			if n := testing.AllocsPerRun(1000, func() {
				b := p.Pick(key)
				_ = p.PickExcept(key, b)
			}); n != 0 {
				t.Errorf("Pick and PickExcept allocate %v times, want 0", n)
			}
		})
	}
}

func TestBackendDoDoesNotAllocate(t *testing.T) {
	addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	for _, tt := range []struct {
		name string
		o    Options
	}{
		{"on an ordinary connection", testOptions()},
		{"pipelined", pipelineOptions(1, time.Second)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBackend(addr, 1, tt.o)
			t.Cleanup(b.Close)
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			req.SetRequestURI("/orders/42")
			req.Header.SetHost("backend")
			do := func() {
				if err := b.Do(req, resp, time.Now().Add(5*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			do() // dial and warm the pools
			// The count includes the fasthttp server's work (and the
			// pipeline's goroutines'); both sides are allocation-free once
			// warm, the peek included.
			if n := testing.AllocsPerRun(1000, do); n != 0 {
				t.Errorf("Backend.Do allocates %v times per request, want 0", n)
			}
			if s := b.Stats(); tt.o.Upstream.Pipeline.Enabled() && s.Pipelined < 1000 {
				t.Errorf("Pipelined = %d, want every request pipelined", s.Pipelined)
			}
		})
	}
}
