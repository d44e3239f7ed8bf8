//go:build !race

package gateway

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/origin"
)

// Once the shutdown has begun every response gets Connection: close; the
// front handler must still not allocate.
func TestFrontHandlerDoesNotAllocateWhileShuttingDown(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	s.BeginShutdown()
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	serve := func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetHost("shop.example")
		ctx.Request.SetRequestURI("/api/orders/17")
		s.serveFront(&ctx)
		if ctx.Response.StatusCode() != 200 || !ctx.Response.ConnectionClose() {
			t.Fatalf("status %d, Connection: close %v; want 200 with Connection: close",
				ctx.Response.StatusCode(), ctx.Response.ConnectionClose())
		}
	}
	for i := 0; i < 100; i++ { // warm pools and connections
		serve()
	}
	if n := testing.AllocsPerRun(1000, serve); n != 0 {
		t.Errorf("a proxied GET during the shutdown allocates %v times, want 0", n)
	}
}
