//go:build !race

package origin

import (
	"testing"
)

func TestHotPathDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		req  string
	}{
		{"an order read", Options{}, rawGet("/orders/12345", "Accept: application/json\r\n", "User-Agent: bench\r\n")},
		{"an order read with Cache-Control and a large payload", Options{CacheControl: "max-age=5", PayloadBytes: 4096}, rawGet("/orders/9")},
		{"an unknown order", Options{}, rawGet("/orders/x")},
		{"a health check", Options{}, rawGet("/healthz")},
	}
	for _, tt := range tests {
		t.Run(tt.name+" does not allocate", func(t *testing.T) {
			o := startServer(t, tt.opts)
			ctx := handlerCtx(t, tt.req)
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
