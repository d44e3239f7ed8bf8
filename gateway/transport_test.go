package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// What the gateway makes of the backend leg: responses framed in every way
// a backend may frame them (and some it must not), connections it must not
// reuse, retries and busy pools.

// answering adapts answer, which returns the whole answer to one request, to
// testnet.StartRawBackend. After an answer with "Connection: close" the
// backend closes the connection.
func answering(answer func(r testnet.RawRequest) string) func(net.Conn, testnet.RawRequest) {
	return func(c net.Conn, r testnet.RawRequest) {
		out := answer(r)
		if _, err := io.WriteString(c, out); err != nil || strings.Contains(out, "Connection: close") {
			_ = c.Close()
		}
	}
}

// A backend's Connection: close concerns the backend connection: it must not
// be reused, and the client connection stays open.
func TestBackendConnectionCloseKeepsTheClientConnection(t *testing.T) {
	rb := testnet.StartRawBackend(t, answering(func(r testnet.RawRequest) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n%02d", r.Seq)
	}))
	s := startGateway(t, gatewayYAML(rb.Addr))
	rc := testnet.Dial(t, s.Addr().String())
	for i := 1; i <= 3; i++ {
		rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
		r, body := rc.ReadResponse(t, "GET")
		if r.StatusCode != 200 || string(body) != fmt.Sprintf("%02d", i) {
			t.Fatalf("request %d: %v %q", i, r, body)
		}
		if r.Close {
			t.Fatalf("request %d: the client connection was closed because the backend's was", i)
		}
	}
	if c := rb.Conns(); c != 3 {
		t.Errorf("backend saw %d connections for 3 requests, want 3 (a closed one was reused)", c)
	}
}

// A backend response that cannot be framed unambiguously is a 502, never
// passed through (RFC 9112 §6.3).
func TestAmbiguouslyFramedBackendResponsesAre502(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, resp string }{
		{"two different Content-Length fields", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
		{"a Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"},
		{"a negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello"},
		{"an unknown transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello"},
		// fasthttp waits for a CRLFCRLF after these (a 504 at the timeout),
		// or ends the head there when one comes later, in the body.
		{"a head ended by a bare LF blank line", "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"},
		{"a bare LF line, then a CRLF blank line", "HTTP/1.1 200 OK\r\nContent-Length: 5\n\r\nhello"},
		{"a bare LF blank line before a CRLFCRLF in the body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\nab\r\n\r\ncd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string { return tt.resp }))
			s := startGateway(t, gatewayYAML(rb.Addr))
			status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if status != 502 {
				t.Errorf("status %d, want 502\n%.300q", status, raw)
			}
		})
	}
}

// RFC 9112 §6.3 lets an intermediary forward a response with both
// Content-Length and Transfer-Encoding if it drops the length and re-frames
// by the chunked coding; the gateway does: a chunked body that arrived whole
// is read and sent with its true length, one still arriving streams, chunked
// again. Pinned so that a change to 502 or to passing the bad length is seen.
// A status line ended by a bare LF and followed at once by a CRLF blank
// line is a head fasthttp reads, and the gateway passes it on.
func TestAStatusLineEndedByABareLFBeforeACRLFBlankLineIsRead(t *testing.T) {
	for _, resp := range []string{
		"HTTP/1.1 204 No Content\n\r\n",
		"HTTP/1.1 100 Continue\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	} {
		rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string { return resp }))
		s := startGateway(t, gatewayYAML(rb.Addr))
		if status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); status != 204 {
			t.Errorf("%q: status %d, want 204\n%.300q", resp, status, raw)
		}
	}
}

func TestContentLengthWithChunkedFromABackendIsReframed(t *testing.T) {
	rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	}))
	s := startGateway(t, gatewayYAML(rb.Addr))
	status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if status == 502 {
		return
	}
	buffered := strings.Contains(raw, "Content-Length: 5\r\n") && strings.HasSuffix(raw, "\r\n\r\nhello")
	rechunked := !strings.Contains(raw, "Content-Length") && strings.HasSuffix(raw, "\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if status != 200 || !buffered && !rechunked {
		t.Errorf("status %d, want 502 or a re-framed 200\n%.300q", status, raw)
	}
}

