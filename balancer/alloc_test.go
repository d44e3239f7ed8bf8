//go:build !race

package balancer

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestPickDoesNotAllocate(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			o := testOptions("a:1", "b:2", "c:3", "d:4")
			o.Policy = policy
			o.SlowStart = time.Minute
			p := newTestPool(t, o, nil)
			bs := p.Backends()
			bs[1].SetHealthy(false)
			bs[2].SetHealthy(false)
			bs[2].SetHealthy(true)  // ramping: slow start draws and reads the clock
			bs[3].inFlight.Store(5) // over consistent_hash's bound: its keys walk on
			bs[3].ewmaMicros.Store(900)
			keys := [][]byte{[]byte("client"), []byte("other"), []byte("third"), nil}
			i := 0
			if n := testing.AllocsPerRun(1000, func() {
				key := keys[i%len(keys)]
				i++
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

func TestAcquireAndReleaseDoNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		cb   CircuitBreakerOptions
	}{
		{"without caps", CircuitBreakerOptions{}},
		{"below the caps", CircuitBreakerOptions{MaxRequestsPerBackend: 2, MaxRequests: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions("a:1", "b:2", "c:3")
			o.CircuitBreaker = tt.cb.WithDefaults()
			p := newTestPool(t, o, nil)
			key := []byte("client")
			deadline := time.Now().Add(time.Minute)
			if n := testing.AllocsPerRun(1000, func() {
				b, err := p.Acquire(key, nil, deadline)
				if err != nil {
					t.Fatal(err)
				}
				retry, err := p.Acquire(key, b, deadline)
				if err != nil {
					t.Fatal(err)
				}
				p.Release(b, Outcome{Status: 200, Latency: time.Millisecond})
				p.Release(retry, Outcome{Status: 200, Latency: time.Millisecond})
			}); n != 0 {
				t.Errorf("Acquire and Release allocate %v times, want 0", n)
			}
		})
	}
}

func TestRetryBudgetDoesNotAllocate(t *testing.T) {
	rb := NewRetryBudget(0.2, 10)
	if n := testing.AllocsPerRun(1000, func() {
		rb.Request(rb.now())
		_ = rb.TryRetry()
	}); n != 0 {
		t.Errorf("Request and TryRetry allocate %v times, want 0", n)
	}
}
