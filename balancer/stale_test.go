package balancer

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// A backend whose keep-alive timeout closes a pooled connection just as a
// request is sent on it (RFC 9112 §9.3.1): an idempotent request is retried
// once on a new connection; a POST is not, since it may have been processed.
func TestStaleReusedConnectionIsRetriedOnlyForIdempotentRequests(t *testing.T) {
	// Each connection answers its first request and closes on the second
	// without answering: the race, made deterministic.
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		if r.Index == 0 {
			_, _ = w.Write([]byte(testnet.OKResponse("first on conn")))
			return
		}
		_ = w.Close()
	})
	b := NewBackend(rb.Addr, 1, testOptions(rb.Addr).WithDefaults())
	t.Cleanup(b.Close)

	get(t, b, "/warm") // leaves one pooled connection
	if body := get(t, b, "/again"); body != "first on conn" {
		t.Fatalf("GET on a stale connection: body %q", body)
	}
	if n := rb.Conns(); n != 2 {
		t.Errorf("%d connections, want 2: the retry must use a new one", n)
	}

	// POST: the same race is an error, never a second send.
	post := func() error {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod("POST")
		req.SetRequestURI("/orders")
		req.Header.SetHost("backend")
		return b.Do(req, resp, time.Now().Add(5*time.Second))
	}
	if err := post(); err == nil {
		t.Fatal("POST on a stale connection succeeded; the backend never answered it")
	}
	if n := rb.Conns(); n != 2 {
		t.Errorf("%d connections after the POST, want still 2: a POST is never resent", n)
	}
}
