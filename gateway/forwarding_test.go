package gateway

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// What reaches the backend: the gateway owns the forwarding headers, and
// passes the request target and body through exactly.

// Guards against: fasthttp's SetBytesV/Set replace only the FIRST field of a name, so
// a second X-Forwarded-For (or -Proto, -Host, Via, X-Request-ID) sent by an
// untrusted client reaches the backend next to the gateway's value. Backends
// that join repeated fields ("127.0.0.1, 6.6.6.6") and take the right-most
// entry, or read the last X-Forwarded-Proto, are spoofed.
func TestDuplicateForwardingHeadersFromUntrustedPeersDoNotSurvive(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	raw := "GET /echo/x HTTP/1.1\r\nHost: shop.example\r\n" +
		"X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 6.6.6.6\r\n" +
		"X-Forwarded-Proto: http\r\nX-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Host: a.example\r\nX-Forwarded-Host: evil.example\r\n" +
		"Via: 1.1 a\r\nVia: 1.1 evil\r\n" +
		"X-Request-ID: id-1\r\nX-Request-ID: id-2\r\n" +
		"Connection: close\r\n\r\n"
	status, resp := testnet.RawExchange(t, s.Addr().String(), raw)
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
			got := rec.Values(h.name)
			if len(got) != 1 || got[0] != h.want {
				t.Errorf("backend got %s %q, want exactly [%q]", h.name, got, h.want)
			}
		})
	}
}

// Guards against (hardening): header names spelled with underscores are passed
// through. CGI/WSGI/PHP-FPM backends map both X_Forwarded_For and
// X-Forwarded-For to HTTP_X_FORWARDED_FOR, so an untrusted client can forge
// the forwarding headers the gateway is meant to own. nginx drops such
// fields by default (underscores_in_headers off).
func TestUnderscoreSpellingsOfForwardingHeadersAreNotForwarded(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	raw := "GET /echo/x HTTP/1.1\r\nHost: shop.example\r\nX_Forwarded_For: 6.6.6.6\r\n" +
		"X_Forwarded_Proto: https\r\nConnection: close\r\n\r\n"
	status, resp := testnet.RawExchange(t, s.Addr().String(), raw)
	if status == 400 {
		return // refusing is also acceptable
	}
	if status != 200 {
		t.Fatalf("status %d\n%.300s", status, resp)
	}
	rec := lastReceived(t, o)
	for _, name := range []string{"X_Forwarded_For", "X_Forwarded_Proto"} {
		if v := rec.Values(name); len(v) > 0 {
			t.Errorf("backend got %s %q from an untrusted peer", name, v)
		}
	}
}

// Trailer fields a client sends after a chunked body are not part of the
// checked header section; they must not come out on the upstream request as
// header fields that the gateway owns, or duplicate them.
func TestClientTrailersCannotForgeForwardingHeaders(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	raw := "POST /echo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
	status, resp := testnet.RawExchange(t, s.Addr().String(), raw)
	if status == 400 {
		t.Logf("refused: %.200q", resp)
		return
	}
	if status != 200 {
		t.Fatalf("status %d\n%.300s", status, resp)
	}
	rec := lastReceived(t, o)
	if v := rec.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
		t.Errorf("backend got X-Forwarded-For %q, want [127.0.0.1]", v)
	}
	if v := rec.Values("X-Request-ID"); len(v) != 1 {
		t.Errorf("backend got X-Request-ID %q, want one", v)
	}
	if string(rec.Body) != "hello" {
		t.Errorf("backend got body %q", rec.Body)
	}
}

// Nor do trailer fields of any other name reach the backend or the
// client: not merged into the header section (RFC 9110 §6.5.1), not a
// second value of a field the head has, not the request's id.
func TestClientTrailersAreNotMergedIntoTheHeaderSection(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	for _, announce := range []string{"", "Trailer: X-User, X-Request-Id, X-Sum\r\n"} {
		raw := "POST /echo/x HTTP/1.1\r\nHost: a\r\nX-User: alice\r\n" + announce + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"5\r\nhello\r\n0\r\nX-User: admin\r\nX-Request-Id: forged\r\nX-Sum: 5\r\n\r\n"
		status, resp := testnet.RawExchange(t, s.Addr().String(), raw)
		if status != 200 || strings.Contains(resp, "forged") {
			t.Fatalf("announced %q: status %d\n%.300s", announce, status, resp)
		}
		rec := lastReceived(t, o)
		if v := rec.Values("X-User"); len(v) != 1 || v[0] != "alice" {
			t.Errorf("announced %q: backend got X-User %q, want [alice]", announce, v)
		}
		if v := rec.Values("X-Request-Id"); len(v) != 1 || v[0] == "forged" {
			t.Errorf("announced %q: backend got X-Request-Id %q, want the gateway's", announce, v)
		}
		for _, name := range []string{"X-Sum", "Trailer"} {
			if v := rec.Values(name); len(v) != 0 {
				t.Errorf("announced %q: backend got %s %q", announce, name, v)
			}
		}
	}
}

