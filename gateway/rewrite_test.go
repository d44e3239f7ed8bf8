package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// rewriteRequest deletes only the fields a scan of the header found, and
// it and assignRequestID do not look up fields check saw the head without. These
// tests hold it to the straightforward rewrite it replaced (referenceRewrite:
// delete every owned field, then set it, with fasthttp's own Del, Set and
// Peek): for any header, the upstream request must come out byte for byte
// the same, fields in the same order. Duplicates, spellings in other cases,
// empty values, Connection tokens naming owned fields, Trailer
// announcements and underscores are what the scan could get wrong.

// referenceRewrite is the field rewrite of rewriteRequest before the scan,
// kept as the specification of what it must do.
func referenceRewrite(rq *request) {
	h := &rq.ctx.Request.Header
	replace := func(name string, value []byte) {
		h.Del(name)
		h.SetBytesV(name, value)
	}
	if abs := absoluteAuthority(h.RequestURI()); abs != nil {
		h.SetHostBytes(abs)
	}
	httpsafe.StripRequestHopByHop(h)
	if !rq.trusted || len(h.Peek(hdrXFHost)) == 0 {
		replace(hdrXFHost, h.Host())
	}
	h.Del("Expect")
	if !h.IsHTTP11() {
		h.SetProtocol(protoHTTP11)
	}
	if !rq.table.allowUnderscores {
		httpsafe.DropUnderscoreFields(h)
	}
	var fwd []byte
	if rq.trusted && len(rq.chain) > 0 {
		fwd = append(append(fwd, rq.chain...), ", "...)
	}
	fwd = rq.peer.AppendTo(fwd)
	replace(hdrXFF, fwd)
	if !rq.trusted || len(h.Peek(hdrXFProto)) == 0 {
		h.Del(hdrXFProto)
		if rq.tls {
			h.Set(hdrXFProto, schemeHTTPS)
		} else {
			h.Set(hdrXFProto, schemeHTTP)
		}
	}
	fwd = fwd[:0]
	if rq.trusted {
		fwd, _ = appendFieldValues(fwd, h, []byte("via"))
		if len(fwd) > 0 {
			fwd = append(fwd, ", "...)
		}
	} else {
		h.Del(hdrForwarded)
	}
	fwd = append(fwd, viaThisHop...)
	replace(hdrVia, fwd)
	replace(hdrRequestID, rq.id)
}

// rewriteCase is one request and the circumstances it is rewritten under.
type rewriteCase struct {
	raw              string
	trusted, tls     bool
	allowUnderscores bool
}

// upstreamHeads returns the upstream request head rewriteRequest makes of
// c, and the one referenceRewrite makes; ok is false when Check would have
// refused the request (it never reaches the rewrite).
func upstreamHeads(t testing.TB, c rewriteCase) (got, want string, ok bool) {
	t.Helper()
	var id string
	run := func(rewrite func(*request), reference bool) (string, bool) {
		var ctx fasthttp.RequestCtx
		if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(c.raw))); err != nil {
			return "", false
		}
		if st, _ := httpsafe.Check(&ctx.Request, &httpsafe.Options{}); st != 0 {
			return "", false
		}
		rq := &request{
			ctx: &ctx, table: &Table{allowUnderscores: c.allowUnderscores}, route: &Route{},
			trusted: c.trusted, tls: c.tls, peer: netip.MustParseAddr("192.0.2.1"),
			path: []byte("/p"),
		}
		if c.trusted {
			rq.chain, _ = appendFieldValues(nil, &ctx.Request.Header, []byte("x-forwarded-for"))
		}
		if !reference {
			// What check learnt of the head, as check does it.
			_, seen, _, _ := httpsafe.CheckAppendAuthority(nil, &ctx.Request, &httpsafe.Options{})
			rq.absent = absentFields(&ctx.Request.Header, seen)
			(&Server{idPrefix: "gw-"}).assignRequestID(rq)
		} else {
			(&Server{idPrefix: "gw-"}).assignRequestID(rq) // with Peek, as before
		}
		id = string(rq.id)
		rewrite(rq)
		// Only the fields: the target and scheme are rewritten by code the
		// scan does not touch.
		return string(ctx.Request.Header.Header()[bytes.Index(ctx.Request.Header.Header(), []byte("\r\n")):]), true
	}
	got, ok = run(func(rq *request) { rq.srv.rewriteRequest(rq) }, false)
	if !ok {
		return "", "", false
	}
	gotID := id
	want, _ = run(referenceRewrite, true)
	if gotID != id {
		t.Errorf("request id %q, want %q (Peek)", gotID, id)
	}
	return got, want, true
}

