package httpsafe

import (
	"strings"
	"testing"
)

func TestBareLFHead(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"GET / HTTP/1.1\nHost: a\n\n", true},
		{"GET / HTTP/1.1\n\n", true},
		{"GET / HTTP/1.0\n\r\n", false}, // no fields: fasthttp ends the head at the CRLF
		{"GET / HTTP/1.1\r\nHost: a\n\n", true},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", true},
		{"POST /x HTTP/1.0\nContent-Length: 2\n\nhi", true},
		// fasthttp finds the end itself; Check refuses the bare LF
		{"GET / HTTP/1.1\nHost: a\n\nX: b\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
		// not whole yet
		{"GET / HTTP/1.1\nHost: a\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", false},
		// not a request line: a body, a TLS record, a leading empty line
		{"a\n\nb\n\n", false},
		{"\r\nGET / HTTP/1.1\nHost: a\n\n", false},
		{"\x16\x03\x01\x02\x00\x01\n\n", false},
		{"hello world HTTP/x\n\n", false},
		{"", false},
	} {
		if got := BareLFHead([]byte(tc.in)); got != tc.want {
			t.Errorf("BareLFHead(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestABareLFHeadBehindWholeRequestsIsFound(t *testing.T) {
	for in, want := range map[string]bool{
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\nHost: a\n\n":     true,
		"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\n\n":  true,
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n":   false, // not whole yet
		"POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\na\n\nb":                false, // a body
		"POST /a HTTP/1.1\r\nContent-Length: 20\r\n\r\nx GET / HTTP/1.1\n\n": false,
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\n":                                 false,
		// Behind a body, framed by its Content-Length.
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\nHost: a\n\n":                                      true,
		"POST /a HTTP/1.1\r\ncontent-length:  3 \r\n\r\n\r\n\r\nGET /b HTTP/1.1\n\n":                                          true, // 3 bytes: "\r\n\r", then an empty line and a bare-LF head
		"POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\nGET /b HTTP/1.1\n\n":                                            true, // a body holding CRLFCRLF
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET /c HTTP/1.1\n\n": true,
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel":                                                                    false, // the body goes on
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello":                                                                  false,
		"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\n\n":                                  true, // behind a chunked body
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\n\n":                          false,
		"POST /a HTTP/1.1\r\nContent-Length: +5\r\n\r\nhelloGET /b HTTP/1.1\n\n":                                              false,
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: a\r\n":                                    false, // not whole yet
	} {
		if got := LookAtHead([]byte(in)).Next; (got == ErrBareLFHead) != want || want == (got == nil) {
			t.Errorf("LookAtHead(%q).Next = %v, want a bare-LF head: %v", in, got, want)
		}
	}
}

func TestLookAtHead(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		starts, bare, next bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false, false},
		{"POST /x HTTP/1.0\n", true, false, false}, // not whole yet
		{"GET / HTTP/1.1\nHost: a\n\n", true, true, false},
		{"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\nHost: a\n\n", true, false, true},
		{"POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\na\n\nb", true, false, false},
		{"GET / HTTP/1.1", false, false, false},        // the line has not ended
		{"cd", false, false, false},                    // a body's rest
		{"st: a\r\n\r\n", false, false, false},         // a head's rest
		{"\r\nGET / HTTP/1.1\r\n", true, false, false}, // empty lines before a request line are skipped
		{"\n\r\nGET / HTTP/1.1\nHost: a\n\n", true, true, false},
	} {
		look := LookAtHead([]byte(tc.in))
		starts, bare, next := look.Starts, look.Bare, look.Next != nil
		if starts != tc.starts || bare != tc.bare || next != tc.next || look.TrailerLF != -1 {
			t.Errorf("LookAtHead(%q) = %v, %v, %v; want %v, %v, %v", tc.in, starts, bare, next, tc.starts, tc.bare, tc.next)
		}
	}
}

