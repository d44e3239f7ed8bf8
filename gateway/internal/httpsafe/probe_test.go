package httpsafe

import (
	"fmt"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// probe records what a plain handler (no checks) sees of one request, to
// pin down what fasthttp v1.78.0 does before the handler runs. doc.go
// summarises these results; if a fasthttp upgrade changes them this test
// fails and the table and Check must be revisited.
type probe struct {
	mu   sync.Mutex
	seen string
}

func (p *probe) handler(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	st, _ := Check(&ctx.Request, &Options{})
	s := fmt.Sprintf("cl=%d host=%q urihost=%q check=%d body=%q", h.ContentLength(), h.Host(), ctx.URI().Host(), st, ctx.Request.Body())
	p.mu.Lock()
	p.seen = s
	p.mu.Unlock()
	ctx.Response.Header.Set("X-Handled", "1")
}

func (p *probe) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.seen
	p.seen = ""
	return s
}

func TestFasthttpProbe(t *testing.T) {
	p := &probe{}
	addr, _ := testnet.Start(t, newTestServer(p.handler)) // header names as sent

	const post = "POST / HTTP/1.1\r\nHost: a\r\n"
	tests := []struct {
		name string
		raw  string
		// status is fasthttp's answer through ErrorHandler, 0 when the
		// handler is reached.
		status int
		// seen is what the handler saw (only when status is 0).
		seen string
	}{
		{"a plain GET reaches the handler and passes Check", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0,
			`cl=-2 host="a" urihost="a" check=0 body=""`},
		{"Content-Length then chunked reaches the handler framed as chunked", post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0,
			`cl=0 host="a" urihost="a" check=400 body=""`},
		{"chunked then Content-Length reaches the handler framed as chunked", post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0,
			`cl=-1 host="a" urihost="a" check=400 body="abc"`},
		{"duplicate Content-Length is refused by fasthttp", post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, ""},
		{"a Content-Length list is refused by fasthttp", post + "Content-Length: 3, 3\r\n\r\nabc", 400, ""},
		{"Transfer-Encoding gzip, chunked is refused by fasthttp", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"Transfer-Encoding identity is dropped silently by fasthttp", post + "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", 0,
			`cl=3 host="a" urihost="a" check=400 body="abc"`},
		{"Transfer-Encoding Chunked in capitals is chunked", post + "Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0,
			`cl=-1 host="a" urihost="a" check=0 body="abc"`},
		{"duplicate Transfer-Encoding is refused by fasthttp", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"obs-fold in Transfer-Encoding is joined by fasthttp", post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 0,
			`cl=0 host="a" urihost="a" check=400 body=""`},
		{"obs-fold in Content-Length is joined by fasthttp", post + "Content-Length:\r\n 3\r\n\r\nabc", 0,
			`cl=3 host="a" urihost="a" check=400 body="abc"`},
		{"a space inside a header name is kept as an ordinary field", post + "Content Length: 3\r\n\r\n", 0,
			`cl=0 host="a" urihost="a" check=400 body=""`},
		{"a space before the colon is refused by fasthttp", post + "Content-Length : 3\r\n\r\nabc", 400, ""},
		{"a bare LF line ending is accepted by fasthttp", "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 0,
			`cl=-2 host="a" urihost="a" check=400 body=""`},
		{"a bare LF ending the request line is accepted and invisible to Check", "GET / HTTP/1.1\nHost: a\r\n\r\n", 0,
			`cl=-2 host="a" urihost="a" check=0 body=""`},
		{"a bare CR is refused by fasthttp", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400, ""},
		{"a NUL in a value is refused by fasthttp", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400, ""},
		{"duplicate Host is refused by fasthttp", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, ""},
		{"a missing Host on HTTP/1.1 is refused by fasthttp", "GET / HTTP/1.1\r\n\r\n", 400, ""},
		{"a missing Host on HTTP/1.0 reaches the handler", "GET / HTTP/1.0\r\n\r\n", 0,
			`cl=-2 host="" urihost="" check=400 body=""`},
		{"userinfo in Host reaches the handler and fasthttp's URI drops it", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 0,
			`cl=-2 host="u@a" urihost="a" check=400 body=""`},
		{"an absolute URI's authority wins over Host in fasthttp's URI", "GET http://B.example:81/p HTTP/1.1\r\nHost: a\r\n\r\n", 0,
			`cl=-2 host="a" urihost="b.example:81" check=0 body=""`},
		{"userinfo in an absolute URI reaches the handler", "GET http://u:p@b/p HTTP/1.1\r\nHost: a\r\n\r\n", 0,
			`cl=-2 host="a" urihost="b" check=400 body=""`},
		{"CONNECT reaches the handler", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 0,
			`cl=0 host="a:443" urihost="a:443" check=405 body=""`},
		{"OPTIONS * reaches the handler", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0,
			`cl=0 host="a" urihost="a" check=400 body=""`},
		{"HTTP/2.0 in the request line reaches the handler", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 0,
			`cl=-2 host="a" urihost="a" check=505 body=""`},
		{"a Host with a space is refused by fasthttp's URI parse", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ""},
		{"an oversized Content-Length is refused by fasthttp with 413", post + "Content-Length: 5000000\r\n\r\n", 413, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sendRaw(t, addr, tc.raw, false)
			seen := p.take()
			if tc.status == 0 {
				if !r.handled {
					t.Fatalf("fasthttp answered %d (%s), want the handler to run", r.status, r.body)
				}
				if seen != tc.seen {
					t.Errorf("handler saw\n  %s\nwant\n  %s", seen, tc.seen)
				}
				return
			}
			if r.handled || seen != "" {
				t.Fatalf("handler ran (saw %s), want fasthttp to answer %d", seen, tc.status)
			}
			if r.status != tc.status {
				t.Errorf("fasthttp answered %d, want %d", r.status, tc.status)
			}
		})
	}
}