func TestRewriteSetsTheSameFieldsAsDeletingEveryOwnedField(t *testing.T) {
	const head = "GET /p HTTP/1.1\r\nHost: shop.example\r\n"
	tests := []struct {
		name   string
		fields string
		body   string // a chunked body and its trailers, sent with POST
	}{
		{"a request with none of the owned fields", "User-Agent: t\r\nAccept: */*\r\n", ""},
		{"every owned field once", "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Host: a.example\r\nX-Forwarded-Proto: https\r\nVia: 1.1 a\r\nForwarded: for=1.1.1.1\r\nX-Request-Id: r1\r\nExpect: 100-continue\r\n", ""},
		{"every owned field twice", "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: a.example\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Proto: https\r\nVia: 1.1 a\r\nVia: 1.1 evil\r\nForwarded: for=1\r\nForwarded: for=2\r\nX-Request-Id: r1\r\nX-Request-Id: r2\r\n", ""},
		{"owned fields spelled in other cases", "x-forwarded-for: 1.1.1.1\r\nX-FORWARDED-HOST: a.example\r\nx-Forwarded-proto: https\r\nVIA: 1.1 a\r\nforwarded: for=1\r\nx-request-id: r1\r\nexpect: 100-continue\r\n", ""},
		{"an empty first copy before a full one", "X-Forwarded-Host:\r\nX-Forwarded-Host: b.example\r\nX-Forwarded-Proto:\r\nX-Forwarded-Proto: https\r\nVia:\r\nVia: 1.1 b\r\n", ""},
		{"a full first copy before an empty one", "X-Forwarded-Host: a.example\r\nX-Forwarded-Host:\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto:\r\n", ""},
		{"Connection naming owned fields", "Connection: X-Forwarded-Host, X-Forwarded-Proto, Via, X-Request-Id\r\nX-Forwarded-Host: a.example\r\nX-Forwarded-Proto: https\r\nVia: 1.1 a\r\nX-Request-Id: r1\r\n", ""},
		{"Connection: close and keep-alive", "Connection: close\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 1.1.1.1\r\n", ""},
		{"a Trailer announcing owned fields", "Trailer: Via, X-Request-Id\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 1.1.1.1\r\nVia: 1.1 a\r\nX-Request-Id: r1\r\n",
			"5\r\nhello\r\n0\r\nX-Request-Id: r9\r\nVia: 1.1 evil\r\n\r\n"},
		{"owned fields only in the trailers of a chunked body", "Transfer-Encoding: chunked\r\n",
			"5\r\nhello\r\n0\r\nVia: 1.1 evil\r\nX-Request-Id: r9\r\n\r\n"},
		{"X-Forwarded-Host among cookies, with other fields after it", "X-Forwarded-Host: a.example\r\nA: 1\r\nCookie: a=1\r\nB: 2\r\nExpect: 100-continue\r\nCookie: b=2\r\n", ""},
		{"X-Forwarded-Host before a last Cookie", "A: 1\r\nX-Forwarded-Host: a.example\r\nB: 2\r\nC: 3\r\nCookie: a=1\r\n", ""},
		{"two X-Forwarded-Proto behind an Expect", "Expect: 100-continue\r\nX-Forwarded-Proto:\r\nX-Forwarded-Proto: https\r\n", ""},
		{"underscore spellings", "X_Forwarded_For: 6.6.6.6\r\nX_Request_Id: r\r\nVia_: x\r\nX-Forwarded-For: 1.1.1.1\r\n", ""},
		{"hop-by-hop fields and an upgrade", "TE: trailers\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic x\r\nX-Forwarded-Proto: https\r\n", ""},
		{"a cookie and a user agent among the owned fields", "Cookie: a=1; b=2\r\nX-Forwarded-For: 1.1.1.1\r\nUser-Agent: t\r\nVia: 1.1 a\r\nContent-Type: text/plain\r\n", ""},
	}
	for _, tt := range tests {
		for _, trusted := range []bool{false, true} {
			for _, tls := range []bool{false, true} {
				for _, underscores := range []bool{false, true} {
					name := fmt.Sprintf("%s, trusted %v, tls %v, underscores allowed %v", tt.name, trusted, tls, underscores)
					t.Run(name, func(t *testing.T) {
						raw := head + tt.fields + "\r\n" + tt.body
						if tt.body != "" {
							raw = "POST" + strings.TrimPrefix(raw, "GET")
						}
						c := rewriteCase{raw: raw, trusted: trusted, tls: tls, allowUnderscores: underscores}
						got, want, ok := upstreamHeads(t, c)
						if !ok {
							t.Fatalf("request refused or unparsable:\n%s", c.raw)
						}
						if got != want {
							t.Errorf("upstream fields\n%s\nwant (every owned field deleted first)\n%s", got, want)
						}
					})
				}
			}
		}
	}
}