func TestInterimAndChunkedBackendResponsesAreDeliveredWhole(t *testing.T) {
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
			rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string { return tt.resp }))
			s := startGateway(t, gatewayYAML(rb.Addr))
			rc := testnet.Dial(t, s.Addr().String())
			for i := 0; i < 2; i++ { // twice: the backend connection must be clean after it
				rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
				r, body := rc.ReadResponse(t, "GET")
				if r.StatusCode == 103 { // forwarded (TestInterimResponsesAreForwarded)
					r, body = rc.ReadResponse(t, "GET")
				}
				if r.StatusCode != 200 || string(body) != tt.want {
					t.Fatalf("request %d: %v %q, want 200 %q", i+1, r, body, tt.want)
				}
			}
		})
	}
}

// HEAD must return the headers a GET would, including Content-Length, and
// a backend that (wrongly) sends a body for HEAD must not poison the pool.
func TestHeadResponsesKeepTheirLengthAndLeaveNoStrayBytes(t *testing.T) {
	rb := testnet.StartRawBackend(t, answering(func(r testnet.RawRequest) string {
		if strings.HasPrefix(r.Head, "HEAD") {
			return "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nget-abc"
	}))
	s := startGateway(t, gatewayYAML(rb.Addr))
	rc := testnet.Dial(t, s.Addr().String())
	rc.Send(t, "HEAD /echo/x HTTP/1.1\r\nHost: a\r\n\r\nGET /echo/y HTTP/1.1\r\nHost: a\r\n\r\n")
	r1, _ := rc.ReadResponse(t, "HEAD")
	if r1.StatusCode != 200 || r1.Header.Get("Content-Length") != "7" {
		t.Fatalf("HEAD: %v, want 200 with Content-Length 7", r1)
	}
	r2, body := rc.ReadResponse(t, "GET")
	if string(body) != "get-abc" {
		t.Fatalf("GET after HEAD: %v %q", r2, body)
	}
}

// Guards against: the gateway strips Upgrade/Connection from requests, so a backend
// 101 Switching Protocols is never something the client asked for through
// the gateway. Passing it on tells the client (or a front proxy, which then
// tunnels the connection and stops inspecting it) that the connection has
// switched while the gateway keeps parsing it as HTTP. It should be a 502.
func TestUnsolicitedSwitchingProtocolsIsABadGateway(t *testing.T) {
	rb := testnet.StartRawBackend(t, answering(func(r testnet.RawRequest) string {
		if r.Seq == 1 {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	s := startGateway(t, gatewayYAML(rb.Addr))
	status, raw := testnet.RawExchange(t, s.Addr().String(),
		"GET /echo/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if status != 502 {
		t.Errorf("status %d, want 502\n%.300q", status, raw)
	}
	// After a 101 the backend connection speaks another protocol; it must
	// not go back to the pool for the next client's HTTP request.
	status, raw = testnet.RawExchange(t, s.Addr().String(), "GET /echo/y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if status != 200 {
		t.Fatalf("second request: status %d\n%.300q", status, raw)
	}
	if c := rb.Conns(); c != 2 {
		t.Errorf("the second request went over the upgraded backend connection (%d connections, want 2)", c)
	}
}

// Guards against: fasthttp's ResponseHeader.SetBytesV replaces only the first field,
// so a backend that sends two X-Request-ID fields has its second one reach
// the client beside the gateway's id (proxy.go exchange, last line).
func TestResponseCarriesExactlyOneRequestID(t *testing.T) {
	rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
		return "HTTP/1.1 200 OK\r\nX-Request-ID: b-1\r\nX-Request-ID: b-2\r\nContent-Length: 2\r\n\r\nok"
	}))
	s := startGateway(t, gatewayYAML(rb.Addr))
	rc := testnet.Dial(t, s.Addr().String())
	rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\nX-Request-ID: client-1\r\n\r\n")
	r, _ := rc.ReadResponse(t, "GET")
	if got := r.Header.Values("X-Request-ID"); len(got) != 1 || got[0] != "client-1" {
		t.Errorf("client got X-Request-ID %q, want exactly [client-1]", got)
	}
}

func TestRetriesNeverResendANonIdempotentRequest(t *testing.T) {
	// Each backend reads the request and closes the connection without
	// answering.
	drop := func(c net.Conn, _ testnet.RawRequest) { _ = c.Close() }
	a := testnet.StartRawBackend(t, drop)
	b := testnet.StartRawBackend(t, drop)
	s := startGateway(t, gatewayYAML(a.Addr, b.Addr))

	t.Run("a POST that reached a backend is answered 502 and sent once", func(t *testing.T) {
		na, nb := a.Requests(), b.Requests()
		r := do(t, "POST", s.url("/api/orders"), `{"customer":"c"}`)
		if r.status != 502 {
			t.Errorf("status %d, want 502", r.status)
		}
		if got := a.Requests() - na + b.Requests() - nb; got != 1 {
			t.Errorf("backends received the POST %d times, want 1", got)
		}
	})
	t.Run("a GET is retried once on the other backend", func(t *testing.T) {
		na, nb := a.Requests(), b.Requests()
		r := do(t, "GET", s.url("/api/orders/1"), "")
		if r.status != 502 {
			t.Errorf("status %d, want 502", r.status)
		}
		if a.Requests()-na != 1 || b.Requests()-nb != 1 {
			t.Errorf("backends received the GET %d and %d times, want once each", a.Requests()-na, b.Requests()-nb)
		}
	})
}

func TestAllConnectionsBusyIsA504WithinTheTimeout(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{Fault: origin.FaultHang})
	yaml := strings.Replace(gatewayYAML(o.Addr()), "    timeout: 2s\n", "    timeout: 500ms\n    max_conns_per_backend: 1\n", 1)
	s := startGateway(t, yaml)
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	start := time.Now()
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = do(t, "GET", s.url("/api/orders/1"), "").status
		}()
	}
	wg.Wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("4 requests with a 500ms pool timeout took %v", took)
	}
	for i, st := range statuses {
		if st != 504 {
			t.Errorf("request %d: status %d, want 504", i, st)
		}
	}
}

