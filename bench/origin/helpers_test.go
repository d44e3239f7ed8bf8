package origin

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// testTimeout bounds every wait in these tests: generous, because the
// machine is shared and slow under -race, and only ever reached on failure.
const testTimeout = 10 * time.Second

// startServer starts an origin on a free loopback port and closes it when the
// test ends.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	o, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// rawGet is a GET request for path with the given extra header lines.
func rawGet(path string, headers ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: origin.test\r\n" + strings.Join(headers, "") + "\r\n"
}

// rawPost is a POST request for path with a body.
func rawPost(path, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: origin.test\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// waitRequests waits until o has counted n requests.
func waitRequests(t *testing.T, o *Server, n int64) {
	t.Helper()
	testnet.Eventually(t, fmt.Sprintf("the origin to count %d requests", n), func() bool {
		return o.Requests() >= n
	})
}

// closeWithin closes o and fails if that takes long.
func closeWithin(t *testing.T, o *Server) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- o.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("Close did not return within %v", testTimeout)
	}
}

// handlerCtx returns a RequestCtx holding raw, parsed as the server
// parses it, so RawHeaders and the request line are what the wire carried.
func handlerCtx(tb testing.TB, raw string) *fasthttp.RequestCtx {
	tb.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatalf("parse request: %v", err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}, nil)
	return &ctx
}