// Random headers drawn from the fields above, in any order and number, on
// HTTP/1.0 and 1.1, with and without a chunked body and its trailers.
func TestRewriteOfRandomHeadersMatchesDeletingEveryOwnedField(t *testing.T) {
	t.Parallel()
	names := []string{
		"X-Forwarded-For", "x-forwarded-for", "X-Forwarded-Host", "X-FORWARDED-HOST", "X-Forwarded-Proto",
		"x-forwarded-proto", "Via", "via", "Forwarded", "X-Request-Id", "X-Request-ID", "Expect", "Connection",
		"Keep-Alive", "Trailer", "TE", "Upgrade", "X_Forwarded_For", "X-Other", "User-Agent", "Cookie",
		"Content-Type", "Proxy-Authorization", "Accept",
	}
	values := []string{"", "1.1.1.1", "https", "1.1 a", "close", "keep-alive", "X-Forwarded-For, Via",
		"X-Request-Id", "X-Forwarded-Proto", "100-continue", "a=1", "x"}
	rnd := rand.New(rand.NewPCG(1, 2))
	checked := 0
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		version := "HTTP/1.1"
		if rnd.IntN(4) == 0 {
			version = "HTTP/1.0"
		}
		chunked := rnd.IntN(5) == 0
		method := "GET"
		if chunked {
			method = "POST"
		}
		fmt.Fprintf(&b, "%s /p HTTP/%s\r\nHost: shop.example\r\n", method, version[5:])
		for n := rnd.IntN(8); n > 0; n-- {
			fmt.Fprintf(&b, "%s: %s\r\n", names[rnd.IntN(len(names))], values[rnd.IntN(len(values))])
		}
		if chunked {
			b.WriteString("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n")
			if rnd.IntN(2) == 0 {
				fmt.Fprintf(&b, "%s: %s\r\n", names[rnd.IntN(3)], values[1])
			}
		}
		b.WriteString("\r\n")
		c := rewriteCase{raw: b.String(), trusted: rnd.IntN(2) == 0, tls: rnd.IntN(2) == 0, allowUnderscores: rnd.IntN(2) == 0}
		got, want, ok := upstreamHeads(t, c)
		if !ok {
			continue
		}
		checked++
		if got != want {
			t.Fatalf("request (trusted %v, tls %v, underscores %v)\n%s\nupstream fields\n%s\nwant\n%s", c.trusted, c.tls, c.allowUnderscores, c.raw, got, want)
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d of 3000 random requests passed Check; the generator is off", checked)
	}
}

