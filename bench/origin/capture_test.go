package origin

import (
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestALargeRequestHeadIsServed(t *testing.T) {
	// A gateway in front passes heads of 16 KiB and more: the origin must
	// not answer them with its own 431.
	o := startServer(t, Options{})
	raw := "GET /orders/1 HTTP/1.1\r\nHost: origin.test\r\nCookie: " + strings.Repeat("c", 20<<10) + "\r\n\r\n"
	if resp, body := testnet.Do(t, o.Addr(), raw); resp.StatusCode != 200 {
		t.Fatalf("a 20 KiB head got %d: %s", resp.StatusCode, body)
	}
}

func TestReceivedCapturesTheWire(t *testing.T) {
	o := startServer(t, Options{})
	raw := "POST /echo/a%2Fb/../c?x=1&y=%20 HTTP/1.1\r\n" +
		"host: origin.test\r\n" +
		"x-lower-case: v1\r\n" +
		"X-DUP: 1\r\n" +
		"Content-Length: 3\r\n" +
		"x-dup:   2  \r\n" +
		"\r\nabc"
	resp, body := testnet.Do(t, o.Addr(), raw)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantHeaders := []Header{
		{"host", "origin.test"}, {"x-lower-case", "v1"}, {"X-DUP", "1"}, {"Content-Length", "3"}, {"x-dup", "2"},
	}

	t.Run("Received keeps the raw request line, header names and order", func(t *testing.T) {
		got := o.Received()
		if len(got) != 1 {
			t.Fatalf("received %d requests, want 1", len(got))
		}
		r := got[0]
		if r.Method != "POST" || r.RequestURI != "/echo/a%2Fb/../c?x=1&y=%20" || r.Proto != "HTTP/1.1" {
			t.Errorf("request line %q %q %q", r.Method, r.RequestURI, r.Proto)
		}
		if !slices.Equal(r.Headers, wantHeaders) {
			t.Errorf("headers %q, want %q", r.Headers, wantHeaders)
		}
		if string(r.Body) != "abc" || r.BodyLen != 3 {
			t.Errorf("body %q (%d), want abc", r.Body, r.BodyLen)
		}
		if v, ok := r.Get("x-DUP"); !ok || v != "1" {
			t.Errorf("Get(x-DUP) = %q %v, want the first, 1", v, ok)
		}
		if v := r.Values("x-DUP"); !slices.Equal(v, []string{"1", "2"}) {
			t.Errorf("Values(x-DUP) = %q, want both, 1 then 2", v)
		}
		if r.RemoteAddr == "" || r.ConnRequest != 1 {
			t.Errorf("remote %q, conn request %d", r.RemoteAddr, r.ConnRequest)
		}
	})
	t.Run("echo reports the same headers in order", func(t *testing.T) {
		var echo struct {
			Origin, Method, URI, Proto string
			Headers                    [][2]string
			BodyLen                    int `json:"body_len"`
		}
		if err := json.Unmarshal(body, &echo); err != nil {
			t.Fatalf("decode echo: %v\n%s", err, body)
		}
		var got []Header
		for _, h := range echo.Headers {
			got = append(got, Header{h[0], h[1]})
		}
		if !slices.Equal(got, wantHeaders) || echo.URI != "/echo/a%2Fb/../c?x=1&y=%20" ||
			echo.Method != "POST" || echo.BodyLen != 3 || echo.Origin != o.Addr() {
			t.Errorf("echo %+v", echo)
		}
	})
	t.Run("control requests are neither counted nor captured", func(t *testing.T) {
		testnet.Do(t, o.Addr(), rawGet("/_origin/stats"))
		if n := o.Requests(); n != 1 {
			t.Errorf("Requests() = %d, want 1", n)
		}
		if n := len(o.Received()); n != 1 {
			t.Errorf("captured %d, want 1", n)
		}
	})
	t.Run("ResetReceived forgets but keeps counting", func(t *testing.T) {
		o.ResetReceived()
		if n := len(o.Received()); n != 0 {
			t.Fatalf("captured %d after reset", n)
		}
		testnet.Do(t, o.Addr(), rawGet("/healthz"))
		if got := o.Received(); len(got) != 1 || got[0].RequestURI != "/healthz" {
			t.Errorf("after reset: %+v", got)
		}
		if n := o.Requests(); n != 2 {
			t.Errorf("Requests() = %d, want 2", n)
		}
	})
	t.Run("only the last 64 requests are kept, oldest first", func(t *testing.T) {
		c := testnet.Dial(t, o.Addr())
		for i := 1; i <= 70; i++ {
			io.WriteString(c, rawGet("/orders/"+strconv.Itoa(i)))
			c.ReadResponse(t, "")
		}
		got := o.Received()
		if len(got) != captureSlots {
			t.Fatalf("kept %d, want %d", len(got), captureSlots)
		}
		if got[0].RequestURI != "/orders/7" || got[63].RequestURI != "/orders/70" || got[63].ConnRequest != 70 {
			t.Errorf("kept %s..%s (conn request %d)", got[0].RequestURI, got[63].RequestURI, got[63].ConnRequest)
		}
	})
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []Header
	}{
		{"names keep their case and values lose surrounding blanks", "a-B: 1\r\nC:\t two \r\n\r\n", []Header{{"a-B", "1"}, {"C", "two"}}},
		{"bare LF line ends are accepted", "A: 1\nB: 2\n\n", []Header{{"A", "1"}, {"B", "2"}}},
		{"a folded line continues the previous value", "A: 1\r\n  more\r\nB: 2\r\n\r\n", []Header{{"A", "1 more"}, {"B", "2"}}},
		{"an empty value is kept", "A:\r\n\r\n", []Header{{"A", ""}}},
		{"an empty block has no fields", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseHeaders(nil, []byte(tt.raw)); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
