package testnet

import (
	"strconv"
	"strings"
)

// RawCase is one request as bytes on a fresh connection, with the status the
// gateway must answer it with. Every case is refused: none may reach a
// backend, and the gateway must close the connection after answering.
type RawCase struct {
	Name string // reads as a sentence: "<what> is refused"
	Raw  string // sent as is on a new connection
	// Status is the answer the gateway must give (400, 405, 413, 414, 431
	// or 505).
	Status int
	// ByServer is true when fasthttp itself refuses the request (through
	// httpsafe.ErrorHandler) before any handler runs; false when Check,
	// AppendAuthority or AppendPath refuse it in the handler.
	ByServer bool
}

// The server settings MalformedRequests assumes: the fasthttp.Server's
// ReadBufferSize and MaxRequestBodySize, and the limit on the request-target
// that httpsafe.Check applies by default (httpsafe.DefaultMaxURILength; a
// test in httpsafe checks that the two agree).
//
// The case "a request line larger than the read buffer is refused" expects
// 414, which needs Server.SecureErrorLogMessage false (see
// httpsafe.ErrorHandler); with it true the answer is 431.
const (
	RawCaseReadBuffer   = 16 << 10
	RawCaseMaxBody      = 4 << 20
	RawCaseMaxURILength = 8 << 10
)