// A response field whose name is not a token (fasthttp takes "X A: b" from a
// backend as a field named "X A") never reaches the client, on a proxied
// answer or one stored in the cache; the valid fields around it do.
func TestAResponseFieldNamedWithASpaceIsDropped(t *testing.T) {
	rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
		return "HTTP/1.1 200 OK\r\nX A: b\r\nX-Kept: 1\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok"
	}))
	s := startGateway(t, gatewayYAML(rb.Addr))
	for _, path := range []string{"/echo/x", "/echo/x"} {
		status, raw := testnet.RawExchange(t, s.Addr().String(), "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if status != 200 || strings.Contains(raw, "X A") || !strings.Contains(raw, "X-Kept: 1") {
			t.Fatalf("status %d, response\n%s\nwant 200 with X-Kept and without the field named \"X A\"", status, raw)
		}
	}
}

// The gateway speaks HTTP/1.1 to its clients whatever its backends speak
// (RFC 9110 §2.5). An HTTP/1.0 backend's close-delimited body goes to the
// client chunked; with the backend's HTTP/1.0 status line a client read
// the chunk framing as the body and then waited for a close.
func TestAnHTTP10BackendsResponseGoesOutAsHTTP11(t *testing.T) {
	rb := testnet.StartRawBackend(t, func(c net.Conn, _ testnet.RawRequest) {
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from an HTTP/1.0 backend")
		_ = c.Close()
	})
	s := startGateway(t, gatewayYAML(rb.Addr))
	rc := testnet.Dial(t, s.Addr().String())
	for i := range 2 { // the client connection stays usable
		rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
		r, body := rc.ReadResponse(t, "GET")
		if r.ProtoMinor != 1 || r.StatusCode != 200 || string(body) != "hello from an HTTP/1.0 backend" {
			t.Fatalf("request %d: %s %d, body %q", i, r.Proto, r.StatusCode, body)
		}
	}
}

