package httpsafe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestReject(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Response.SetBodyString("left over")
	Reject(&ctx, 431, reasonHeaderTooLarge)
	if st := ctx.Response.StatusCode(); st != 431 {
		t.Fatalf("status %d, want 431", st)
	}
	if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	if !ctx.Response.ConnectionClose() {
		t.Fatal("Reject left the connection open")
	}
	var body struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", ctx.Response.Body(), err)
	}
	if body.Error != reasonHeaderTooLarge || body.Status != 431 {
		t.Fatalf("body %+v", body)
	}
}

func TestErrorStatus(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"a body over the limit is 413", fasthttp.ErrBodyTooLarge, 413},
		{"a wrapped body over the limit is 413", fmt.Errorf("read: %w", fasthttp.ErrBodyTooLarge), 413},
		{"a read timeout is 408", timeout, 408},
		{"a parse error is 400", errors.New("error when reading request headers: invalid header key"), 400},
		{"a broken chunk is 400", fasthttp.ErrBrokenChunk{}, 400},
		{"an unexpected EOF is 400", io.ErrUnexpectedEOF, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if st, _ := ErrorStatus(tc.err); st != tc.status {
				t.Fatalf("ErrorStatus(%v) = %d, want %d", tc.err, st, tc.status)
			}
		})
	}
}

func TestRequestLineOverflowed(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want bool
	}{
		{"a snippet without a line feed is the request line", `small read buffer: buffer size=16384, contents: "GET /aaaa"..."aaaa"`, true},
		{"a line feed in the head is the header section", `small read buffer: buffer size=16384, contents: "GET / HTTP/1.1\r\nHost: a\r\nX: bbb"..."bbb"`, false},
		{"a line feed in the tail is the header section", `small read buffer: buffer size=16384, contents: "GET /aaaa"..."a HTTP/1.1\r\nX: b"`, false},
		{"no snippet (SecureErrorLogMessage) is the header section", `small read buffer: buffer size=16384`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := requestLineOverflowed(tc.msg); got != tc.want {
				t.Fatalf("requestLineOverflowed = %v, want %v", got, tc.want)
			}
		})
	}
}