// rewriteRequest keeps the client's target when it is the one to send
// instead of setting it again. The request fasthttp writes upstream must be
// the same as when the target is always set.
func TestUpstreamRequestIsTheSameWhetherOrNotTheTargetIsSetAgain(t *testing.T) {
	targets := []string{
		"/p", "/orders/42", "/p?a=1&&b=%41", "/p?", "/p?a=b?c", "/a/../b", "/a/./b", "/%41b", "/a%2Fb?x",
		"//x/y", "/a//b", "/p;x=1", "/caf%C3%A9?q=%20", "http://shop.example/p?q=1", "https://shop.example",
		"/api/orders/1?x=1", "/a%2Bb", "/a%3Fb?c", "/a%25b", "/a!$&'()*+,;=:@b", "/a%20b", "/%E2%82%AC", "/a%3Bb",
		"/a%2Cb%26c%3D", "/a%40b", "/a%7Bb",
	}
	for _, target := range targets {
		for _, tls := range []bool{false, true} {
			for _, strip := range []string{"", "/api"} {
				t.Run(fmt.Sprintf("%s tls %v strip %q", target, tls, strip), func(t *testing.T) {
					for _, hostClient := range []bool{true, false} {
						got := writeUpstream(t, target, tls, strip, hostClient, false)
						want := writeUpstream(t, target, tls, strip, hostClient, true)
						if got != want {
							t.Errorf("through the HostClient %v: upstream request\n%s\nwant (target set again)\n%s", hostClient, got, want)
						}
					}
				})
			}
		}
	}
}

// writeUpstream parses a request for target as the server does, rewrites
// it, and returns what fasthttp writes upstream, prepared as the HostClient
// does or, when hostClient is false, as is (the upgrade handshake and the
// pipelined transport write it themselves); setAgain sets the target
// whether or not rewriteRequest did.
func writeUpstream(t *testing.T, target string, tls bool, strip string, hostClient, setAgain bool) string {
	t.Helper()
	var ctx fasthttp.RequestCtx
	raw := "GET " + target + " HTTP/1.1\r\nHost: shop.example\r\n\r\n"
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	ctx.Request.URI() // the server parses the target before the handler runs
	o := &httpsafe.Options{MergeSlashes: true, AllowMatrixParams: true}
	rawPath, query := httpsafe.SplitRequestURI(ctx.Request.Header.RequestURI())
	path, st, why := httpsafe.AppendPath(nil, rawPath, o)
	if st != 0 {
		t.Skipf("refused: %s", why)
	}
	rq := &request{
		ctx: &ctx, table: &Table{}, route: &Route{stripPrefix: []byte(strip)}, tls: tls,
		peer: netip.MustParseAddr("192.0.2.1"), id: []byte("id"), path: path, query: query,
	}
	rq.srv.rewriteRequest(rq)
	if setAgain {
		ctx.Request.SetRequestURIBytes(rq.uri)
		if tls {
			u := ctx.Request.URI()
			u.SetScheme(schemeHTTP)
			u.DisablePathNormalizing = true
		}
	}
	if hostClient {
		ctx.Request.URI()                               // HostClient.doNonNilReqResp asks whether it is https
		ctx.Request.URI().DisablePathNormalizing = true // as the balancer's HostClient sets it
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := ctx.Request.Write(w); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return b.String()
}

// stripResponse skips the removals when a scan finds nothing to remove. The
// response the client gets must be the same as with both removals run.
func TestStripResponseRemovesWhatBothRemovalsRemove(t *testing.T) {
	names := []string{"Content-Type", "X-Request-Id", "x-request-id", "X-REQUEST-ID", "Connection", "connection",
		"Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Trailer", "TE", "X-Secret", "Set-Cookie",
		"Server", "Date", "Cache-Control", "X-Other", "X A", "X\"Q"}
	values := []string{"", "close", "keep-alive", "X-Secret", "x-request-id, X-Other", "r1", "a=1", "text/plain", "chunked"}
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\n")
		for n := rnd.IntN(7); n > 0; n-- {
			fmt.Fprintf(&b, "%s: %s\r\n", names[rnd.IntN(len(names))], values[rnd.IntN(len(values))])
		}
		b.WriteString("Content-Length: 2\r\n\r\nok")
		read := func() (*fasthttp.Response, bool) {
			resp := &fasthttp.Response{}
			resp.Header.DisableNormalizing() // as the balancer's HostClient reads it
			return resp, resp.Read(bufio.NewReader(strings.NewReader(b.String()))) == nil
		}
		got, ok := read()
		if !ok {
			continue
		}
		want, _ := read()
		if _, err := stripResponse(&got.Header); err != nil {
			t.Fatal(err)
		}
		if err := httpsafe.StripResponseHopByHop(&want.Header); err != nil {
			t.Fatal(err)
		}
		httpsafe.DelResponseField(&want.Header, "x-request-id")
		httpsafe.DropInvalidResponseFields(&want.Header)
		// String writes fasthttp's clock in Date, which may tick between
		// the two calls.
		if g, w := withoutDate(got.Header.String()), withoutDate(want.Header.String()); g != w {
			t.Fatalf("response\n%s\nstripped to\n%s\nwant\n%s", b.String(), g, w)
		}
		if got.ConnectionClose() != want.ConnectionClose() {
			t.Fatalf("response\n%s\nclose %v, want %v", b.String(), got.ConnectionClose(), want.ConnectionClose())
		}
	}
}

