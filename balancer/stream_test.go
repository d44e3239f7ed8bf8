package balancer

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// doStream sends GET path with StreamBody set and returns the response;
// the caller closes it (ReleaseResponse closes the stream).
func doStream(t *testing.T, b *Backend, path string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://" + b.Addr() + path)
	resp := fasthttp.AcquireResponse()
	resp.StreamBody = true
	if err := b.Do(req, resp, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

func TestBackendStreamsOnlyLargeOrUnknownLengthBodies(t *testing.T) {
	large := strings.Repeat("L", 100<<10)
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		switch r.Path {
		case "/small":
			_, _ = io.WriteString(w, testnet.OKResponse("small"))
		case "/large":
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 102400\r\n\r\n"+large)
		case "/chunked":
			// Extensions, a bare-LF size line and trailers, all legal.
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"3;ext=1\r\nabc\r\n2\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
		case "/chunked-whole":
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
		case "/chunked-later":
			// The last chunk comes after the head was read: a stream.
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
			time.Sleep(50 * time.Millisecond)
			_, _ = io.WriteString(w, "2\r\nde\r\n0\r\n\r\n")
		}
	})
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)
	for _, tc := range []struct {
		path, want string
		streamed   bool
	}{
		{"/small", "small", false},
		{"/large", large, true},
		{"/chunked", "abcde", true},        // bare LF and trailers: left to the stream's reader
		{"/chunked-whole", "abcde", false}, // arrived whole with its head: read at once
		{"/chunked-later", "abcde", true},
		{"/small", "small", false},
	} {
		resp := doStream(t, b, tc.path)
		if resp.IsBodyStream() != tc.streamed {
			t.Fatalf("%s: streamed %v, want %v", tc.path, resp.IsBodyStream(), tc.streamed)
		}
		var body []byte
		if tc.streamed {
			var err error
			if body, err = io.ReadAll(resp.BodyStream()); err != nil {
				t.Fatalf("%s: %v", tc.path, err)
			}
		} else {
			body = resp.Body()
		}
		if string(body) != tc.want {
			t.Fatalf("%s: body %.40q, want %.40q", tc.path, body, tc.want)
		}
		fasthttp.ReleaseResponse(resp) // closes the stream: the connection goes back
	}
	if n := rb.Conns(); n != 1 {
		t.Fatalf("%d connections for six whole bodies, want 1", n)
	}
}

func TestAStreamThatIsNotReadToItsEndClosesItsConnection(t *testing.T) {
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"+strings.Repeat("x", 200000))
	})
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)
	resp := doStream(t, b, "/a")
	if _, err := io.ReadFull(resp.BodyStream(), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	fasthttp.ReleaseResponse(resp)
	resp = doStream(t, b, "/b")
	if _, err := io.ReadAll(resp.BodyStream()); err != nil {
		t.Fatal(err)
	}
	fasthttp.ReleaseResponse(resp)
	if n := rb.Conns(); n != 2 {
		t.Fatalf("%d connections, want 2: a half-read stream's connection must not be reused", n)
	}
}

func TestABrokenStreamIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      error
	}{
		{"short", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("s", 70000), ErrShortBody},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nq\r\n", ErrBrokenChunked},
		{"chunk too long", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", ErrBrokenChunked},
		{"no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", ErrShortBody},
		{"over max_response_body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"20000\r\n" + strings.Repeat("m", 0x20000) + "\r\n0\r\n\r\n", ErrBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
				// The head alone first: a body whose framing is broken in
				// the bytes that came with the head is refused before the
				// stream starts (the next test).
				head, body, _ := strings.Cut(tc.raw, "\r\n\r\n")
				_, _ = io.WriteString(w, head+"\r\n\r\n")
				time.Sleep(50 * time.Millisecond)
				_, _ = io.WriteString(w, body)
				_ = w.Close()
			})
			o := testOptions()
			o.MaxResponseBody = 100 << 10
			b := NewBackend(rb.Addr, 1, o)
			t.Cleanup(b.Close)
			resp := doStream(t, b, "/")
			defer fasthttp.ReleaseResponse(resp)
			n, err := io.Copy(io.Discard, resp.BodyStream())
			if !errors.Is(err, tc.want) {
				t.Fatalf("read %d bytes, error %v, want %v", n, err, tc.want)
			}
			if n > o.MaxResponseBody {
				t.Fatalf("%d bytes passed, more than max_response_body", n)
			}
		})
	}
}

// A chunked body whose framing has gone wrong in the bytes that came with
// its head is refused before the head goes on: the client gets a 502, not
// a 200 that breaks off (HAProxy answers 502 too).
func TestABrokenChunkFramingWithTheHeadFailsTheExchange(t *testing.T) {
	rb := testnet.StartRawBackend(t, func(w net.Conn, _ testnet.RawRequest) {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n")
	})
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://" + b.Addr() + "/")
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	resp.StreamBody = true
	if err := b.Do(req, resp, time.Now().Add(5*time.Second)); !errors.Is(err, ErrBrokenChunked) {
		t.Fatalf("error %v, want ErrBrokenChunked", err)
	}
}