// X-Forwarded-Host must name the authority the request was routed by. For
// an absolute-form request that is the URI authority, not the Host header
// (RFC 9112 §3.2.2), which the gateway also sends upstream as Host.
func TestAbsoluteFormForwardedHostIsTheRoutingAuthority(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	status, resp := testnet.RawExchange(t, s.Addr().String(),
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

// Guards against: with merge_slashes: false and a strip_prefix equal to the route's
// prefix, "/svc//evil.example/x?u=http://y" becomes the upstream target
// "//evil.example/x?u=...". fasthttp's URI parser (uri.go parse ->
// splitHostURI, taken because the target is not origin-form and contains
// "://") reads "evil.example" as the authority: the backend receives
// Host: evil.example and target "/x?..." instead of what the router matched.
func TestStripPrefixNeverTurnsThePathIntoAnAuthority(t *testing.T) {
	o := startOrigin(t, origin.Options{})
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
	status, _ := testnet.RawExchange(t, s.Addr().String(),
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

func TestRequestTargetsAndBodiesReachTheBackendExactly(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))

	t.Run("the query string is passed byte for byte", func(t *testing.T) {
		q := "a=%2F%00%zz&b=c+d&&e=%E2%82%AC&f=/x?y//z&g=%2e%2E"
		status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x?"+q+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if status != 200 {
			t.Fatalf("status %d\n%.300s", status, raw)
		}
		if got := lastReceived(t, o).RequestURI; got != "/echo/x?"+q {
			t.Errorf("backend got %q, want %q", got, "/echo/x?"+q)
		}
	})

	t.Run("a GET with a body keeps its body and length", func(t *testing.T) {
		status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
		if status != 200 {
			t.Fatalf("status %d\n%.300s", status, raw)
		}
		rec := lastReceived(t, o)
		if string(rec.Body) != "hello" {
			t.Errorf("backend got body %q", rec.Body)
		}
	})

	t.Run("Expect 100-continue is answered by the gateway and not forwarded", func(t *testing.T) {
		rc := testnet.Dial(t, s.Addr().String())
		rc.Send(t, "POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		line, err := rc.R.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("got %q %v, want 100 Continue", line, err)
		}
		if _, err := rc.R.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		rc.Send(t, "hello")
		r, _ := rc.ReadResponse(t, "POST")
		if r.StatusCode >= 500 {
			t.Fatalf("response %v", r)
		}
		rec := lastReceived(t, o)
		if v := rec.Values("Expect"); len(v) != 0 || string(rec.Body) != "hello" {
			t.Errorf("backend got Expect %q body %q", v, rec.Body)
		}
	})

	t.Run("a non-ASCII X-Request-ID is replaced", func(t *testing.T) {
		status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nX-Request-ID: \xe2\x82\xac-1\r\nConnection: close\r\n\r\n")
		if status != 200 {
			t.Fatalf("status %d\n%.300s", status, raw)
		}
		if got, _ := lastReceived(t, o).Get("X-Request-ID"); got == "" || strings.Contains(got, "\xe2") {
			t.Errorf("backend got X-Request-ID %q", got)
		}
	})

	t.Run("an HTTP/1.0 client gets a length-framed answer to a chunked backend response", func(t *testing.T) {
		rb := testnet.StartRawBackend(t, answering(func(testnet.RawRequest) string {
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
		}))
		s := startGateway(t, gatewayYAML(rb.Addr))
		status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.0\r\nHost: a\r\n\r\n")
		if status != 200 || strings.Contains(strings.ToLower(raw), "transfer-encoding") || !strings.HasSuffix(raw, "abc") {
			t.Errorf("status %d response %q", status, raw)
		}
	})
}

// A request body without a Content-Type reaches the backend without one:
// fasthttp would add application/octet-stream, and a proxy does not change
// what the client said about its content (RFC 9110 §8.3).
func TestABodyWithoutContentTypeGoesOnWithoutOne(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	for _, raw := range []string{
		"POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		"POST /echo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		if status, resp := testnet.RawExchange(t, s.Addr().String(), raw); status != 200 {
			t.Fatalf("status %d\n%.300s", status, resp)
		}
		rec := lastReceived(t, o)
		if v := rec.Values("Content-Type"); len(v) != 0 || string(rec.Body) != "hello" {
			t.Errorf("%q: backend got Content-Type %q and body %q, want none and hello", raw, v, rec.Body)
		}
	}
}

// A refused request is answered and the connection closed in stages
// (RFC 9112 §9.6): with the client's bytes unread (a header block over the
// limit), closing at once would send a reset, which can destroy the answer
// before the client has read it. The client reads the refusal and then the
// end of the stream, once it has stopped sending.
func TestARefusalIsFollowedByTheEndOfTheStreamNotAReset(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	for _, tt := range []struct {
		name, raw string
		status    int
	}{
		{"a header block over the limit", "GET /echo/x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 200<<10) + "\r\n\r\n", 431},
		{"a request line over the limit", "GET /echo/" + strings.Repeat("a", 200<<10) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"a body over the limit, unread", "POST /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(8<<20) + "\r\n\r\n" + strings.Repeat("c", 100<<10), 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := testnet.Dial(t, s.Addr().String())
			go func() { _, _ = rc.Conn.Write([]byte(tt.raw)) }() // the gateway answers before it has read it all
			r, _ := rc.ReadResponse(t, "GET")
			if r.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tt.status)
			}
			time.Sleep(50 * time.Millisecond) // a reset would have come by now
			_ = rc.Conn.(*net.TCPConn).CloseWrite()
			if _, err := io.Copy(io.Discard, rc.R); err != nil {
				t.Fatalf("after the refusal: %v, want the end of the stream", err)
			}
		})
	}
}

