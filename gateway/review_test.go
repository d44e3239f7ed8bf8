package gateway

// Review tests: each pins one behaviour of the request path against the real
// server on loopback, written by an adversarial review of the request path.
// Those whose comment says "Was a bug" failed at review time and guard the
// fix; the others pin behaviour that already held.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench"
)

// reviewConn is a raw client connection that reads responses one at a time.
type reviewConn struct {
	c  net.Conn
	br *bufio.Reader
}

func reviewDial(t *testing.T, addr string) *reviewConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return &reviewConn{c: c, br: bufio.NewReader(c)}
}

func (rc *reviewConn) send(t *testing.T, raw string) {
	t.Helper()
	if _, err := io.WriteString(rc.c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// read returns the next response with its body, or nil at EOF/error.
func (rc *reviewConn) read(t *testing.T, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		return nil, ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// closedByPeer reports whether the gateway closed the connection (EOF
// without further bytes) within the deadline.
func (rc *reviewConn) closedByPeer() bool {
	_ = rc.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := rc.br.ReadByte()
	return err == io.EOF
}

// headerValues returns every value of the header named name (any case).
func headerValues(r bench.OriginRequest, name string) []string {
	var out []string
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

// rawBackend is a hand-written HTTP/1.1 backend: for each request head it
// reads on a connection it writes answer(n) where n counts requests over all
// connections from 1. It counts connections so tests can tell reuse.
type rawBackend struct {
	ln    net.Listener
	conns atomic.Int64
	reqs  atomic.Int64
}

func startRawBackend(t *testing.T, answer func(n int64, head string) string) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rb.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					n := rb.reqs.Add(1)
					out := answer(n, head.String())
					if _, err := io.WriteString(c, out); err != nil {
						return
					}
					if strings.Contains(out, "Connection: close") {
						return
					}
				}
			}()
		}
	}()
	return rb
}

func (rb *rawBackend) addr() string { return rb.ln.Addr().String() }

// Was a bug: fasthttp's SetBytesV/Set replace only the FIRST field of a name, so
// a second X-Forwarded-For (or -Proto, -Host, Via, X-Request-ID) sent by an
// untrusted client reaches the backend next to the gateway's value. Backends
// that join repeated fields ("127.0.0.1, 6.6.6.6") and take the right-most
// entry, or read the last X-Forwarded-Proto, are spoofed.
func TestReviewDuplicateForwardingHeadersFromUntrustedPeersDoNotSurvive(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	raw := "GET /echo/x HTTP/1.1\r\nHost: shop.example\r\n" +
		"X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 6.6.6.6\r\n" +
		"X-Forwarded-Proto: http\r\nX-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Host: a.example\r\nX-Forwarded-Host: evil.example\r\n" +
		"Via: 1.1 a\r\nVia: 1.1 evil\r\n" +
		"X-Request-ID: id-1\r\nX-Request-ID: id-2\r\n" +
		"Connection: close\r\n\r\n"
	status, resp := rawExchange(t, s.Addr().String(), raw)
	if status != 200 {
		t.Fatalf("status %d\n%.300s", status, resp)
	}
	rec := lastReceived(t, o)
	for _, h := range []struct{ name, want string }{
		{"X-Forwarded-For", "127.0.0.1"},
		{"X-Forwarded-Proto", "http"},
		{"X-Forwarded-Host", "shop.example"},
		{"Via", "1.1 sluice"},
		{"X-Request-ID", "id-1"},
	} {
		t.Run(h.name+" reaches the backend once with the gateway's value", func(t *testing.T) {
			got := headerValues(rec, h.name)
			if len(got) != 1 || got[0] != h.want {
				t.Errorf("backend got %s %q, want exactly [%q]", h.name, got, h.want)
			}
		})
	}
}

