package balancer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// Backend.DoAt prepares the response itself instead of fasthttp's
// HostClient, which marked it so that parse errors leave the backend's bytes
// out. Whatever a backend sends, its bytes never reach the error (and from
// there the log), on the ordinary path and the pipelined one.
func TestAMalformedResponseIsReportedWithoutItsBytes(t *testing.T) {
	const secret = "tok-3f9a1c"
	answers := map[string]string{
		"/status":     "HTTP/1.1 2x0 OK " + secret + "\r\nContent-Length: 0\r\n\r\n",
		"/line":       "HTTP/1.1" + secret + "\r\nContent-Length: 0\r\n\r\n",
		"/field":      "HTTP/1.1 200 OK\r\nX-Token: " + secret + "\x01\r\nContent-Length: 0\r\n\r\n",
		"/garbage":    secret + "\r\n\r\n",
		"/head-large": "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat(secret, 2000) + "\r\nContent-Length: 0\r\n\r\n",
	}
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		_, _ = w.Write([]byte(answers[r.Path]))
		_ = w.Close()
	})
	for _, pipelined := range []bool{false, true} {
		o := testOptions()
		if pipelined {
			o.Upstream.Pipeline = PipelineOptions{Depth: 8}.WithDefaults()
		}
		b := NewBackend(rb.Addr, 1, o)
		t.Cleanup(b.Close)
		for path := range answers {
			_, err := tryGet(b, path)
			switch {
			case err == nil:
				t.Errorf("pipelined %v, GET %s: no error", pipelined, path)
			case strings.Contains(err.Error(), secret[:6]):
				t.Errorf("pipelined %v, GET %s: the error quotes the response: %v", pipelined, path, err)
			case errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnect):
				t.Errorf("pipelined %v, GET %s: %v, want a bad response", pipelined, path, err)
			}
		}
	}
}

// A proxied response has the Content-Type its backend gave it, and none
// when the backend gave none: fasthttp would otherwise add text/plain.
func TestAResponseWithoutContentTypeGetsNone(t *testing.T) {
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		_, _ = w.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	})
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)
	req, resp := newGet(t, "/")
	for i := 0; i < 2; i++ { // the second on a reused response
		if _, err := b.DoAt(req, resp, time.Now(), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if head := resp.Header.String(); strings.Contains(head, "Content-Type") {
			t.Fatalf("response head written as\n%s\nwant no Content-Type", head)
		}
	}
}

// DoAt counts the time left from the caller's reading of the clock: a
// deadline at or before it fails at once, and nothing is sent.
func TestDoAtADeadlineNotAfterNowSendsNothing(t *testing.T) {
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
	})
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)
	req, resp := newGet(t, "/")
	now := time.Now()
	if _, err := b.DoAt(req, resp, now, now); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if n := rb.Requests(); n != 0 {
		t.Fatalf("backend got %d requests, want none", n)
	}
}

// A request without a body stream that fits what a connection holds is
// sent with its response read and waits in the poller (DoAt reports no
// yield); a body stream, or a body larger than maxHeld, is sent as it is
// written and the exchange yields before it reads.
func TestDoAtReportsWhetherItYielded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = fmt.Fprintf(w, "%d", n)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	b := NewBackend(addr, 1, testOptions().WithDefaults())
	t.Cleanup(b.Close)
	large := strings.Repeat("x", maxHeld+1)
	for _, tc := range []struct {
		name    string
		body    func(req *fasthttp.Request)
		size    int
		yielded bool
	}{
		{"GET", func(*fasthttp.Request) {}, 0, false},
		{"small POST", func(req *fasthttp.Request) { req.SetBodyString("abc") }, 3, false},
		{"body stream", func(req *fasthttp.Request) { req.SetBodyStream(strings.NewReader("abcd"), 4) }, 4, true},
		{"POST larger than held", func(req *fasthttp.Request) { req.SetBodyString(large) }, len(large), true},
	} {
		for i := 0; i < 2; i++ { // a new connection, then a reused one
			req, resp := newGet(t, "/")
			if tc.size > 0 {
				req.Header.SetMethod("POST")
			}
			tc.body(req)
			yielded, err := b.DoAt(req, resp, time.Now(), time.Now().Add(5*time.Second))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got, want := string(resp.Body()), fmt.Sprint(tc.size); got != want {
				t.Errorf("%s: the backend read %s body bytes, want %s", tc.name, got, want)
			}
			if yielded != tc.yielded {
				t.Errorf("%s (request %d on the pool): yielded %v, want %v", tc.name, i, yielded, tc.yielded)
			}
		}
	}
}

// A request too large to hold is sent as it is written, after a peek that
// finds a reused connection unfit just as the held exchange's check would:
// the POST goes out once, on another connection.
func TestARequestTooLargeToHoldIsCheckedBeforeItIsSent(t *testing.T) {
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		_, _ = w.Write([]byte(testnet.OKResponse(strings.Fields(r.Head)[0])))
		if r.Conn == 0 {
			time.Sleep(2 * time.Millisecond)
			_, _ = w.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) // nobody asked
		}
	})
	b := NewBackend(rb.Addr, 1, testOptions().WithDefaults())
	t.Cleanup(b.Close)
	get(t, b, "/warm")
	time.Sleep(30 * time.Millisecond)
	req, resp := newGet(t, "/orders")
	req.Header.SetMethod("POST")
	req.SetBodyString(strings.Repeat("x", maxHeld+1))
	if _, err := b.DoAt(req, resp, time.Now(), time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("POST: %v", err)
	}
	if got := string(resp.Body()); got != "POST" {
		t.Fatalf("POST answered %q", got)
	}
	if n := rb.Conns(); n != 2 {
		t.Errorf("%d connections, want 2: the POST on a new one", n)
	}
	if s := b.Stats(); s.StrayBytes != 1 {
		t.Errorf("StrayBytes = %d, want 1", s.StrayBytes)
	}
}