// RFC 9110 §7.6.1: the fields a Connection option names are removed. A
// backend naming more than the gateway removes gets a 502, not a response
// with some left (or seconds of CPU spent removing them).
func TestAResponseNamingTooManyConnectionOptionsIs502(t *testing.T) {
	t.Parallel()
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("X-O%d", i))
	}
	head := "Connection: " + strings.Join(names, ",") + "\r\n" + strings.Join(names, ": v\r\n") + ": v\r\n"
	// Whole, and streamed (over buffer_response): either way the
	// backend's failure, counted against it.
	for _, body := range []string{"ok", strings.Repeat("b", 100<<10)} {
		rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
			return "HTTP/1.1 200 OK\r\n" + head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
		}))
		s := startGateway(t, gatewayYAML(rb.Addr))
		r := do(t, "GET", s.url("/echo/x"), "")
		if r.status != 502 {
			t.Fatalf("%d bytes: status %d, want 502", len(body), r.status)
		}
		if r.header.Get("X-O1") != "" {
			t.Errorf("%d bytes: a named field reached the client", len(body))
		}
		if n := s.table.Load().pools["orders"].pool.Backends()[0].FailStreak(); n != 1 {
			t.Errorf("%d bytes: %d failures counted against the backend, want 1", len(body), n)
		}
	}
}

// A request naming more fields in Connection than the gateway removes is
// refused before it reaches a backend (a 16 KiB head naming 540 fields took
// seconds of CPU to strip, and past 512 the rest went on).
func TestARequestNamingTooManyConnectionOptionsIs400(t *testing.T) {
	rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	s := startGateway(t, gatewayYAML(rb.Addr))
	var names []string
	for i := range 540 {
		names = append(names, fmt.Sprintf("Z%d", i))
	}
	rc := testnet.Dial(t, s.Addr().String())
	rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\nConnection: "+strings.Join(names, ",")+"\r\n"+
		strings.Join(names, ": v\r\n")+": v\r\n\r\n")
	if r, _ := rc.ReadResponse(t, "GET"); r.StatusCode != 400 {
		t.Fatalf("status %d, want 400", r.StatusCode)
	}
	if n := rb.Requests(); n != 0 {
		t.Fatalf("the backend got %d requests", n)
	}
}

// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
// framing. fasthttp drops the field from an HTTP/1.0 response and read the
// chunk framing as the body, which went to the client.
func TestAnHTTP10ResponseWithTransferEncodingIs502(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, resp string }{
		{"close-delimited", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"with a length", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ntransfer-encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"after an empty line", "\r\nHTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"after an interim response", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, func(c net.Conn, _ testnet.RawRequest) {
				_, _ = io.WriteString(c, tt.resp)
				_ = c.Close()
			})
			s := startGateway(t, gatewayYAML(rb.Addr))
			if r := do(t, "GET", s.url("/echo/x"), ""); r.status != 502 {
				t.Fatalf("status %d, body %q; want 502", r.status, r.body)
			}
		})
	}
}

// RFC 9110 §15: a status outside 100-599 is invalid; a client takes it as a
// 5xx. fasthttp read 000 as 200 and passed 600-999 on as they were. A
// version other than HTTP/1.x is not one an HTTP/1.1 connection carries
// (fasthttp read HTTP/2.0 as HTTP/1.0).
func TestAnInvalidBackendStatusIs502(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"HTTP/1.1 000 Odd", "HTTP/1.1 099 Odd", "HTTP/1.1 600 Odd", "HTTP/1.1 999 Odd",
		"HTTP/1.1  000 Two spaces", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 700 After an interim response",
		"HTTP/2.0 200 OK", "HTTP/0.9 200 OK", "HTTP/3 200 OK", "HTTP/1.1 100 Continue\r\n\r\nHTTP/2.0 200 After an interim response"} {
		t.Run(line, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
				return line + "\r\nContent-Length: 2\r\n\r\nok"
			}))
			s := startGateway(t, gatewayYAML(rb.Addr))
			if r := do(t, "GET", s.url("/echo/x"), ""); r.status != 502 {
				t.Fatalf("status %d, want 502", r.status)
			}
		})
	}
}