// Was a bug (hardening): header names spelled with underscores are passed
// through. CGI/WSGI/PHP-FPM backends map both X_Forwarded_For and
// X-Forwarded-For to HTTP_X_FORWARDED_FOR, so an untrusted client can forge
// the forwarding headers the gateway is meant to own. nginx drops such
// fields by default (underscores_in_headers off).
func TestReviewUnderscoreSpellingsOfForwardingHeadersAreNotForwarded(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	raw := "GET /echo/x HTTP/1.1\r\nHost: shop.example\r\nX_Forwarded_For: 6.6.6.6\r\n" +
		"X_Forwarded_Proto: https\r\nConnection: close\r\n\r\n"
	status, resp := rawExchange(t, s.Addr().String(), raw)
	if status == 400 {
		return // refusing is also acceptable
	}
	if status != 200 {
		t.Fatalf("status %d\n%.300s", status, resp)
	}
	rec := lastReceived(t, o)
	for _, name := range []string{"X_Forwarded_For", "X_Forwarded_Proto"} {
		if v := headerValues(rec, name); len(v) > 0 {
			t.Errorf("backend got %s %q from an untrusted peer", name, v)
		}
	}
}

// Was a bug: with merge_slashes: false and a strip_prefix equal to the route's
// prefix, "/svc//evil.example/x?u=http://y" becomes the upstream target
// "//evil.example/x?u=...". fasthttp's URI parser (uri.go parse ->
// splitHostURI, taken because the target is not origin-form and contains
// "://") reads "evil.example" as the authority: the backend receives
// Host: evil.example and target "/x?..." instead of what the router matched.
func TestReviewStripPrefixNeverTurnsThePathIntoAnAuthority(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: ""}
log: {level: error}
server: {merge_slashes: false}
pools:
  svc: {backends: [{addr: %s}]}
routes:
  - {name: svc, match: {path_prefix: /svc}, strip_prefix: /svc, pool: svc}
