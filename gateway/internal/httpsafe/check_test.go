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
			st, why, _ := checkRawHeaders([]byte(tc.raw))
			if (st == 0) != tc.ok {
				t.Fatalf("checkRawHeaders(%q) = %d %q, want ok=%v", tc.raw, st, why, tc.ok)
			}
		})
	}
}

func TestCheckReportsTheFieldsItSaw(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Fields
	}{
		{"neither field", "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", 0},
		{"both, as fasthttp spells them", "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: r\r\nX-Forwarded-Host: b\r\n\r\n", FieldXRequestID | FieldXForwardedHost},
		{"both in other cases, one empty", "GET / HTTP/1.1\r\nx-request-ID:\r\nHost: a\r\nX-FORWARDED-HOST: b\r\n\r\n", FieldXRequestID | FieldXForwardedHost},
		{"twice", "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: r\r\nX-Request-Id: s\r\n\r\n", FieldXRequestID},
		{"names that only start or end like them", "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Ids: r\r\nX-Forwarded-Hos: b\r\nY-X-Request-Id: c\r\n\r\n", 0},
		{"a name in another field's value", "GET / HTTP/1.1\r\nHost: a\r\nX-Other: X-Request-Id: r\r\n\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := parseRequest(t, tt.raw)
			_, seen, st, why := CheckAppendAuthority(nil, req, &Options{})
			if st != 0 {
				t.Fatalf("refused: %d %s", st, why)
			}
			if seen != tt.want {
				t.Errorf("seen %b, want %b", seen, tt.want)
			}
		})
	}
}

// valueFaultByteByByte is valueFault without the eight-byte words.
func valueFaultByteByByte(v []byte) string {
	for _, c := range v {
		if c == '\r' {
			return reasonBareCR
		}
		if c < 0x20 && c != '\t' || c == 0x7f {
			return reasonHeaderValue
		}
	}
	return ""
}

func TestValueFaultFindsEveryByteAtEveryPosition(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for b := 0; b < 256; b++ {
				for _, fill := range []byte{'a', 0x80, 0xff, '\t', 0x7e, ' '} {
					v := make([]byte, 0, n)
					for range n {
						v = append(v, fill)
					}
					v[pos] = byte(b)
					if n > 2 && pos+1 < n && b%3 == 0 {
						v[n-1] = '\r' // a second fault after the first
					}
					if got, want := valueFault(v), valueFaultByteByByte(v); got != want {
						t.Fatalf("valueFault(%q) = %q, want %q", v, got, want)
					}
				}
			}
		}
	}
}
