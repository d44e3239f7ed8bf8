package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// originTestTimeout bounds every wait in these tests: generous, because the
// machine is shared and slow under -race, and only ever reached on failure.
const originTestTimeout = 10 * time.Second

// originStart starts an origin on a free loopback port and closes it when the
// test ends.
func originStart(t *testing.T, opts OriginOptions) *Origin {
	t.Helper()
	o, err := StartOrigin(opts)
	if err != nil {
		t.Fatalf("StartOrigin: %v", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// originDial opens a raw connection to addr, closed when the test ends.
func originDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, originTestTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(originTestTimeout)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	return c
}

// originDo sends one raw request on a new connection and reads the response.
func originDo(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	c := originDial(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write request: %v", err)
	}
	return originRead(t, bufio.NewReader(c))
}

// originRead reads one response and its whole body from br.
func originRead(t *testing.T, br *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, body
}

// originGet is a GET request for path with the given extra header lines.
func originGet(path string, headers ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: origin.test\r\n" + strings.Join(headers, "") + "\r\n"
}

// originPost is a POST request for path with a body.
func originPost(path, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: origin.test\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func TestOriginEndpoints(t *testing.T) {
	o := originStart(t, OriginOptions{Name: "orders-a", CacheControl: "max-age=5"})
	tests := []struct {
		name       string
		req        string
		status     int
		bodyHas    string
		header     string // a header the answer must carry
		headerWant string
	}{
		{"an order is read by id", originGet("/orders/42"), 200, `"id":42,`, "Cache-Control", "max-age=5"},
		{"the largest id, 2^53, is an order", originGet("/orders/9007199254740992"), 200, `"id":9007199254740992,`, "Content-Type", "application/json"},
		{"an id above 2^53 is not found", originGet("/orders/9007199254740993"), 404, `"order_not_found"`, "Content-Type", "application/json"},
		{"id 0 is not found", originGet("/orders/0"), 404, `"order_not_found"`, "", ""},
		{"a non-numeric id is not found", originGet("/orders/abc"), 404, `"order_not_found"`, "", ""},
		{"a negative id is not found", originGet("/orders/-1"), 404, `"order_not_found"`, "", ""},
		{"an order cannot be deleted", "DELETE /orders/1 HTTP/1.1\r\nHost: x\r\n\r\n", 405, `"method_not_allowed"`, "Allow", "GET, HEAD"},
		{"an order is created from JSON", originPost("/orders", `{"sku":"SKU-1","qty":2}`), 201, `"status":"created"`, "Content-Type", "application/json"},
		{"a body that is not JSON is refused", originPost("/orders", `{"sku":`), 400, `"invalid_json"`, "", ""},
		{"the collection is not listed", originGet("/orders"), 405, `"method_not_allowed"`, "Allow", "POST"},
		{"the health check says ok", originGet("/healthz"), 200, "ok", "Content-Type", "text/plain; charset=utf-8"},
		{"echo describes the request", originGet("/echo/a?b=c"), 200, `"uri":"/echo/a?b=c"`, "Content-Type", "application/json"},
		{"an unknown path is not found", originGet("/nope"), 404, `"not_found"`, "Content-Type", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := originDo(t, o.Addr(), tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if !bytes.Contains(body, []byte(tt.bodyHas)) {
				t.Errorf("body %s does not contain %s", body, tt.bodyHas)
			}
			if got := resp.Header.Get("X-Origin"); got != "orders-a" {
				t.Errorf("X-Origin %q, want orders-a", got)
			}
			if tt.header != "" && resp.Header.Get(tt.header) != tt.headerWant {
				t.Errorf("%s %q, want %q", tt.header, resp.Header.Get(tt.header), tt.headerWant)
			}
			if resp.Header.Get("Server") != "" {
				t.Errorf("Server header %q sent, want none", resp.Header.Get("Server"))
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && !json.Valid(body) {
				t.Errorf("body is not valid JSON: %s", body)
			}
		})
	}
}

func TestOriginOrderDocument(t *testing.T) {
	t.Run("an order has every field and is padded to the payload size", func(t *testing.T) {
		o := originStart(t, OriginOptions{PayloadBytes: 1000})
		resp, body := originDo(t, o.Addr(), originGet("/orders/7"))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if len(body) != 1000 {
			t.Errorf("body is %d bytes, want 1000", len(body))
		}
		var order struct {
			ID       int64  `json:"id"`
			Customer string `json:"customer"`
			Items    []struct {
				SKU   string `json:"sku"`
				Qty   int64  `json:"qty"`
				Price int64  `json:"price"`
			}
			Total     int64     `json:"total"`
			Status    string    `json:"status"`
			CreatedAt time.Time `json:"created_at"`
		}
		if err := json.Unmarshal(body, &order); err != nil {
			t.Fatalf("decode order: %v\n%s", err, body)
		}
		var sum int64
		for _, it := range order.Items {
			sum += it.Qty * it.Price
		}
		if order.ID != 7 || order.Customer == "" || len(order.Items) == 0 || order.Total != sum ||
			order.Status == "" || order.CreatedAt.IsZero() {
			t.Errorf("incomplete order: %+v", order)
		}
	})
	t.Run("the default payload is about 300 bytes", func(t *testing.T) {
		o := originStart(t, OriginOptions{})
		_, body := originDo(t, o.Addr(), originGet("/orders/123456"))
		if len(body) != originDefaultPayloadBytes {
			t.Errorf("body is %d bytes, want %d", len(body), originDefaultPayloadBytes)
		}
	})
	t.Run("every id up to 2^53 fits the default payload exactly", func(t *testing.T) {
		for _, id := range []int64{1, 2, 5, 999998, 1 << 40, originMaxID - 1, originMaxID} {
			if n := len(originAppendOrder(nil, id, "", originDefaultPayloadBytes)); n != originDefaultPayloadBytes {
				t.Errorf("order %d is %d bytes, want %d", id, n, originDefaultPayloadBytes)
			}
		}
	})
	t.Run("no Cache-Control is sent unless configured", func(t *testing.T) {
		o := originStart(t, OriginOptions{})
		resp, _ := originDo(t, o.Addr(), originGet("/orders/1"))
		if cc, ok := resp.Header["Cache-Control"]; ok {
			t.Errorf("Cache-Control %q sent", cc)
		}
	})
	t.Run("two origins answer the same order identically", func(t *testing.T) {
		a := originStart(t, OriginOptions{Name: "a"})
		b := originStart(t, OriginOptions{Name: "b"})
		_, ba := originDo(t, a.Addr(), originGet("/orders/99"))
		_, bb := originDo(t, b.Addr(), originGet("/orders/99"))
		if !bytes.Equal(ba, bb) {
			t.Errorf("bodies differ:\n%s\n%s", ba, bb)
		}
	})
	t.Run("created orders get increasing ids and a Location", func(t *testing.T) {
		o := originStart(t, OriginOptions{})
		var last int64
		for i := 0; i < 2; i++ {
			resp, body := originDo(t, o.Addr(), originPost("/orders", `{"qty":1}`))
			var got struct{ ID int64 }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.ID <= last {
				t.Errorf("id %d after %d", got.ID, last)
			}
			last = got.ID
			if want := "/orders/" + strconv.FormatInt(got.ID, 10); resp.Header.Get("Location") != want {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), want)
			}
		}
	})
	t.Run("HEAD answers the headers of GET without a body", func(t *testing.T) {
		o := originStart(t, OriginOptions{})
		c := originDial(t, o.Addr())
		io.WriteString(c, "HEAD /orders/5 HTTP/1.1\r\nHost: x\r\n\r\n"+originGet("/healthz"))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != originDefaultPayloadBytes {
			t.Fatalf("HEAD: %v %+v", err, resp)
		}
		// The next response must follow directly: a body after HEAD would break it.
		if resp, body := originRead(t, br); resp.StatusCode != 200 || string(body) != "ok" {
			t.Errorf("after HEAD: %d %q", resp.StatusCode, body)
		}
	})
}

func TestOriginReceivedCapturesTheWire(t *testing.T) {
	o := originStart(t, OriginOptions{})
	raw := "POST /echo/a%2Fb/../c?x=1&y=%20 HTTP/1.1\r\n" +
		"host: origin.test\r\n" +
		"x-lower-case: v1\r\n" +
		"X-DUP: 1\r\n" +
		"Content-Length: 3\r\n" +
		"x-dup:   2  \r\n" +
		"\r\nabc"
	resp, body := originDo(t, o.Addr(), raw)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantHeaders := []OriginHeader{
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
		if !equalOriginHeaders(r.Headers, wantHeaders) {
			t.Errorf("headers %q, want %q", r.Headers, wantHeaders)
		}
		if string(r.Body) != "abc" || r.BodyLen != 3 {
			t.Errorf("body %q (%d), want abc", r.Body, r.BodyLen)
		}
		if v, ok := r.Get("x-DUP"); !ok || v != "1" {
			t.Errorf("Get(x-DUP) = %q %v, want the first, 1", v, ok)
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
		var got []OriginHeader
		for _, h := range echo.Headers {
			got = append(got, OriginHeader{h[0], h[1]})
		}
		if !equalOriginHeaders(got, wantHeaders) || echo.URI != "/echo/a%2Fb/../c?x=1&y=%20" ||
			echo.Method != "POST" || echo.BodyLen != 3 || echo.Origin != o.Addr() {
			t.Errorf("echo %+v", echo)
		}
	})
	t.Run("control requests are neither counted nor captured", func(t *testing.T) {
		originDo(t, o.Addr(), originGet("/_origin/stats"))
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
		originDo(t, o.Addr(), originGet("/healthz"))
		if got := o.Received(); len(got) != 1 || got[0].RequestURI != "/healthz" {
			t.Errorf("after reset: %+v", got)
		}
		if n := o.Requests(); n != 2 {
			t.Errorf("Requests() = %d, want 2", n)
		}
	})
	t.Run("only the last 64 requests are kept, oldest first", func(t *testing.T) {
		c := originDial(t, o.Addr())
		br := bufio.NewReader(c)
		for i := 1; i <= 70; i++ {
			io.WriteString(c, originGet("/orders/"+strconv.Itoa(i)))
			originRead(t, br)
		}
		got := o.Received()
		if len(got) != originCaptureSlots {
			t.Fatalf("kept %d, want %d", len(got), originCaptureSlots)
		}
		if got[0].RequestURI != "/orders/7" || got[63].RequestURI != "/orders/70" || got[63].ConnRequest != 70 {
			t.Errorf("kept %s..%s (conn request %d)", got[0].RequestURI, got[63].RequestURI, got[63].ConnRequest)
		}
	})
}

func equalOriginHeaders(a, b []OriginHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// originReadAll reads from c until EOF, an error, or quiet: a read deadline
// that ends the read without error when the peer keeps the connection open.
func originReadAll(t *testing.T, c net.Conn, quiet time.Duration) (data []byte, closed bool) {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		data = append(data, buf[:n]...)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			return data, false
		default:
			return data, true
		}
	}
}

func TestOriginFaultsOnTheWire(t *testing.T) {
	t.Run("hang reads the request and never answers", func(t *testing.T) {
		o := originStart(t, OriginOptions{Fault: FaultHang})
		c := originDial(t, o.Addr())
		io.WriteString(c, originGet("/orders/1"))
		data, closed := originReadAll(t, c, 300*time.Millisecond)
		if len(data) != 0 || closed {
			t.Fatalf("got %q (closed %v), want silence on an open connection", data, closed)
		}
		originWaitRequests(t, o, 1)
	})
	t.Run("slow_body sends the headers at once and the body a byte at a time", func(t *testing.T) {
		const interval = 5 * time.Millisecond
		o := originStart(t, OriginOptions{Fault: FaultSlowBody, SlowBodyInterval: interval, PayloadBytes: 60})
		c := originDial(t, o.Addr())
		io.WriteString(c, originGet("/orders/3"))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read headers: %v", err)
		}
		headersAt := time.Now()
		body, err := io.ReadAll(resp.Body)
		if err != nil || int64(len(body)) != resp.ContentLength || !json.Valid(body) {
			t.Fatalf("body %q (%v), Content-Length %d", body, err, resp.ContentLength)
		}
		// A lower bound only: the body cannot come faster than the interval.
		if min := time.Duration(len(body)-1) * interval; time.Since(headersAt) < min/2 {
			t.Errorf("body of %d bytes took %v, want at least %v", len(body), time.Since(headersAt), min)
		}
		if !resp.Close {
			t.Errorf("Connection: close not announced although the connection is closed after the body")
		}
	})
	t.Run("close_mid_body sends part of the announced body and closes", func(t *testing.T) {
		o := originStart(t, OriginOptions{Fault: FaultCloseMidBody})
		c := originDial(t, o.Addr())
		io.WriteString(c, originGet("/orders/3"))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("read headers: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) || int64(len(body)) >= resp.ContentLength || len(body) == 0 {
			t.Errorf("read %d of %d body bytes, err %v; want some, then unexpected EOF", len(body), resp.ContentLength, err)
		}
	})
	t.Run("garbage writes non-HTTP bytes and closes", func(t *testing.T) {
		o := originStart(t, OriginOptions{Fault: FaultGarbage})
		c := originDial(t, o.Addr())
		io.WriteString(c, originGet("/echo/x"))
		data, closed := originReadAll(t, c, originTestTimeout)
		if string(data) != faultGarbage || !closed {
			t.Errorf("got %q (closed %v), want %q then close", data, closed, faultGarbage)
		}
	})
	for _, f := range []Fault{FaultExtraBytes, FaultExtraBytesLate} {
		t.Run(string(f)+" follows a valid response with a forged one on an open connection", func(t *testing.T) {
			o := originStart(t, OriginOptions{Fault: f})
			c := originDial(t, o.Addr())
			io.WriteString(c, originGet("/orders/8"))
			br := bufio.NewReader(c)
			resp, body := originRead(t, br)
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"id":8,`)) || resp.Close {
				t.Fatalf("first response %d close=%v %s", resp.StatusCode, resp.Close, body)
			}
			// What a client that reuses the connection would take for the
			// answer to its next request.
			evil, evilBody := originRead(t, br)
			if evil.StatusCode != 200 || string(evilBody) != "EVIL!" {
				t.Errorf("extra bytes: %d %q", evil.StatusCode, evilBody)
			}
			if data, closed := originReadAll(t, c, 200*time.Millisecond); closed || len(data) != 0 {
				t.Errorf("after the extra bytes got %q (closed %v), want an open, quiet connection", data, closed)
			}
		})
	}
	t.Run("5xx answers 500, 502 and 503 in turn on a live connection", func(t *testing.T) {
		o := originStart(t, OriginOptions{Fault: Fault5xx})
		c := originDial(t, o.Addr())
		br := bufio.NewReader(c)
		seen := map[int]bool{}
		for i := 0; i < 3; i++ {
			io.WriteString(c, originGet("/orders/1"))
			resp, body := originRead(t, br)
			seen[resp.StatusCode] = true
			if !json.Valid(body) {
				t.Errorf("body not JSON: %s", body)
			}
		}
		if !seen[500] || !seen[502] || !seen[503] {
			t.Errorf("saw statuses %v, want 500, 502 and 503", seen)
		}
	})
	t.Run("health_fail fails the health check only", func(t *testing.T) {
		o := originStart(t, OriginOptions{Fault: FaultHealthFail})
		if resp, _ := originDo(t, o.Addr(), originGet("/healthz")); resp.StatusCode != 503 {
			t.Errorf("healthz %d, want 503", resp.StatusCode)
		}
		if resp, _ := originDo(t, o.Addr(), originGet("/orders/1")); resp.StatusCode != 200 {
			t.Errorf("orders %d, want 200", resp.StatusCode)
		}
	})
	t.Run("faults other than health_fail leave the health check alone", func(t *testing.T) {
		o := originStart(t, OriginOptions{Fault: FaultHang})
		if resp, body := originDo(t, o.Addr(), originGet("/healthz")); resp.StatusCode != 200 || string(body) != "ok" {
			t.Errorf("healthz %d %q", resp.StatusCode, body)
		}
	})
	t.Run("an error rate of 1 fails every order request", func(t *testing.T) {
		o := originStart(t, OriginOptions{ErrorRate: 1})
		if resp, _ := originDo(t, o.Addr(), originGet("/orders/1")); resp.StatusCode != 500 {
			t.Errorf("status %d, want 500", resp.StatusCode)
		}
		if resp, _ := originDo(t, o.Addr(), originGet("/echo/1")); resp.StatusCode != 200 {
			t.Errorf("echo status %d, want 200: the error rate is for orders", resp.StatusCode)
		}
	})
}

// originWaitRequests waits until o has counted n requests.
func originWaitRequests(t *testing.T, o *Origin, n int64) {
	t.Helper()
	deadline := time.Now().Add(originTestTimeout)
	for o.Requests() < n {
		if time.Now().After(deadline) {
			t.Fatalf("origin counted %d requests, want %d", o.Requests(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOriginFaultSwitching(t *testing.T) {
	o := originStart(t, OriginOptions{})
	t.Run("SetFault applies to the next request", func(t *testing.T) {
		o.SetFault(Fault5xx)
		if resp, _ := originDo(t, o.Addr(), originGet("/orders/1")); resp.StatusCode < 500 {
			t.Errorf("status %d under 5xx", resp.StatusCode)
		}
		o.SetFault(FaultNone)
		if resp, _ := originDo(t, o.Addr(), originGet("/orders/1")); resp.StatusCode != 200 {
			t.Errorf("status %d after clearing the fault", resp.StatusCode)
		}
	})
	t.Run("the control endpoint switches the mode and reports it", func(t *testing.T) {
		resp, body := originDo(t, o.Addr(), originPost("/_origin/fault?mode=health_fail", ""))
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"fault":"health_fail"`)) {
			t.Fatalf("control: %d %s", resp.StatusCode, body)
		}
		if o.Fault() != FaultHealthFail {
			t.Errorf("Fault() = %q", o.Fault())
		}
		if resp, _ := originDo(t, o.Addr(), originGet("/healthz")); resp.StatusCode != 503 {
			t.Errorf("healthz %d, want 503", resp.StatusCode)
		}
		originDo(t, o.Addr(), originPost("/_origin/fault?mode=none", ""))
		if o.Fault() != FaultNone {
			t.Errorf("Fault() = %q after mode=none", o.Fault())
		}
	})
	t.Run("the control endpoint refuses an unknown mode", func(t *testing.T) {
		if resp, _ := originDo(t, o.Addr(), originPost("/_origin/fault?mode=explode", "")); resp.StatusCode != 400 {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("stats report the request count and the mode", func(t *testing.T) {
		_, body := originDo(t, o.Addr(), originGet("/_origin/stats"))
		var stats struct {
			Requests int64
			Fault    string
		}
		if err := json.Unmarshal(body, &stats); err != nil {
			t.Fatalf("decode stats: %v: %s", err, body)
		}
		if stats.Requests != o.Requests() || stats.Requests != 3 || stats.Fault != "none" {
			t.Errorf("stats %+v, origin counted %d", stats, o.Requests())
		}
	})
}

func TestOriginLatency(t *testing.T) {
	t.Run("a fixed latency delays the answer", func(t *testing.T) {
		o := originStart(t, OriginOptions{Latency: OriginLatency{Dist: "fixed", Fixed: 50 * time.Millisecond}})
		start := time.Now()
		originDo(t, o.Addr(), originGet("/orders/1"))
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("answered in %v, want at least 50ms", d)
		}
	})
	t.Run("a slow request does not hold up other connections", func(t *testing.T) {
		// An hour of latency: only concurrent handling lets both requests
		// arrive, and only Close ends them.
		o := originStart(t, OriginOptions{Latency: OriginLatency{Dist: "fixed", Fixed: time.Hour}})
		for i := 0; i < 2; i++ {
			io.WriteString(originDial(t, o.Addr()), originGet("/orders/1"))
		}
		originWaitRequests(t, o, 2)
		originCloseWithin(t, o)
	})
}

// originCloseWithin closes o and fails if that takes long.
func originCloseWithin(t *testing.T, o *Origin) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- o.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(originTestTimeout):
		t.Fatalf("Close did not return within %v", originTestTimeout)
	}
}