// A chunk framing that has already gone wrong is an error when the bytes
// that show it come, not when its line ends: with the backend silent after
// them, the read waited for the stream timeout (a minute by default), the
// client's answer cut short only then.
func TestABrokenChunkFramingIsAnErrorAtOnce(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"not a size", "hello"},
		{"a size too large", "5" + strings.Repeat("0", 200)},
		{"a control byte in an extension", "5;a=\x01"},
		{"an empty size line", "\r"},
		{"data longer than its size", "3\r\nabcdef"},
		{"a bare CR after the data", "3\r\nabc\rx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hold := make(chan struct{})
			rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				time.Sleep(50 * time.Millisecond) // the head goes on alone (see the next test)
				_, _ = io.WriteString(w, tc.body)
				<-hold // then silence, the connection open
			})
			t.Cleanup(func() { close(hold) }) // before the backend's own cleanup, which waits for this
			o := testOptions()
			o.StreamTimeout = 10 * time.Second
			b := NewBackend(rb.Addr, 1, o)
			t.Cleanup(b.Close)
			resp := doStream(t, b, "/")
			defer fasthttp.ReleaseResponse(resp)
			start := time.Now()
			_, err := io.Copy(io.Discard, resp.BodyStream())
			if !errors.Is(err, ErrBrokenChunked) {
				t.Fatalf("error %v, want ErrBrokenChunked", err)
			}
			if took := time.Since(start); took > o.StreamTimeout/2 {
				t.Fatalf("the error came after %v, with the stream timeout", took)
			}
		})
	}
}

// The checks on an unfinished line refuse nothing a valid line can begin
// with.
func TestPartialChunkLinesThatMayStillBeValidPass(t *testing.T) {
	for _, b := range []string{"", "5", "5\r", "a;", "5 ", "5;name=\"va", "5\t;x", "fffffffff"} {
		if err := partialChunkSize([]byte(b)); err != nil {
			t.Errorf("size line %q: %v", b, err)
		}
	}
	for _, b := range []string{"", "\r", "\n", "\r\n"} {
		if err := partialCRLF([]byte(b)); err != nil {
			t.Errorf("after data %q: %v", b, err)
		}
	}
}

