package httpsafe

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// newTestServer returns a fasthttp.Server configured as doc.go recommends,
// with handler.
func newTestServer(handler fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       handler,
		ErrorHandler:                  ErrorHandler,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		DisablePreParseMultipartForm:  true,
		ReadBufferSize:                rawCaseReadBuffer,
		MaxRequestBodySize:            rawCaseMaxBody,
		ReadTimeout:                   10 * time.Second,
		WriteTimeout:                  10 * time.Second,
		IdleTimeout:                   10 * time.Second,
		Logger:                        quietLogger{},
	}
}

// gate is the handler the probe and raw-case tests run: the order the
// gateway is meant to use. A request that passes answers 200 with
// "<host> <path>" and the header X-Forwarded-Test: 1, standing in for
// forwarding.
func gate(o *Options) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Handled", "1")
		if st, why := Check(&ctx.Request, o); st != 0 {
			Reject(ctx, st, why)
			return
		}
		var buf [256]byte
		host, st := AppendAuthority(buf[:0], &ctx.Request)
		if st != 0 {
			Reject(ctx, st, "invalid authority")
			return
		}
		rawPath, _ := SplitRequestURI(ctx.Request.Header.RequestURI())
		out, st, why := AppendPath(host, rawPath, o)
		if st != 0 {
			Reject(ctx, st, why)
			return
		}
		// out is host followed by the path.
		ctx.Response.Header.Set("X-Forwarded-Test", "1")
		ctx.SetBodyString(string(out[:len(host)]) + " " + string(out[len(host):]))
	}
}

// startGate serves gate(o) on a free loopback port until the test ends;
// tune, when not nil, adjusts the server first.
func startGate(t *testing.T, o *Options, tune func(*fasthttp.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := newTestServer(gate(o))
	if tune != nil {
		tune(s)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// rawResult is what came back for one raw request.
type rawResult struct {
	status  int
	handled bool   // the handler ran
	body    string // response body
	closed  bool   // the server closed the connection after the answer
}

// sendRaw writes raw on a new connection and reads one response; with
// checkClose it then waits (up to 2 s) to see whether the server closes the
// connection.
func sendRaw(t *testing.T, addr, raw string, checkClose bool) rawResult {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("deadline: %v", err)
	}
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", clip(raw), err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	r := rawResult{status: resp.StatusCode, handled: resp.Header.Get("X-Handled") == "1", body: string(body)}
	if !checkClose {
		return r
	}
	// A closed connection reads EOF (or a reset) at once; an open one would
	// block, so give it a short deadline and treat a timeout as open.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var one [1]byte
	_, err = br.Read(one[:])
	var ne net.Error
	r.closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return r
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return strings.ReplaceAll(s, "\r\n", "|")
}

// quietLogger drops fasthttp's per-connection error lines, which every
// refused request in these tests would print.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
