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
	b := NewBackend(addr, 1, testOptions())
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
	// The count includes the fasthttp server's work; both sides are
	// allocation-free once warm, the peek included.
	if n := testing.AllocsPerRun(1000, do); n != 0 {
		t.Errorf("Backend.Do allocates %v times per request, want 0", n)
	}
}