func TestChunkedBodyBufferedSeesOnlyWholeBodiesWithinTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		limit      int64
		want       bool
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", 64, true},
		{"extensions", "3;a=b\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 64, true},
		{"bare LF", "3\nabc\r\n0\r\n\r\n", 64, false},
		{"trailers", "3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", 64, false},
		{"upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", 64, true},
		{"no last chunk yet", "5\r\nhello\r\n", 64, false},
		{"end unfinished", "5\r\nhello\r\n0\r\n", 64, false},
		{"data cut short", "5\r\nhel", 64, false},
		{"chunk longer than its size", "3\r\nabcdef\r\n0\r\n\r\n", 64, false},
		{"bad size", "q\r\nabc\r\n0\r\n\r\n", 64, false},
		{"size overflows", "fffffffffffffffff\r\n", 64, false},
		{"whitespace in a size line: left to the stream", "3 ;a=b\r\nabc\r\n0\r\n\r\n", 64, false},
		{"over the limit", "5\r\nhello\r\n0\r\n\r\n", 8, false},
		{"nothing", "", 64, false},
	} {
		br := bufio.NewReader(strings.NewReader(tc.body))
		_, _ = br.Peek(1) // fill the buffer, as reading the head does
		if got := chunkedBodyBuffered(br, tc.limit); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseChunkSize(t *testing.T) {
	for line, want := range map[string]int64{
		"5": 5, "1a": 26, "5;name=value": 5, "5 ;name": 5, "5\t; a=\"b c\"": 5, "5 ": 5,
		"": -1, "q": -1, "5 5": -1, "5 xyz": -1, ";x": -1, "5;\x01": -1, "5;\x7f": -1,
		"fffffffffffffffff": -1,
	} {
		got, err := parseChunkSize([]byte(line))
		if want < 0 {
			if err == nil {
				t.Errorf("RFC 9112 §7.1.1: %q read as %d, want an error", line, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", line, got, err, want)
		}
	}
	// The line is the backend's: an error quotes one byte of it at most.
	if _, err := parseChunkSize([]byte(`{"token":"TOPSECRET"}`)); err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("error %v quotes the line", err)
	}
}

func TestHeadFaults(t *testing.T) {
	for _, tc := range []struct {
		name, head        string
		bare, space, seen bool
	}{
		{"CRLF throughout", "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\nbody :x\n\n", false, false, true},
		{"no fields", "HTTP/1.1 204 No Content\r\n\r\n", false, false, true},
		{"a bare-LF field line", "HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\r\n", false, false, true},
		{"a bare-LF blank line", "HTTP/1.1 200 OK\r\nA: 1\r\n\nB: 2\r\n\r\n", true, false, true},
		{"LF CRLF", "HTTP/1.1 200 OK\r\nA: 1\n\r\n", true, false, true},
		{"all bare LF", "HTTP/1.1 200 OK\nA: 1\n\n", true, false, true},
		{"a bare-LF status line, no fields", "HTTP/1.1 200 OK\n\r\nA: 1\n\n", false, false, true},
		{"unfinished", "HTTP/1.1 200 OK\r\nA: 1\r\nB", false, false, false},
		{"space before a colon", "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n", false, true, true},
		{"tab before a colon", "HTTP/1.1 200 OK\r\nA\t: 1\r\n\r\n", false, true, true},
		{"space before a colon, unfinished", "HTTP/1.1 200 OK\r\nA : 1\r\nB", false, true, false},
		{"in a value", "HTTP/1.1 200 OK\r\nA: b : c\r\n\r\n", false, false, true},
		{"in the reason", "HTTP/1.1 200 OK :)\r\n\r\n", false, false, true},
		{"in an obs-fold line", "HTTP/1.1 200 OK\r\nA: 1\r\n b : c\r\n\r\n", false, false, true},
		{"after the head", "HTTP/1.1 200 OK\r\nA: 1\r\n\r\nB : c\r\n", false, false, true},
		{"a line without a colon: fasthttp refuses it, the rest need not come", "HTTP/1.1 200 OK\r\nBad\r\nA", false, false, true},
	} {
		bare, space, seen := headFaults([]byte(tc.head))
		if bare != tc.bare || space != tc.space || seen != tc.seen {
			t.Errorf("%s: bare %v, space %v, seen %v; want %v, %v, %v", tc.name, bare, space, seen, tc.bare, tc.space, tc.seen)
		}
	}
}

func TestWalkChunkedSeesOnlyFramingThatHasGoneWrong(t *testing.T) {
	for _, tc := range []struct {
		body string
		bad  bool
	}{
		{"", false},
		{"5\r\nhel", false},
		{"5\r\nhello\r\n0\r\n\r\n", false},
		{"5;a=b\nhello\n3 \r\nabc\r", false},
		{"0\r\nX-T: 1\r\n", false},
		{"5\r\nhello\r", false},
		{"zz\r\nabc\r\n0\r\n\r\n", true},
		{"5\r\nhelloX\r\n", true},
		{"5\r\nhello\rX", true},
		{"ffffffffffffffffff", true},
		{"\r\n", true},
		{"3\r\nabc\r\n-1\r\n", true},
	} {
		if _, err := walkChunked([]byte(tc.body)); (err != nil) != tc.bad || err != nil && !errors.Is(err, ErrBrokenChunked) {
			t.Errorf("%q: %v, want broken %v", tc.body, err, tc.bad)
		}
	}
}

// checkHead reads a head that has not all come up to its end; the status
// line it looked at first is a view into the read buffer, which that read
// may move (after a 1xx head, the buffer's start was consumed): a valid
// final head in pieces was taken for another HTTP version, a 502.
func TestAHeadInPiecesAfterAnInterimOneIsRead(t *testing.T) {
	for split := len("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"); split < 80; split++ {
		raw := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\n\r\n"
		c, s := net.Pipe()
		go func() {
			_, _ = io.WriteString(s, raw[:split])
			time.Sleep(5 * time.Millisecond)
			_, _ = io.WriteString(s, raw[split:])
		}()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp := fasthttp.AcquireResponse()
		if err := readHead(resp, bufio.NewReader(c), nil); err != nil || resp.StatusCode() != 200 {
			t.Errorf("split at %d: status %d, error %v", split, resp.StatusCode(), err)
		}
		fasthttp.ReleaseResponse(resp)
		_ = c.Close()
		_ = s.Close()
	}
}

// A head with a line fasthttp refuses is refused at once, as before the
// look for whitespace before a colon: that look reads a head that has not
// all come up to its end, which here never comes.
func TestAMalformedHeadIsRefusedWithoutWaitingForItsEnd(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nBad Line\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n: no name\r\n",
	} {
		c, s := net.Pipe()
		go func() { _, _ = io.WriteString(s, raw) }() // then nothing, the connection open
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp := fasthttp.AcquireResponse()
		start := time.Now()
		err := readHead(resp, bufio.NewReader(c), nil)
		if err == nil || isTimeout(err) || time.Since(start) > 2*time.Second {
			t.Errorf("%q: error %v after %v, want a refusal at once", raw, err, time.Since(start))
		}
		fasthttp.ReleaseResponse(resp)
		_ = c.Close()
		_ = s.Close()
	}
}