// RFC 9112 §5.1 lets a proxy remove whitespace between a field name and
// its colon, which fasthttp did: "Transfer-Encoding : chunked" framed the
// body as chunked over a valid Content-Length (and then waited for the
// chunks until the stream timeout), where a parser in front of the backend
// may not take it for Transfer-Encoding at all. nginx and HAProxy refuse
// such a response; so does the gateway, in a head that comes in pieces
// too. A " :" in a value, a reason phrase or an obs-fold continuation is
// no field name's.
func TestWhitespaceBeforeAColonInAResponseIs502(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		resp   []string // written in turn, a little apart
		status int
	}{
		{"Transfer-Encoding", []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello"}, 502},
		{"Content-Length", []string{"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello"}, 502},
		{"a tab", []string{"HTTP/1.1 200 OK\r\nContent-Length\t: 5\r\n\r\nhello"}, 502},
		{"any field", []string{"HTTP/1.1 200 OK\r\nX-Foo : bar\r\nContent-Length: 5\r\n\r\nhello"}, 502},
		{"in a later piece", []string{"HTTP/1.1 200 OK\r\nX-A: 1\r\n", "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello"}, 502},
		{"in an interim head", []string{"HTTP/1.1 103 Early Hints\r\nLink : </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"}, 502},
		{"in a value", []string{"HTTP/1.1 200 OK\r\nX-Note: a : b\r\nContent-Length: 5\r\n\r\nhello"}, 200},
		{"in the reason phrase", []string{"HTTP/1.1 200 OK :)\r\nContent-Length: 5\r\n\r\nhello"}, 200},
		{"in the body", []string{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nx :yz"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, func(c net.Conn, _ testnet.RawRequest) {
				for i, piece := range tt.resp {
					if i > 0 {
						time.Sleep(50 * time.Millisecond)
					}
					_, _ = io.WriteString(c, piece)
				}
			})
			s := startGateway(t, gatewayYAML(rb.Addr))
			if r := do(t, "GET", s.url("/echo/x"), ""); r.status != tt.status || tt.status == 200 && r.body != "hello" && r.body != "x :yz" {
				t.Fatalf("status %d, body %q; want %d", r.status, r.body, tt.status)
			}
		})
	}
}

// RFC 9110 §15.2: a proxy forwards 1xx responses (but those it asked for
// itself). A backend's 103 Early Hints reaches an HTTP/1.1 client before
// the final response, without its hop-by-hop fields; a 100 Continue (the
// gateway answers Expect itself) and anything for an HTTP/1.0 client do
// not. They were all dropped.
func TestInterimResponsesAreForwarded(t *testing.T) {
	const hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Request-Id: backends\r\n\r\n"
	rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+hints)
		time.Sleep(300 * time.Millisecond) // the final answer takes a while
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	s := startGateway(t, gatewayYAML(rb.Addr))

	rc := testnet.Dial(t, s.Addr().String())
	for round := range 2 { // the second on a kept-alive connection
		start := time.Now()
		rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
		_ = rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		early := readRawHead(t, rc.R)
		if took := time.Since(start); took > 250*time.Millisecond {
			t.Errorf("round %d: the interim response came after %v, with the final one", round, took)
		}
		if !strings.HasPrefix(early, "HTTP/1.1 103 ") || !strings.Contains(early, "Link: </style.css>; rel=preload") ||
			strings.Contains(early, "X-Hop") || strings.Contains(early, "Connection") || strings.Contains(early, "backends") {
			t.Fatalf("round %d: first head:\n%s\nwant the 103 with Link and without its hop-by-hop fields", round, early)
		}
		if r, body := rc.ReadResponse(t, "GET"); r.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("round %d: final response %d %q", round, r.StatusCode, body)
		}
	}

	// Pipelined, the second request's interim response could overtake the
	// first's final one, still in fasthttp's write buffer: it is dropped.
	pc := testnet.Dial(t, s.Addr().String())
	pc.Send(t, "GET /echo/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /echo/2 HTTP/1.1\r\nHost: a\r\n\r\n")
	// statuses reads heads until two final answers ("ok" each) have come.
	statuses := func(c *testnet.Conn) string {
		var got []string
		for finals := 0; finals < 2 && len(got) < 4; {
			status := readRawHead(t, c.R)[9:12]
			got = append(got, status)
			if status == "200" {
				finals++
				_, _ = io.ReadFull(c.R, make([]byte, 2)) // "ok"
			}
		}
		return strings.Join(got, " ")
	}
	if got := statuses(pc); got != "103 200 200" {
		t.Errorf("pipelined: statuses %v, want 103 200 200", got)
	}
	// The same when only the second request's body came in a read of its
	// own: fasthttp still held the first answer when the second's 103 came.
	pc = testnet.Dial(t, s.Addr().String())
	pc.Send(t, "GET /echo/1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo/2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
	time.Sleep(50 * time.Millisecond)
	pc.Send(t, "cd")
	if got := statuses(pc); got != "103 200 200" {
		t.Errorf("pipelined, the body apart: statuses %v, want 103 200 200", got)
	}

	old := testnet.Dial(t, s.Addr().String())
	old.Send(t, "GET /echo/x HTTP/1.0\r\nHost: a\r\n\r\n")
	if head := readRawHead(t, old.R); !strings.HasPrefix(head, "HTTP/1.1 200 ") {
		t.Fatalf("an HTTP/1.0 client got:\n%s\nwant the final response only", head)
	}
}

