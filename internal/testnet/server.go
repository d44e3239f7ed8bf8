package testnet

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// Serve serves h on a free loopback port until the test ends and returns
// its address. The server shows the handler the request as the wire carried
// it: header names keep their spelling (DisableHeaderNamesNormalizing) and
// no Server header is added to answers.
func Serve(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	addr, _ := Start(t, &fasthttp.Server{
		Handler:                       h,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
	})
	return addr
}

// Start serves s on a free loopback port and returns its address and stop,
// which shuts s down and waits for Serve to return. stop may be called more
// than once and runs at the end of the test anyway. Start sets
// s.CloseOnShutdown, so that stopping also ends keep-alive connections a
// client holds; like fasthttp's Shutdown, stop waits for handlers still
// running, so release a blocked handler before the test ends.
func Start(t testing.TB, s *fasthttp.Server) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	s.CloseOnShutdown = true
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			// Close the listener here: Shutdown does not know it yet if
			// Serve has not started.
			_ = ln.Close()
			_ = s.Shutdown()
			<-done
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// FreeAddr returns a loopback host:port nothing listens on: a port for a
// process under test to listen on, or the address of a backend that refuses
// connections. Another process may take the port meanwhile; on loopback that
// is rare, and shows as a failure to listen, never as a wrong result.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}