`, o.Addr())
	s := startGateway(t, yaml)
	before := o.Requests()
	status, _ := rawExchange(t, s.Addr().String(),
		"GET /svc//evil.example/x?u=http://y HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
	if status == 400 && o.Requests() == before {
		return // refusing is acceptable
	}
	rec := lastReceived(t, o) // the origin answers 404 for an unknown path; what it received matters
	if h, _ := rec.Get("Host"); h != "shop.example" {
		t.Errorf("backend got Host %q, want shop.example (the path became an authority)", h)
	}
	if !strings.HasPrefix(rec.RequestURI, "/") || strings.HasPrefix(rec.RequestURI, "/x") {
		t.Errorf("backend got target %q; the router matched /svc//evil.example/x", rec.RequestURI)
	}
}

// X-Forwarded-Host must name the authority the request was routed by. For
// an absolute-form request that is the URI authority, not the Host header
// (RFC 9112 §3.2.2), which the gateway also sends upstream as Host.
func TestReviewAbsoluteFormForwardedHostIsTheRoutingAuthority(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	status, resp := rawExchange(t, s.Addr().String(),
		"GET http://shop.example/echo/x HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
	if status != 200 {
		t.Fatalf("status %d\n%.300s", status, resp)
	}
	rec := lastReceived(t, o)
	host, _ := rec.Get("Host")
	xfh, _ := rec.Get("X-Forwarded-Host")
	if host != "shop.example" || xfh != "shop.example" {
		t.Errorf("backend got Host %q X-Forwarded-Host %q, want both shop.example", host, xfh)
	}
}

func TestReviewPipelinedRequestsAreAnsweredInOrderAndARefusalEndsTheConnection(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))

	t.Run("a valid request, a refused one and one after it", func(t *testing.T) {
		before := o.Requests()
		rc := reviewDial(t, s.Addr().String())
		rc.send(t, "GET /echo/first HTTP/1.1\r\nHost: a\r\n\r\n"+
			"GET /echo/%2Fsecond HTTP/1.1\r\nHost: a\r\n\r\n"+
			"GET /echo/third HTTP/1.1\r\nHost: a\r\n\r\n")
		r1, _ := rc.read(t, "GET")
		r2, _ := rc.read(t, "GET")
		if r1 == nil || r1.StatusCode != 200 {
			t.Fatalf("first response %v, want 200", r1)
		}
		if r2 == nil || r2.StatusCode != 400 {
			t.Fatalf("second response %v, want 400", r2)
		}
		if !rc.closedByPeer() {
			t.Error("connection not closed after the refusal")
		}
		if n := o.Requests() - before; n != 1 {
			t.Errorf("backend got %d requests, want 1", n)
		}
		if got := lastReceived(t, o).RequestURI; got != "/echo/first" {
			t.Errorf("backend got %q", got)
		}
	})

	t.Run("a smuggling attempt after a valid request", func(t *testing.T) {
		before := o.Requests()
		rc := reviewDial(t, s.Addr().String())
		rc.send(t, "GET /echo/a HTTP/1.1\r\nHost: a\r\n\r\n"+
			"POST /echo/b HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+
			"GET /echo/smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
		r1, _ := rc.read(t, "GET")
		r2, _ := rc.read(t, "POST")
		if r1 == nil || r1.StatusCode != 200 || r2 == nil || r2.StatusCode != 400 {
			t.Fatalf("responses %v %v, want 200 then 400", r1, r2)
		}
		if !rc.closedByPeer() {
			t.Error("connection not closed after the refusal")
		}
		if n := o.Requests() - before; n != 1 {
			t.Errorf("backend got %d requests, want 1", n)
		}
	})

	t.Run("many valid requests in one write keep their order", func(t *testing.T) {
		rc := reviewDial(t, s.Addr().String())
		var b strings.Builder
		for i := 1; i <= 10; i++ {
			fmt.Fprintf(&b, "GET /api/orders/%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		}
		rc.send(t, b.String())
		for i := 1; i <= 10; i++ {
			r, body := rc.read(t, "GET")
			if r == nil || r.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf(`"%d"`, i)) &&
				!strings.Contains(body, fmt.Sprintf(`:%d,`, i)) && !strings.Contains(body, fmt.Sprintf(`-%d"`, i)) {
				t.Fatalf("response %d: %v %q", i, r, body)
			}
		}
	})
}

// A backend's Connection: close concerns the backend connection: it must not
// be reused, and the client connection stays open.
func TestReviewBackendConnectionCloseKeepsTheClientConnection(t *testing.T) {
	rb := startRawBackend(t, func(n int64, _ string) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n%02d", n)
	})
	s := startGateway(t, gatewayYAML(rb.addr()))
	rc := reviewDial(t, s.Addr().String())
	for i := 1; i <= 3; i++ {
		rc.send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
		r, body := rc.read(t, "GET")
		if r == nil || r.StatusCode != 200 || body != fmt.Sprintf("%02d", i) {
			t.Fatalf("request %d: %v %q", i, r, body)
		}
		if r.Close {
			t.Fatalf("request %d: the client connection was closed because the backend's was", i)
		}
	}
	if c := rb.conns.Load(); c != 3 {
		t.Errorf("backend saw %d connections for 3 requests, want 3 (a closed one was reused)", c)
	}
}

// A backend response that cannot be framed unambiguously is a 502, never
// passed through (RFC 9112 §6.3).
func TestReviewAmbiguouslyFramedBackendResponsesAre502(t *testing.T) {
	tests := []struct{ name, resp string }{
		{"two different Content-Length fields", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
		{"a Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"},
		{"a negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello"},
		{"an unknown transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := startRawBackend(t, func(int64, string) string { return tt.resp })
			s := startGateway(t, gatewayYAML(rb.addr()))
			status, raw := rawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if status != 502 {
				t.Errorf("status %d, want 502\n%.300q", status, raw)
			}
		})
	}
}