// The target goes upstream as the gateway normalised it, encoded octets
// kept, for a TLS client too and when the request is written without the
// HostClient (upgrade handshake, pipelined transport).
func TestUpstreamTargetKeepsEncodedOctets(t *testing.T) {
	// Not "/a%2Fb": an encoded slash is refused before any rewrite, and
	// writeUpstream skips a refused target (here, the whole test).
	for _, target := range []string{"/a%2Bb", "/a%2Cb?x", "/a%25b", "/a%3Fb?c"} {
		for _, tls := range []bool{false, true} {
			for _, hostClient := range []bool{true, false} {
				got := writeUpstream(t, target, tls, "", hostClient, false)
				if line := "GET " + target + " HTTP/1.1\r\n"; !strings.HasPrefix(got, line) {
					t.Errorf("%s, tls %v, HostClient %v: upstream request begins %q, want %q",
						target, tls, hostClient, strings.SplitN(got, "\r\n", 2)[0], line)
				}
			}
		}
	}
}

// A client's Connection naming X-Forwarded-Host removes the client's copy,
// never the gateway's own value (RFC 9110 §7.6.1: hop-by-hop fields are the
// sender's, and the gateway sets its X-Forwarded-* fields for the next hop).
func TestConnectionNamingXForwardedHostKeepsTheGatewaysValue(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		var ctx fasthttp.RequestCtx
		raw := "GET /p HTTP/1.1\r\nHost: shop.example\r\nConnection: X-Forwarded-Host\r\nX-Forwarded-Host: evil.example\r\n\r\n"
		if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
		path, _, _ := httpsafe.AppendPath(nil, []byte("/p"), &httpsafe.Options{})
		rq := &request{
			ctx: &ctx, table: &Table{}, route: &Route{}, trusted: trusted,
			peer: netip.MustParseAddr("192.0.2.1"), id: []byte("id"), path: path,
		}
		rq.srv.rewriteRequest(rq)
		if got := string(ctx.Request.Header.Peek(hdrXFHost)); got != "shop.example" {
			t.Errorf("trusted %v: X-Forwarded-Host = %q, want shop.example", trusted, got)
		}
	}
}

// withoutDate is a response head without its Date line.
func withoutDate(head string) string {
	lines := strings.SplitAfter(head, "\r\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(l, "Date: ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
