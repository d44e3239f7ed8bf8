package httpsafe

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
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
		ReadBufferSize:                testnet.RawCaseReadBuffer,
		MaxRequestBodySize:            testnet.RawCaseMaxBody,
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
	s := newTestServer(gate(o))
	if tune != nil {
		tune(s)
	}
	addr, _ := testnet.Start(t, s)
	return addr
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
	c := testnet.Dial(t, addr)
	c.Send(t, raw)
	resp, body := c.ReadResponse(t, "")
	r := rawResult{status: resp.StatusCode, handled: resp.Header.Get("X-Handled") == "1", body: string(body)}
	if checkClose {
		r.closed = c.Closed(2 * time.Second)
	}
	return r
}

// quietLogger drops fasthttp's per-connection error lines, which every
// refused request in these tests would print.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
