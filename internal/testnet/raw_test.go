package testnet

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestRawBackendAnswersWhatServeWrites(t *testing.T) {
	rb := StartRawBackend(t, func(c net.Conn, r RawRequest) {
		if r.Path == "/close" {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			_ = c.Close()
			return
		}
		_, _ = c.Write([]byte(OKResponse(r.Path)))
	})
	c := Dial(t, rb.Addr)
	c.Send(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/a", "/b"} {
		if resp, body := c.ReadResponse(t, ""); resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
	if data, closed := c.ReadAll(100 * time.Millisecond); closed || len(data) != 0 {
		t.Fatalf("after two answers got %q (closed %v), want an open, quiet connection", data, closed)
	}
	c.Send(t, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
	c.ReadResponse(t, "")
	if !c.Closed(5 * time.Second) {
		t.Error("connection not seen closed")
	}
	if status, _ := RawExchange(t, rb.Addr, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"); status != 200 {
		t.Errorf("RawExchange status %d, want 200", status)
	}
	if rb.Conns() != 2 || rb.Requests() != 4 {
		t.Errorf("counted %d connections and %d requests, want 2 and 4", rb.Conns(), rb.Requests())
	}
}

func TestServeStopsWhenTheTestEnds(t *testing.T) {
	var addr string
	t.Run("serving", func(t *testing.T) {
		addr = Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
		if resp, body := Do(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || string(body) != "ok" || resp.Header.Get("Server") != "" {
			t.Fatalf("got %d %q Server %q", resp.StatusCode, body, resp.Header.Get("Server"))
		}
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("server still listening after its test ended")
	}
	if c, err := net.DialTimeout("tcp", FreeAddr(t), time.Second); err == nil {
		c.Close()
		t.Error("something listens on FreeAddr")
	}
}
