package httpsafe

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	const post = "POST / HTTP/1.1\r\nHost: a.example\r\n"
	tests := []struct {
		name   string
		raw    string
		o      Options
		status int
	}{
		{"a plain GET passes", "GET /a?b=c HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n", Options{}, 0},
		{"a POST with Content-Length passes", post + "Content-Length: 3\r\n\r\nabc", Options{}, 0},
		{"a chunked POST passes", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", Options{}, 0},
		{"chunked in capitals passes", post + "transfer-encoding: CHUNKED\r\n\r\n0\r\n\r\n", Options{}, 0},
		{"HTTP/1.0 with Host passes", "GET / HTTP/1.0\r\nHost: a.example\r\n\r\n", Options{}, 0},
		{"an absolute-form request passes", "GET http://b.example/p HTTP/1.1\r\nHost: a.example\r\n\r\n", Options{}, 0},
		{"a header with a tab in its value passes", "GET / HTTP/1.1\r\nHost: a.example\r\nX-A: b\tc\r\n\r\n", Options{}, 0},
		{"a request-target at MaxURILength passes", "GET /" + strings.Repeat("a", 99) + " HTTP/1.1\r\nHost: a\r\n\r\n", Options{MaxURILength: 100}, 0},

		{"CONNECT is refused with 405", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", Options{}, 405},
		{"HTTP/2.0 in the request line is refused with 505", "GET / HTTP/2.0\r\nHost: a.example\r\n\r\n", Options{}, 505},
		{"HTTP/1.2 is refused with 505", "GET / HTTP/1.2\r\nHost: a.example\r\n\r\n", Options{}, 505},
		{"a request-target over MaxURILength is refused with 414", "GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\nHost: a\r\n\r\n", Options{MaxURILength: 100}, 414},
		{"OPTIONS * is refused", "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", Options{}, 400},
		{"a fragment is refused", "GET /a#b HTTP/1.1\r\nHost: a.example\r\n\r\n", Options{}, 400},
		{"Content-Length with chunked is refused", post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Options{}, 400},
		{"chunked with Content-Length is refused", post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", Options{}, 400},
		{"Transfer-Encoding identity is refused", post + "Transfer-Encoding: identity\r\n\r\n", Options{}, 400},
		{"an obs-folded header is refused", "GET / HTTP/1.1\r\nHost: a.example\r\nX-A: b\r\n\tc\r\n\r\n", Options{}, 400},
		{"a header name with a space is refused", post + "Content Length: 3\r\n\r\n", Options{}, 400},
		{"a bare LF is refused", "GET / HTTP/1.1\r\nHost: a.example\nX-A: b\r\n\r\n", Options{}, 400},
		{"a missing Host on HTTP/1.0 is refused", "GET / HTTP/1.0\r\n\r\n", Options{}, 400},
		{"userinfo in Host is refused", "GET / HTTP/1.1\r\nHost: u@a.example\r\n\r\n", Options{}, 400},
		{"an invalid Host is refused even with an absolute URI", "GET http://b.example/ HTTP/1.1\r\nHost: u@a\r\n\r\n", Options{}, 400},
		{"userinfo in an absolute URI is refused", "GET http://u@b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", Options{}, 400},
		{"a non-http absolute URI is refused", "GET ftp://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", Options{}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := parseRequest(t, tc.raw)
			st, why := Check(req, &tc.o)
			if st != tc.status {
				t.Fatalf("Check = %d (%q), want %d", st, why, tc.status)
			}
			if (st == 0) != (why == "") {
				t.Fatalf("status %d came with reason %q", st, why)
			}
		})
	}
}

// checkRawHeaders sees header sections fasthttp would refuse too; it must
// refuse them on its own, whatever fasthttp does.
func TestCheckRawHeaders(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		ok   bool
	}{
		{"an empty section passes", "", true},
		{"a single field passes", "Host: a\r\n\r\n", true},
		{"a duplicate Host is refused", "Host: a\r\nHOST: b\r\n\r\n", false},
		{"a duplicate Content-Length is refused", "Content-Length: 1\r\ncontent-length: 1\r\n\r\n", false},
		{"a non-numeric Content-Length is refused", "Content-Length: 1a\r\n\r\n", false},
		{"an empty Content-Length is refused", "Content-Length:\r\n\r\n", false},
		{"a duplicate Transfer-Encoding is refused", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"a coding list is refused", "Transfer-Encoding: gzip, chunked\r\n\r\n", false},
		{"a bare CR inside a value is refused", "X-A: a\rb\r\n\r\n", false},
		{"a NUL inside a value is refused", "X-A: a\x00b\r\n\r\n", false},
		{"DEL inside a value is refused", "X-A: a\x7fb\r\n\r\n", false},
		{"an empty name is refused", ": a\r\n\r\n", false},
		{"a line without colon is refused", "X-A\r\n\r\n", false},
		{"a name with a slash is refused", "X/A: b\r\n\r\n", false},
		{"an unterminated section is refused", "Host: a\r\n", false},
		{"a bare LF as the last line is refused", "Host: a\r\n\n", false},
		{"a folded continuation is refused", "Host: a\r\n b\r\n\r\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, why := checkRawHeaders([]byte(tc.raw))
			if (st == 0) != tc.ok {
				t.Fatalf("checkRawHeaders(%q) = %d %q, want ok=%v", tc.raw, st, why, tc.ok)
			}
		})
	}
}

func TestRawHasFieldFindsANameInAnyCaseAndNothingElse(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want bool
	}{
		{"the field as fasthttp spells it", "Host: a\r\nX-Forwarded-Host: b\r\n\r\n", true},
		{"the field in lower case", "Host: a\r\nx-forwarded-host: b\r\n\r\n", true},
		{"the field in upper case, first", "X-FORWARDED-HOST: b\r\nHost: a\r\n\r\n", true},
		{"the field with an empty value", "Host: a\r\nX-Forwarded-Host:\r\n\r\n", true},
		{"the field on the last line without its end", "Host: a\r\nX-Forwarded-Host: b", true},
		{"a space before the colon", "X-Forwarded-Host : b\r\n\r\n", true},
		{"a longer name that starts with it", "X-Forwarded-Hosts: b\r\n\r\n", false},
		{"a shorter name it starts with", "X-Forwarded: b\r\n\r\n", false},
		{"the name in another field's value", "X-Other: x-forwarded-host: b\r\n\r\n", false},
		{"the name as a whole line", "x-forwarded-host\r\n\r\n", false},
		{"no fields", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RawHasField([]byte(tt.raw), "x-forwarded-host"); got != tt.want {
				t.Errorf("RawHasField(%q) = %v, want %v", tt.raw, got, tt.want)
			}
		})
	}
}