// The walk reads Content-Length as fasthttp does, and never wraps: on a
// 32-bit build 4294967200 wrapped to a negative length and the slice that
// followed panicked, taking the gateway down.
func TestTheWalkReadsContentLengthsAsFasthttpDoes(t *testing.T) {
	const tail = "GET /b HTTP/1.1\nHost: a\n\n"
	for length, want := range map[string]bool{
		"00000000000000000005": true, // leading zeros, as fasthttp takes them
		"5":                    true,
		"4294967200":           false,
		"18446744073709551621": false, // 2^64+5
		"999999999999999":      false,
		"1000000000000000":     false, // 16 digits
	} {
		in := "POST /a HTTP/1.1\r\nContent-Length: " + length + "\r\n\r\nhello" + tail
		if got := LookAtHead([]byte(in)).Next != nil; got != want {
			t.Errorf("Content-Length %s: LookAtHead().Next = %v, want %v", length, got, want)
		}
	}
}

// A chunked body's trailer section ended by a bare LF: fasthttp takes it for
// a line end and reads what follows as a request, which a peer that ends
// lines only at CRLF reads as more trailer.
func TestLookAtHeadFindsABareLFInAChunkedTrailer(t *testing.T) {
	const head = "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	for body, want := range map[string]int{
		"0\r\n\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n":    len("0\r\n"),
		"5\r\nhello\r\n0\r\nX-A: b\n\nGET / HTTP/1.1\r\n\r\n": len("5\r\nhello\r\n0\r\nX-A: b"),
		"0\r\nX-A: b\r\n\nGET / HTTP/1.1\r\n\r\n":             len("0\r\nX-A: b\r\n"),
		"0\r\n\n":                                   len("0\r\n"),
		"0\r\n\r\nGET / HTTP/1.1\r\n\r\n":           -1, // well-formed, pipelined
		"5\r\nhe\nlo\r\n0\r\n\r\n":                  -1, // a bare LF in data is data
		"5;x=\"a\"\r\nhello\r\n0\r\nX-A: b\r\n\r\n": -1,
		"5\r\nhel":                                  -1, // still coming
		"0\n\n":                                     -1, // a bare LF size line: fasthttp refuses it
	} {
		lf := LookAtHead([]byte(head + body)).TrailerLF
		if want >= 0 {
			want += len(head)
		}
		if lf != want {
			t.Errorf("%q: trailerLF = %d, want %d", body, lf, want)
		}
	}
}

func TestALowerCaseMethodStartsAHead(t *testing.T) {
	if !BareLFHead([]byte("get / HTTP/1.1\nHost: a\n\n")) {
		t.Error("a bare-LF head with a lower-case method waits for read_timeout")
	}
	if BareLFHead([]byte("\n\n")) || BareLFHead([]byte("/ / HTTP/1.1\n\n")) || BareLFHead([]byte("{\"a\": 1} HTTP/1.1\n\n")) {
		t.Error("not a request line, taken for one")
	}
	// A method is a token: fasthttp takes "1POST" and "_POST" as methods.
	if !BareLFHead([]byte("1POST / HTTP/1.1\nHost: a\n\n")) || !BareLFHead([]byte("_POST / HTTP/1.1\nHost: a\n\n")) {
		t.Error("a bare-LF head with a method that does not begin with a letter waits for read_timeout")
	}
}

func TestLookAtHeadFindsBareCRLineEnds(t *testing.T) {
	for in, want := range map[string]bool{
		"GET / HTTP/1.1\rHost: a\r\r": true,
		"GET / HTTP/1.1\r":            false, // its LF may come next
		"GET / HTTP/1.1\r\n\r\n":      false,
		"\r\nGET / HTTP/1.1":          false,
		"hello\rworld":                true,
	} {
		if got := LookAtHead([]byte(in)).BareCR; got != want {
			t.Errorf("%q: BareCR = %v, want %v", in, got, want)
		}
	}
}