// RFC 9112 §6.3 lets an intermediary forward a response with both
// Content-Length and Transfer-Encoding if it drops the length and re-frames
// by the chunked coding; the gateway does (fasthttp re-frames the buffered
// body). Pinned so that a change to 502 or to passing the bad length is seen.
func TestReviewContentLengthWithChunkedFromABackendIsReframed(t *testing.T) {
	rb := startRawBackend(t, func(int64, string) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	})
	s := startGateway(t, gatewayYAML(rb.addr()))
	status, raw := rawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if status == 502 {
		return
	}
	if status != 200 || !strings.Contains(raw, "Content-Length: 5\r\n") || !strings.HasSuffix(raw, "\r\n\r\nhello") {
		t.Errorf("status %d, want 502 or a re-framed 200\n%.300q", status, raw)
	}
}

func TestReviewInterimAndChunkedBackendResponsesAreDeliveredWhole(t *testing.T) {
	tests := []struct{ name, resp, want string }{
		{"103 Early Hints before the final response",
			"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", "final"},
		{"100 Continue before the final response",
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", "final"},
		{"chunked with trailers",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n", "abcde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := startRawBackend(t, func(int64, string) string { return tt.resp })
			s := startGateway(t, gatewayYAML(rb.addr()))
			rc := reviewDial(t, s.Addr().String())
			for i := 0; i < 2; i++ { // twice: the backend connection must be clean after it
				rc.send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
				r, body := rc.read(t, "GET")
				if r == nil || r.StatusCode != 200 || body != tt.want {
					t.Fatalf("request %d: %v %q, want 200 %q", i+1, r, body, tt.want)
				}
			}
		})
	}
}

// HEAD must return the headers a GET would, including Content-Length, and
// a backend that (wrongly) sends a body for HEAD must not poison the pool.
func TestReviewHeadResponsesKeepTheirLengthAndLeaveNoStrayBytes(t *testing.T) {
	rb := startRawBackend(t, func(n int64, head string) string {
		if strings.HasPrefix(head, "HEAD") {
			return "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nget-abc"
	})
	s := startGateway(t, gatewayYAML(rb.addr()))
	rc := reviewDial(t, s.Addr().String())
	rc.send(t, "HEAD /echo/x HTTP/1.1\r\nHost: a\r\n\r\nGET /echo/y HTTP/1.1\r\nHost: a\r\n\r\n")
	r1, _ := rc.read(t, "HEAD")
	if r1 == nil || r1.StatusCode != 200 || r1.Header.Get("Content-Length") != "7" {
		t.Fatalf("HEAD: %v, want 200 with Content-Length 7", r1)
	}
	r2, body := rc.read(t, "GET")
	if r2 == nil || body != "get-abc" {
		t.Fatalf("GET after HEAD: %v %q", r2, body)
	}
}

func TestReviewRequestTargetsAndBodiesReachTheBackendExactly(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))

	t.Run("the query string is passed byte for byte", func(t *testing.T) {
		q := "a=%2F%00%zz&b=c+d&&e=%E2%82%AC&f=/x?y//z&g=%2e%2E"
		status, raw := rawExchange(t, s.Addr().String(), "GET /echo/x?"+q+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if status != 200 {
			t.Fatalf("status %d\n%.300s", status, raw)
		}
		if got := lastReceived(t, o).RequestURI; got != "/echo/x?"+q {
			t.Errorf("backend got %q, want %q", got, "/echo/x?"+q)
		}
	})

	t.Run("a GET with a body keeps its body and length", func(t *testing.T) {
		status, raw := rawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
		if status != 200 {
			t.Fatalf("status %d\n%.300s", status, raw)
		}
		rec := lastReceived(t, o)
		if string(rec.Body) != "hello" {
			t.Errorf("backend got body %q", rec.Body)
		}
	})

	t.Run("Expect 100-continue is answered by the gateway and not forwarded", func(t *testing.T) {
		rc := reviewDial(t, s.Addr().String())
		rc.send(t, "POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		line, err := rc.br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("got %q %v, want 100 Continue", line, err)
		}
		if _, err := rc.br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		rc.send(t, "hello")
		r, _ := rc.read(t, "POST")
		if r == nil || r.StatusCode >= 500 {
			t.Fatalf("response %v", r)
		}
		rec := lastReceived(t, o)
		if v := headerValues(rec, "Expect"); len(v) != 0 || string(rec.Body) != "hello" {
			t.Errorf("backend got Expect %q body %q", v, rec.Body)
		}
	})

	t.Run("a non-ASCII X-Request-ID is replaced", func(t *testing.T) {
		status, raw := rawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nX-Request-ID: \xe2\x82\xac-1\r\nConnection: close\r\n\r\n")
		if status != 200 {
			t.Fatalf("status %d\n%.300s", status, raw)
		}
		if got, _ := lastReceived(t, o).Get("X-Request-ID"); got == "" || strings.Contains(got, "\xe2") {
			t.Errorf("backend got X-Request-ID %q", got)
		}
	})

	t.Run("an HTTP/1.0 client gets a length-framed answer to a chunked backend response", func(t *testing.T) {
		rb := startRawBackend(t, func(int64, string) string {
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
		})
		s := startGateway(t, gatewayYAML(rb.addr()))
		status, raw := rawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.0\r\nHost: a\r\n\r\n")
		if status != 200 || strings.Contains(strings.ToLower(raw), "transfer-encoding") || !strings.HasSuffix(raw, "abc") {
			t.Errorf("status %d response %q", status, raw)
		}
	})
}