// An interim response goes out under a write deadline of its own: fasthttp
// sets one only for the final response, so the last response's, long past
// on a connection idle for longer than write_timeout, was in force, and
// under TLS the failed write broke the connection before the final answer.
func TestAnInterimResponseAfterAnIdleSpellReachesATLSClient(t *testing.T) {
	t.Parallel()
	rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, "x")
	// write_timeout 0 is none: the 103 must not get a deadline of now.
	for _, wt := range []string{"500ms", "0s"} {
		t.Run("write_timeout "+wt, func(t *testing.T) {
			interimAfterIdle(t, strings.Replace(gatewayYAML(rb.Addr), "log:",
				fmt.Sprintf("tls: {cert_file: %s, key_file: %s}\nserver: {write_timeout: %s}\nlog:", certFile, keyFile, wt), 1))
		})
	}
}

func interimAfterIdle(t *testing.T, yaml string) {
	s := startGateway(t, yaml)
	c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // self-signed test cert
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for round := range 2 {
		if round == 1 {
			time.Sleep(800 * time.Millisecond) // past the first response's write deadline
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if head := readRawHead(t, br); !strings.HasPrefix(head, "HTTP/1.1 103 ") {
			t.Fatalf("round %d: first head:\n%s", round, head)
		}
		if head := readRawHead(t, br); !strings.HasPrefix(head, "HTTP/1.1 200 ") {
			t.Fatalf("round %d: final head:\n%s", round, head)
		}
		_, _ = io.ReadFull(br, make([]byte, 2))
	}
}

// A backend that sends an interim response and then closes has answered:
// the request reached it, and a GET is not sent again as if the pooled
// connection had been closed before any byte (the keep-alive race).
func TestAnInterimResponseThenACloseIsNotResent(t *testing.T) {
	rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		if r.Index == 0 { // a first answer pools the connection: the race is a pooled one's
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
		_ = c.Close()
	})
	s := startGateway(t, gatewayYAML(rb.Addr))
	rc := testnet.Dial(t, s.Addr().String())
	rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
	if r, _ := rc.ReadResponse(t, "GET"); r.StatusCode != 200 {
		t.Fatalf("first request: %v", r)
	}
	rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
	if head := readRawHead(t, rc.R); !strings.HasPrefix(head, "HTTP/1.1 103 ") {
		t.Fatalf("first head:\n%s", head)
	}
	if head := readRawHead(t, rc.R); !strings.HasPrefix(head, "HTTP/1.1 502 ") {
		t.Fatalf("final head:\n%s\nwant 502", head)
	}
	if n := rb.Requests(); n != 2 {
		t.Errorf("the backend got %d requests, want 2 (the second once)", n)
	}
}

// A backend's reason phrase with a control character (an escape sequence
// for the terminal of whoever reads it, a NUL) is not passed on: the client
// gets the status code's own (RFC 9112 §4).
func TestAReasonPhraseWithControlCharactersIsReplaced(t *testing.T) {
	for _, reason := range []string{"\x1b[31mRED", "Bad\x00Gateway", "A\x7fB", "OK\tfine"} {
		rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
			return "HTTP/1.1 200 " + reason + "\r\nContent-Length: 2\r\n\r\nok"
		}))
		s := startGateway(t, gatewayYAML(rb.Addr))
		status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		line, _, _ := strings.Cut(raw, "\r\n")
		want := "HTTP/1.1 200 OK"
		if reason == "OK\tfine" {
			want = "HTTP/1.1 200 OK\tfine" // HTAB is allowed
		}
		if status != 200 || line != want {
			t.Errorf("reason %q: status line %q, want %q", reason, line, want)
		}
	}
}