// The trailer look could be stepped around: by empty lines before the
// request line (fasthttp skips them), a method that does not begin with a
// letter, a head that ended a read exactly with its body in the next one
// (a Content-Length body was not counted, so the head behind it was not
// looked at). Each of these is found now.
func TestLookAtHeadFindsABareLFTrailerHoweverTheHeadBegins(t *testing.T) {
	const chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
	const smuggled = "\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, before := range []string{"", "\r\n", "\n", "\r\n\r\n\n"} {
		for _, method := range []string{"POST", "1POST", "_POST", "~POST", "!POST"} {
			in := before + strings.Replace(chunked, "POST", method, 1) + smuggled
			if got, want := LookAtHead([]byte(in)).TrailerLF, len(in)-len(smuggled); got != want {
				t.Errorf("%q: TrailerLF = %d, want %d", in, got, want)
			}
		}
	}
	look := LookAtHead([]byte("POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5\r\n\r\n"))
	if !look.Body.Active() {
		t.Error("a head with a Content-Length body still to come: the body is not watched")
	}
	if end, _ := look.Body.Feed([]byte("hello" + chunked)); end != 5 {
		t.Errorf("the body watch ends at %d, want 5", end)
	}
}

// A head that the bytes end inside is reported (Partial), for the caller to
// look at again with the rest; whole heads, bodies and refusals are not.
func TestLookAtHeadReportsAHeadThatGoesOn(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for in, want := range map[string]int{
		"POST / HT":                   0,
		"POST / HTTP/1.1\r\nHost: a":  0,
		"\r\nPOST / HTTP/1.1\r\n":     2,
		get + "POST / HTTP/1.1\r\nHo": len(get),
		get + "\r\nPOST":              len(get) + 2,
		get:                           len(get), // the next head begins after it
		get + "\r\n":                  len(get) + 2,
		get + get:                     2 * len(get),
		"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc": len("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
		"GET / HTTP/1.1\nHost: a\n\n":                     -1, // refused
		"GET / HTTP/1.1\rHost: a\r\r":                     -1, // refused
		"GET /x HTTP/1.1x\r\nHost: a\r\n":                 -1, // no request line: fasthttp refuses it
		"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc": -1, // a body
	} {
		if got := LookAtHead([]byte(in)).Partial; got != want {
			t.Errorf("LookAtHead(%q).Partial = %d, want %d", in, got, want)
		}
	}
}

// Bytes no request line can begin with are refused at once (fasthttp
// waited for a line end, then answered 408); bytes that may be a request
// still to come, or a body read at the wrong place, are not.
func TestLookAtHeadRefusesBytesThatCannotBeginARequest(t *testing.T) {
	for in, want := range map[string]bool{
		"\x16\x03\x01\x00\x05hello": true, // a TLS handshake on the plain port
		"\x00\x01":                  true,
		" GET / HTTP/1.1":           true,
		"\r\n\x80":                  true,
		"GET":                       false,
		"{\"a\": 1}":                false,
		"\r":                        false, // the start of an empty line
		"":                          false,
	} {
		if got := LookAtHead([]byte(in)).NotHTTP; got != want {
			t.Errorf("LookAtHead(%q).NotHTTP = %v, want %v", in, got, want)
		}
	}
	// Behind whole requests, the refusal is the next request's.
	const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for in, want := range map[string]error{
		get + "\x16\x03\x01":                       ErrNotHTTP,
		get + "GET /2 HTTP/1.1\rHost: a\r\r":       ErrBareCRHead,
		get + "GET /2 HTTP/1.1\nHost: a\n\n":       ErrBareLFHead,
		get + "\r\nGET /2 HTTP/1.1\nHost: a\n\n":   ErrBareLFHead,
		get + "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n": nil,
	} {
		if got := LookAtHead([]byte(in)).Next; got != want {
			t.Errorf("LookAtHead(%q).Next = %v, want %v", in, got, want)
		}
	}
}