// Requests in flight while the table is swapped must all be answered by a
// backend of one table or the other, never lost or mixed up. Passes without
// -race; was a bug under -race: Serve reads s.cfg (server.go:152-156) without
// s.mu while Reload writes it (server.go:201).
func TestReviewRequestsRacingAReloadAreNeverLost(t *testing.T) {
	a := startOrigin(t, bench.OriginOptions{Name: "a"})
	b := startOrigin(t, bench.OriginOptions{Name: "b"})
	ya, yb := gatewayYAML(a.Addr()), gatewayYAML(b.Addr())
	s := startGateway(t, ya)
	cfgA, cfgB := loadConfig(t, ya), loadConfig(t, yb)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &fasthttp.Client{}
			for i := 0; i < 60; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%d", w*1000+i+1)
				code, body, err := c.GetTimeout(nil, s.url("/api/orders/"+id), 5*time.Second)
				if err != nil || code != 200 || !bytes.Contains(body, []byte(id)) {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("id %s: %d %v %.100q", id, code, err, body))
				}
			}
		}(w)
	}
	for i := 0; i < 10; i++ {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgB
		}
		if err := s.Reload(cfg); err != nil {
			t.Fatalf("reload: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	close(stop)
	if n := bad.Load(); n > 0 {
		t.Errorf("%d requests failed during reloads; first: %v", n, firstErr.Load())
	}
}

// Was a bug: fasthttp's ResponseHeader.SetBytesV replaces only the first field,
// so a backend that sends two X-Request-ID fields has its second one reach
// the client beside the gateway's id (proxy.go exchange, last line).
func TestReviewResponseCarriesExactlyOneRequestID(t *testing.T) {
	rb := startRawBackend(t, func(int64, string) string {
		return "HTTP/1.1 200 OK\r\nX-Request-ID: b-1\r\nX-Request-ID: b-2\r\nContent-Length: 2\r\n\r\nok"
	})
	s := startGateway(t, gatewayYAML(rb.addr()))
	rc := reviewDial(t, s.Addr().String())
	rc.send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\nX-Request-ID: client-1\r\n\r\n")
	r, _ := rc.read(t, "GET")
	if r == nil {
		t.Fatal("no response")
	}
	if got := r.Header.Values("X-Request-ID"); len(got) != 1 || got[0] != "client-1" {
		t.Errorf("client got X-Request-ID %q, want exactly [client-1]", got)
	}
}

// Was a bug: the gateway strips Upgrade/Connection from requests, so a backend
// 101 Switching Protocols is never something the client asked for through
// the gateway. Passing it on tells the client (or a front proxy, which then
// tunnels the connection and stops inspecting it) that the connection has
// switched while the gateway keeps parsing it as HTTP. It should be a 502.
func TestReviewUnsolicitedSwitchingProtocolsIsABadGateway(t *testing.T) {
	rb := startRawBackend(t, func(n int64, _ string) string {
		if n == 1 {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	s := startGateway(t, gatewayYAML(rb.addr()))
	status, raw := rawExchange(t, s.Addr().String(),
		"GET /echo/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if status != 502 {
		t.Errorf("status %d, want 502\n%.300q", status, raw)
	}
	// After a 101 the backend connection speaks another protocol; it must
	// not go back to the pool for the next client's HTTP request.
	status, raw = rawExchange(t, s.Addr().String(), "GET /echo/y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if status != 200 {
		t.Fatalf("second request: status %d\n%.300q", status, raw)
	}
	if c := rb.conns.Load(); c != 2 {
		t.Errorf("the second request went over the upgraded backend connection (%d connections, want 2)", c)
	}
}

func TestReviewHostSpellingsRouteByTheNormalisedHost(t *testing.T) {
	s, _, _ := startShopGateway(t)
	tests := []struct {
		name, raw string
		status    int
		origin    string
	}{
		{"upper case host", "GET /x HTTP/1.1\r\nHost: SHOP.Example\r\n\r\n", 200, "shop"},
		{"trailing dot and port", "GET /x HTTP/1.1\r\nHost: shop.example.:8080\r\n\r\n", 200, "shop"},
		{"two trailing dots", "GET /x HTTP/1.1\r\nHost: shop.example..\r\n\r\n", 400, ""},
		{"https absolute form on a plain listener", "GET https://shop.example/x HTTP/1.1\r\nHost: other\r\n\r\n", 200, "shop"},
		{"absolute form with another port", "GET http://shop.example:9/x HTTP/1.1\r\nHost: other\r\n\r\n", 200, "shop"},
		{"absolute form with userinfo", "GET http://u@shop.example/x HTTP/1.1\r\nHost: other\r\n\r\n", 400, ""},
		{"percent-encoded host", "GET /x HTTP/1.1\r\nHost: sh%6fp.example\r\n\r\n", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := strings.Replace(tt.raw, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
			status, resp := rawExchange(t, s.Addr().String(), raw)
			// The synthetic origin answers 404 for /x; what matters is who answered.
			if tt.status == 400 {
				if status != 400 {
					t.Errorf("status %d, want 400\n%.300q", status, resp)
				}
				return
			}
			if !strings.Contains(resp, "X-Origin: "+tt.origin) {
				t.Errorf("status %d, want an answer from %s\n%.300q", status, tt.origin, resp)
			}
		})
	}
}

// PASSES today; pins a suspected crash. Shutdown closes the access log
// channel (server.go closeAccessLog) even when the drain deadline passed
// with requests still in flight (fasthttp's ShutdownWithContext returns
// ctx.Err() without waiting), and sets s.access = nil without
// synchronisation while handlers read it in finish. A handler that read
// s.access before the nil store and logs after close(a.lines) panics with
// "send on closed channel" outside the handler's recover. The window is
// narrow, so this test does not hit it; it runs in a child process so that
// if it ever does, only the child dies.
func TestReviewRequestsOutlivingTheDrainDeadlineDoNotCrash(t *testing.T) {
	if os.Getenv("SLUICE_REVIEW_CHILD") == "1" {
		reviewDrainChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReviewRequestsOutlivingTheDrainDeadlineDoNotCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SLUICE_REVIEW_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("child process failed: %v\n%.1500s", err, out)
	}
}

func reviewDrainChild(t *testing.T) {
	release := make(chan struct{})
	backend := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		<-release
		ctx.SetBodyString("late")
	})
	yaml := strings.Replace(gatewayYAML(backend), "log:", "access_log: {enabled: true}\nlog:", 1)
	var logBuf syncBuffer
	s, err := New(loadConfig(t, yaml), Options{Logger: discardLogger(), AccessLogOutput: &logBuf})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve() //nolint:errcheck
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &fasthttp.Client{}
		code, body, err := c.GetTimeout(nil, s.url("/echo/slow"), 5*time.Second)
		t.Logf("in-flight request: %d %q %v", code, body, err)
	}()
	time.Sleep(200 * time.Millisecond) // the request is now waiting on the backend
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = s.Shutdown(ctx) // the deadline passes with the request in flight
	cancel()
	close(release)
	<-done
	time.Sleep(100 * time.Millisecond) // let the handler finish and log
}

// Trailer fields a client sends after a chunked body are not part of the
// checked header section; they must not come out on the upstream request as
// header fields that the gateway owns, or duplicate them.
func TestReviewClientTrailersCannotForgeForwardingHeaders(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	raw := "POST /echo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
	status, resp := rawExchange(t, s.Addr().String(), raw)
	if status == 400 {
		t.Logf("refused: %.200q", resp)
		return
	}
	if status != 200 {
		t.Fatalf("status %d\n%.300s", status, resp)
	}
	rec := lastReceived(t, o)
	if v := headerValues(rec, "X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
		t.Errorf("backend got X-Forwarded-For %q, want [127.0.0.1]", v)
	}
	if v := headerValues(rec, "X-Request-ID"); len(v) != 1 {
		t.Errorf("backend got X-Request-ID %q, want one", v)
	}
	if string(rec.Body) != "hello" {
		t.Errorf("backend got body %q", rec.Body)
	}
}

// A space or a control byte in the query must not be copied onto the
// upstream request line, where a backend may split it differently (a space
// makes "/x?a HTTP/1.0" a target and a version). Refused with 400 today.
// (Non-ASCII bytes and '"<>\^`{|}' in the query ARE forwarded raw, unlike in
// the path; see the report.)
func TestReviewInvalidBytesInTheQueryAreRefused(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	for _, q := range []string{"a=b c", "a=b HTTP/1.0", "a=\x01", "a=\x7f", "a=\tb"} {
		t.Run(fmt.Sprintf("query %q", q), func(t *testing.T) {
			before := o.Requests()
			status, raw := rawExchange(t, s.Addr().String(), "GET /echo/x?"+q+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if n := o.Requests() - before; n != 0 {
				t.Errorf("status %d; backend received target %q, want the request refused", status, lastReceived(t, o).RequestURI)
				return
			}
			if status != 400 {
				t.Errorf("status %d, want 400\n%.200q", status, raw)
			}
		})
	}
}

// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
// framing; it must be refused and the connection closed.
func TestReviewTransferEncodingInHTTP10IsRefused(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	before := o.Requests()
	status, raw := rawExchange(t, s.Addr().String(),
		"POST /echo/x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if status != 400 || o.Requests() != before {
		t.Errorf("status %d, backend got %d requests; want 400 and none\n%.200q", status, o.Requests()-before, raw)
	}
}

// Was a bug: a request fasthttp cannot parse is answered by handleParseError,
// whose ctx has no request number yet (ctx.ID() is 0), so every such answer
// of one server carries the same generated id "<prefix>-0"; ids stop being
// unique exactly for the requests that most need explaining in the logs.
func TestReviewGeneratedRequestIDsAreUniqueForUnparsableRequests(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		status, raw := rawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
		if status != 400 {
			t.Fatalf("status %d\n%.200q", status, raw)
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get("X-Request-ID")
		if id == "" || seen[id] {
			t.Errorf("request %d got X-Request-ID %q, already used or empty", i+1, id)
		}
		seen[id] = true
	}
}
