package gateway

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// readRawHead reads one response's status line and header section exactly
// as sent, so that a test can check the spelling of field names.
func readRawHead(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read response head: %v (so far %q)", err, b.String())
		}
		b.WriteString(line)
		if line == "\r\n" {
			return b.String()
		}
	}
}

func TestTheRequestIDHasOneSpellingEverywhere(t *testing.T) {
	got := make(chan string, 1)
	backend := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		for k := range ctx.Request.Header.All() {
			if strings.EqualFold(string(k), "x-request-id") {
				got <- string(k)
			}
		}
		ctx.Response.Header.DisableNormalizing()
		ctx.Response.Header.Set("x-REQUEST-id", "from-the-backend")
		ctx.SetBodyString("ok")
	})
	s := startGateway(t, gatewayYAML(backend))

	c := testnet.Dial(t, s.Addr().String())
	c.Send(t, "GET /api/orders/1 HTTP/1.1\r\nHost: shop\r\nx-request-id: abc\r\n\r\n")
	proxied := readRawHead(t, c.R)
	if !strings.Contains(proxied, "\r\nX-Request-Id: abc\r\n") || strings.Contains(strings.ToLower(proxied), "from-the-backend") {
		t.Errorf("proxied response head:\n%s\nwant exactly one X-Request-Id: abc", proxied)
	}
	if name := <-got; name != hdrRequestID {
		t.Errorf("the backend got %q, want %q", name, hdrRequestID)
	}
	_, _ = c.ReadAll(200 * time.Millisecond) // the body

	c = testnet.Dial(t, s.Addr().String())
	c.Send(t, "GET /nowhere HTTP/1.1\r\nHost: shop\r\n\r\n")
	own := readRawHead(t, c.R)
	if !strings.HasPrefix(own, "HTTP/1.1 404") || !strings.Contains(own, "\r\nX-Request-Id: ") {
		t.Errorf("the gateway's own answer:\n%s\nwant a 404 with X-Request-Id", own)
	}
}

// errorBody is the JSON body of every answer the gateway writes itself.
type errorBody struct {
	Error     string `json:"error"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
}

func TestRequestsFasthttpCannotParseGetTheFullErrorBody(t *testing.T) {
	s := startGateway(t, gatewayYAML(testnet.FreeAddr(t)))
	resp, body := testnet.Do(t, s.Addr().String(), "GET /api/orders/1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %q is not the gateway's JSON: %v", body, err)
	}
	if resp.StatusCode != 400 || e.Status != 400 || e.RequestID == "" || e.RequestID != resp.Header.Get(hdrRequestID) {
		t.Fatalf("status %d, body %+v, X-Request-Id %q: want 400 with the request id in both", resp.StatusCode, e, resp.Header.Get(hdrRequestID))
	}
}

// A refused head is answered at once: never after a 100 Continue, and never
// after waiting for a body or for read_timeout.
func TestRefusedHeadsWithABodyAreAnsweredAtOnce(t *testing.T) {
	yaml := strings.Replace(gatewayYAML(testnet.FreeAddr(t)), "log: {level: error}\n",
		"log: {level: error}\nserver: {read_timeout: 20s, max_request_body: 1KiB}\n", 1)
	s := startGateway(t, yaml)
	tests := []struct {
		name   string
		head   string
		status int
	}{
		{"Expect 100-continue with a body over the limit gets 413 without a 100",
			"POST /api/orders HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 999999\r\n\r\n", 413},
		{"Expect 100-continue with Content-Length and Transfer-Encoding gets 400 without a 100",
			"POST /api/orders HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"Expect 100-continue with a folded line gets 400 without a 100",
			"POST /api/orders HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nX-A: a\r\n b\r\nContent-Length: 5\r\n\r\n", 400},
		{"Expect 100-continue with an encoded slash in the path gets 400 without a 100",
			"POST /api/orders/a%2Fb HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400},
		{"Expect 100-continue with userinfo in Host gets 400 without a 100",
			"POST /api/orders HTTP/1.1\r\nHost: u@shop\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400},
		{"Content-Length with Transfer-Encoding gets 400 before the body",
			"POST /api/orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"an invalid Host with a body gets 400 before the body",
			"POST /api/orders HTTP/1.1\r\nHost: a b\r\nContent-Length: 5\r\n\r\n", 400},
		{"a body over the limit gets 413 before the body",
			"POST /api/orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 999999\r\n\r\n", 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testnet.Dial(t, s.Addr().String())
			// Far below read_timeout: an answer that waits for it fails here.
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			c.Send(t, tt.head)
			head := readRawHead(t, c.R)
			if !strings.HasPrefix(head, "HTTP/1.1 "+strconv.Itoa(tt.status)+" ") {
				t.Fatalf("first answer:\n%s\nwant %d at once", head, tt.status)
			}
			if !strings.Contains(head, "Connection: close") {
				t.Errorf("a refused request leaves the connection open:\n%s", head)
			}
		})
	}
}

func TestUpstreamFailuresReachTheProcessLog(t *testing.T) {
	logs := &testnet.Buffer{}
	dead := testnet.FreeAddr(t)
	s := startGateway(t, gatewayYAML(dead), func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	for range 5 {
		if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 502 {
			t.Fatalf("status %d, want 502 from a dead backend", r.status)
		}
	}
	lines := testnet.Lines(logs.String(), `"msg":"upstream request failed"`)
	if strings.Count(lines, "\n")+1 != 1 || !strings.Contains(lines, `"pool":"orders"`) ||
		!strings.Contains(lines, `"backend":"`+dead+`"`) || !strings.Contains(lines, `"kind":"connect"`) {
		t.Fatalf("want one rate-limited warn line naming pool, backend and kind, got:\n%s", logs.String())
	}
}

func TestEveryExchangeIsReportedToItsBackend(t *testing.T) {
	t.Parallel()
	backend := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(2 * time.Millisecond)
		ctx.SetStatusCode(503)
	})
	s := startGateway(t, gatewayYAML(backend))
	for range 3 {
		do(t, "GET", s.url("/api/orders/1"), "")
	}
	b := s.table.Load().pools["orders"].pool.Backends()[0]
	if b.FailStreak() != 3 || b.LatencyEWMA() < time.Millisecond {
		t.Fatalf("backend saw fail streak %d and latency %v, want 3 and ≥ 1ms", b.FailStreak(), b.LatencyEWMA())
	}
}

func TestServeReturnsWhenShutdownCameFirst(t *testing.T) {
	s, err := New(loadConfig(t, gatewayYAML(testnet.FreeAddr(t))), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve kept running after an early Shutdown (a SIGTERM during start-up would hang)")
	}
}
