//go:build !race

package bench

import (
	"testing"
)

func TestOriginHotPathDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		opts OriginOptions
		req  string
	}{
		{"an order read", OriginOptions{}, originGet("/orders/12345", "Accept: application/json\r\n", "User-Agent: bench\r\n")},
		{"an order read with Cache-Control and a large payload", OriginOptions{CacheControl: "max-age=5", PayloadBytes: 4096}, originGet("/orders/9")},
		{"an unknown order", OriginOptions{}, originGet("/orders/x")},
		{"a health check", OriginOptions{}, originGet("/healthz")},
	}
	for _, tt := range tests {
		t.Run(tt.name+" does not allocate", func(t *testing.T) {
			o := originStart(t, tt.opts)
			ctx := originHandlerCtx(t, tt.req)
			serve := func() {
				ctx.Response.Reset()
				o.serve(ctx)
			}
			serve()
			if ctx.Response.StatusCode() == 0 || len(ctx.Response.Body()) == 0 {
				t.Fatalf("no answer: %d", ctx.Response.StatusCode())
			}
			if n := testing.AllocsPerRun(1000, serve); n != 0 {
				t.Errorf("%v allocations per request, want 0", n)
			}
		})
	}
}