func TestOriginLatencyFlag(t *testing.T) {
	tests := []struct {
		in   string
		want OriginLatency
		err  bool
	}{
		{in: "none", want: OriginLatency{}},
		{in: "", want: OriginLatency{}},
		{in: "fixed:2ms", want: OriginLatency{Dist: "fixed", Fixed: 2 * time.Millisecond}},
		{in: "uniform:1ms-5ms", want: OriginLatency{Dist: "uniform", Min: time.Millisecond, Max: 5 * time.Millisecond}},
		{in: "lognormal:2ms:0.5", want: OriginLatency{Dist: "lognormal", Median: 2 * time.Millisecond, Sigma: 0.5}},
		{in: "lognormal:2ms:0.5:50ms", want: OriginLatency{Dist: "lognormal", Median: 2 * time.Millisecond, Sigma: 0.5, Max: 50 * time.Millisecond}},
		{in: "uniform:5ms-1ms", err: true},
		{in: "uniform:5ms", err: true},
		{in: "fixed:soon", err: true},
		{in: "lognormal:0s:1", err: true},
		{in: "lognormal:1ms:-1", err: true},
		{in: "lognormal:1ms:NaN", err: true},
		{in: "gaussian:1ms", err: true},
	}
	for _, tt := range tests {
		t.Run("parsing "+strconv.Quote(tt.in), func(t *testing.T) {
			var l OriginLatency
			err := l.Set(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("Set(%q) error %v, want error %v", tt.in, err, tt.err)
			}
			if err != nil {
				return
			}
			if l != tt.want {
				t.Fatalf("Set(%q) = %+v, want %+v", tt.in, l, tt.want)
			}
			var again OriginLatency
			if err := again.Set(l.String()); err != nil || again != l {
				t.Errorf("String %q does not parse back: %+v %v", l.String(), again, err)
			}
		})
	}
	t.Run("samples stay within their bounds", func(t *testing.T) {
		u := OriginLatency{Dist: "uniform", Min: time.Millisecond, Max: 2 * time.Millisecond}
		ln := OriginLatency{Dist: "lognormal", Median: time.Millisecond, Sigma: 3, Max: 4 * time.Millisecond}
		for i := 0; i < 1000; i++ {
			if d := u.sample(); d < u.Min || d > u.Max {
				t.Fatalf("uniform sample %v outside [%v,%v]", d, u.Min, u.Max)
			}
			if d := ln.sample(); d < 0 || d > ln.Max {
				t.Fatalf("lognormal sample %v outside [0,%v]", d, ln.Max)
			}
		}
	})
}

func TestOriginOptionsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		opts OriginOptions
	}{
		{"an error rate above 1", OriginOptions{ErrorRate: 1.5}},
		{"a negative payload", OriginOptions{PayloadBytes: -1}},
		{"an unknown fault", OriginOptions{Fault: "explode"}},
		{"an unknown latency distribution", OriginOptions{Latency: OriginLatency{Dist: "pareto"}}},
		{"an address that cannot be listened on", OriginOptions{Addr: "127.0.0.1:-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			if o, err := StartOrigin(tt.opts); err == nil {
				o.Close()
				t.Fatal("StartOrigin succeeded")
			}
		})
	}
}

func TestOriginUnderConcurrentLoad(t *testing.T) {
	// Several keep-alive clients at once while another goroutine reads the
	// capture: the race detector checks the counters and the ring.
	o := originStart(t, OriginOptions{})
	const clients, perClient = 8, 40
	errs := make(chan error, clients)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
				o.Received()
			}
		}
	}()
	for i := 0; i < clients; i++ {
		go func() {
			c, err := net.DialTimeout("tcp", o.Addr(), originTestTimeout)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(originTestTimeout))
			br := bufio.NewReader(c)
			for j := 1; j <= perClient; j++ {
				io.WriteString(c, originGet("/orders/"+strconv.Itoa(j)))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				if err != nil || resp.StatusCode != 200 {
					errs <- errors.Join(err, errors.New(resp.Status))
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < clients; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	<-readerDone
	if n := o.Requests(); n != clients*perClient {
		t.Errorf("Requests() = %d, want %d", n, clients*perClient)
	}
	if n := len(o.Received()); n != originCaptureSlots {
		t.Errorf("captured %d, want %d", n, originCaptureSlots)
	}
}