// Guards against: the fields by which proxies tell a backend about the
// client's request beyond X-Forwarded-For/Proto/Host (its port, prefix,
// scheme, original URL, address) went through from any client. Frameworks
// believe them: X-Original-URL bypasses path-based access rules in IIS and
// Symfony, X-Forwarded-Prefix and -Port end up in links and redirects, and
// a cache stores the result under a key that does not hold them. They are
// kept only from a trusted proxy, as X-Forwarded-For is.
func TestProxyOwnedFieldsComeOnlyFromTrustedProxies(t *testing.T) {
	var raw strings.Builder
	raw.WriteString("GET /echo/x HTTP/1.1\r\nHost: shop.example\r\n")
	for _, name := range proxyOwned {
		fmt.Fprintf(&raw, "%s: forged\r\n", strings.ToLower(name))
	}
	raw.WriteString("Connection: close\r\n\r\n")
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			o := startOrigin(t, origin.Options{})
			yaml := gatewayYAML(o.Addr())
			if trusted {
				yaml = strings.Replace(yaml, "log:", "server: {trusted_proxies: [127.0.0.1]}\nlog:", 1)
			}
			s := startGateway(t, yaml)
			if status, resp := testnet.RawExchange(t, s.Addr().String(), raw.String()); status != 200 {
				t.Fatalf("status %d\n%.300s", status, resp)
			}
			rec := lastReceived(t, o)
			for _, name := range proxyOwned {
				if got := rec.Values(name); trusted != (len(got) == 1) {
					t.Errorf("%s reached the backend as %q", name, got)
				}
			}
		})
	}
}

// scanRequestFields spells out proxyOwned in a switch: the two lists must
// agree.
func TestTheScanSeesEveryProxyOwnedField(t *testing.T) {
	for _, name := range proxyOwned {
		var h fasthttp.RequestHeader
		h.Set(name, "x")
		if f := scanRequestFields(&h); f.has&fieldProxyOwned == 0 {
			t.Errorf("the scan missed %s", name)
		}
	}
}

// A cache key part on a field the gateway sets or removes must not hold the
// client's value: the backend never sees it (from an untrusted peer), so an
// untrusted client could store an answer under the key a trusted proxy's
// requests use.
func TestFieldsTheGatewayReplacesAreKnown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted bool
		want    bool
	}{
		{"x-forwarded-prefix", false, true},
		{"x-forwarded-prefix", true, false},
		{"x-forwarded-for", false, true},
		{"x-real-ip", false, true},
		{"x-request-id", true, true}, // always the gateway's own
		{"x-tenant", false, false},
	} {
		if got := replacedForBackend([]byte(tc.name), tc.trusted); got != tc.want {
			t.Errorf("%s (trusted %v): replaced = %v, want %v", tc.name, tc.trusted, got, tc.want)
		}
	}
}