// MalformedRequests returns a fresh slice of malformed or unsafe requests for
// end-to-end tests of a server running httpsafe's Check, AppendAuthority and
// AppendPath (Options{MergeSlashes: true}) behind a fasthttp.Server
// configured as httpsafe's doc.go recommends (ErrorHandler, ReadBufferSize
// 16 KiB, MaxRequestBodySize 4 MiB): the httpsafe tests and the gateway's.
// Each request is complete, so no case waits for a timeout.
func MalformedRequests() []RawCase {
	const (
		get  = "GET / HTTP/1.1\r\nHost: a.example\r\n"
		post = "POST / HTTP/1.1\r\nHost: a.example\r\n"
	)
	longURI := "GET /" + strings.Repeat("a", RawCaseMaxURILength) + " HTTP/1.1\r\nHost: a.example\r\n\r\n"
	hugeURI := "GET /" + strings.Repeat("a", RawCaseReadBuffer+10) + " HTTP/1.1\r\nHost: a.example\r\n\r\n"
	hugeHeader := get + "X-Big: " + strings.Repeat("b", RawCaseReadBuffer+10) + "\r\n\r\n"
	return []RawCase{
		// Framing.
		{"Content-Length followed by Transfer-Encoding is refused", post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, false},
		{"Transfer-Encoding followed by Content-Length is refused", post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, false},
		{"two equal Content-Length headers are refused", post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, true},
		{"Content-Length headers differing in case are refused", post + "Content-Length: 3\r\ncontent-length: 4\r\n\r\nabcd", 400, true},
		{"a Content-Length list is refused", post + "Content-Length: 3, 3\r\n\r\nabc", 400, true},
		{"a signed Content-Length is refused", post + "Content-Length: +3\r\n\r\nabc", 400, true},
		{"a negative Content-Length is refused", post + "Content-Length: -1\r\n\r\n", 400, true},
		{"an overflowing Content-Length is refused", post + "Content-Length: 99999999999999999999999\r\n\r\n", 400, true},
		{"an empty Content-Length is refused", post + "Content-Length: \r\n\r\n", 400, true},
		{"Transfer-Encoding gzip, chunked is refused", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"Transfer-Encoding gzip (chunked not final) is refused with 400", post + "Transfer-Encoding: gzip\r\n\r\nhello", 400, true},
		{"Transfer-Encoding identity is refused", post + "Transfer-Encoding: identity\r\n\r\n", 400, false},
		{"Transfer-Encoding identity with Content-Length is refused", post + "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", 400, false},
		{"two Transfer-Encoding headers are refused", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"Transfer-Encoding on HTTP/1.0 is refused", "POST / HTTP/1.0\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"an obs-folded Transfer-Encoding is refused", post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400, false},
		{"an obs-folded Content-Length is refused", post + "Content-Length:\r\n 3\r\n\r\nabc", 400, false},
		{"obs-fold in any header is refused", get + "X-A: b\r\n c\r\n\r\n", 400, false},
		{"a header name with a space is refused", post + "Content Length: 3\r\n\r\nabc", 400, false},
		{"whitespace before the colon is refused", post + "Content-Length : 3\r\n\r\nabc", 400, true},
		{"a bare LF ending a header line is refused", "GET / HTTP/1.1\r\nHost: a.example\nX-A: b\r\n\r\n", 400, false},
		{"a bare CR in a header value is refused", get + "X-A: b\rc\r\n\r\n", 400, true},
		{"a NUL in a header value is refused", get + "X-A: b\x00c\r\n\r\n", 400, true},
		{"a chunk size that is not hex is refused", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, true},
		{"chunk data longer than its size is refused", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", 400, true},
		{"a Content-Length trailer is refused", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n", 400, true},
		{"CONNECT is refused", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 405, false},

		// Host and authority.
		{"a missing Host is refused", "GET / HTTP/1.1\r\n\r\n", 400, true},
		{"an empty Host is refused", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400, true},
		{"a missing Host on HTTP/1.0 is refused", "GET / HTTP/1.0\r\n\r\n", 400, false},
		{"two Host headers are refused", "GET / HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n", 400, true},
		{"a Host with a space is refused", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, true},
		{"userinfo in Host is refused", "GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n", 400, false},
		{"a Host with a port above 65535 is refused", "GET / HTTP/1.1\r\nHost: a.example:99999\r\n\r\n", 400, false},
		{"a Host with an empty port is refused", "GET / HTTP/1.1\r\nHost: a.example:\r\n\r\n", 400, false},
		{"a Host with a percent-encoded name is refused", "GET / HTTP/1.1\r\nHost: %61.example\r\n\r\n", 400, true},
		{"userinfo in an absolute URI is refused", "GET http://user:pw@b.example/p HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"an absolute URI with a non-http scheme is refused", "GET ftp://b.example/p HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},

		// Request line and target.
		{"an extra space in the request line is refused", "GET  / HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, true},
		{"an unknown protocol is refused", "GET / FOO/1.1\r\nHost: a.example\r\n\r\n", 400, true},
		{"HTTP/2.0 in an HTTP/1 request line is refused", "GET / HTTP/2.0\r\nHost: a.example\r\n\r\n", 505, false},
		{"a method with an invalid character is refused", "G@T / HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, true},
		{"asterisk-form outside OPTIONS is refused", "GET * HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, true},
		{"asterisk-form OPTIONS is refused", "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"a fragment in the request-target is refused", "GET /a#b HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},

		// Paths.
		{"an encoded slash is refused", "GET /admin%2Fx HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"an encoded slash at the end is refused", "GET /admin%2f HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"an encoded backslash is refused", "GET /admin%5C HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"a raw backslash is refused", "GET /admin\\ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"an encoded NUL is refused", "GET /admin%00 HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"an invalid percent-escape is refused", "GET /admin%zz HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"a truncated percent-escape is refused", "GET /admin%4 HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"a raw non-ASCII byte is refused", "GET /adm\xc3\xadn HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"a matrix parameter is refused", "GET /admin;x HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},
		{"a double quote in the path is refused", "GET /a\"b HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, false},

		// Limits.
		{"a request-target over MaxURILength is refused", longURI, 414, false},
		{"a request line larger than the read buffer is refused", hugeURI, 414, true},
		{"a header section larger than the read buffer is refused", hugeHeader, 431, true},
		{"a Content-Length over the body limit is refused", post + "Content-Length: " + strconv.Itoa(RawCaseMaxBody+1) + "\r\n\r\n", 413, true},
		{"a chunk over the body limit is refused", post + "Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(RawCaseMaxBody+1, 16) + "\r\n", 413, true},
	}
}
