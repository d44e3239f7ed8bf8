package origin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestFaultsOnTheWire(t *testing.T) {
	t.Run("hang reads the request and never answers", func(t *testing.T) {
		o := startServer(t, Options{Fault: FaultHang})
		c := testnet.Dial(t, o.Addr())
		io.WriteString(c, rawGet("/orders/1"))
		data, closed := c.ReadAll(300 * time.Millisecond)
		if len(data) != 0 || closed {
			t.Fatalf("got %q (closed %v), want silence on an open connection", data, closed)
		}
		waitRequests(t, o, 1)
	})
	t.Run("slow_body sends the headers at once and the body a byte at a time", func(t *testing.T) {
		const interval = 5 * time.Millisecond
		o := startServer(t, Options{Fault: FaultSlowBody, SlowBodyInterval: interval, PayloadBytes: 60})
		c := testnet.Dial(t, o.Addr())
		io.WriteString(c, rawGet("/orders/3"))
		resp, err := http.ReadResponse(c.R, nil)
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
		o := startServer(t, Options{Fault: FaultCloseMidBody})
		c := testnet.Dial(t, o.Addr())
		io.WriteString(c, rawGet("/orders/3"))
		resp, err := http.ReadResponse(c.R, nil)
		if err != nil {
			t.Fatalf("read headers: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) || int64(len(body)) >= resp.ContentLength || len(body) == 0 {
			t.Errorf("read %d of %d body bytes, err %v; want some, then unexpected EOF", len(body), resp.ContentLength, err)
		}
	})
	t.Run("garbage writes non-HTTP bytes and closes", func(t *testing.T) {
		o := startServer(t, Options{Fault: FaultGarbage})
		c := testnet.Dial(t, o.Addr())
		io.WriteString(c, rawGet("/echo/x"))
		data, closed := c.ReadAll(testTimeout)
		if string(data) != faultGarbage || !closed {
			t.Errorf("got %q (closed %v), want %q then close", data, closed, faultGarbage)
		}
	})
	for _, f := range []Fault{FaultExtraBytes, FaultExtraBytesLate} {
		t.Run(string(f)+" follows a valid response with a forged one on an open connection", func(t *testing.T) {
			o := startServer(t, Options{Fault: f})
			c := testnet.Dial(t, o.Addr())
			io.WriteString(c, rawGet("/orders/8"))
			resp, body := c.ReadResponse(t, "")
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"id":8,`)) || resp.Close {
				t.Fatalf("first response %d close=%v %s", resp.StatusCode, resp.Close, body)
			}
			// What a client that reuses the connection would take for the
			// answer to its next request.
			evil, evilBody := c.ReadResponse(t, "")
			if evil.StatusCode != 200 || string(evilBody) != "EVIL!" {
				t.Errorf("extra bytes: %d %q", evil.StatusCode, evilBody)
			}
			if data, closed := c.ReadAll(200 * time.Millisecond); closed || len(data) != 0 {
				t.Errorf("after the extra bytes got %q (closed %v), want an open, quiet connection", data, closed)
			}
		})
	}
	t.Run("5xx answers 500, 502 and 503 in turn on a live connection", func(t *testing.T) {
		o := startServer(t, Options{Fault: Fault5xx})
		c := testnet.Dial(t, o.Addr())
		seen := map[int]bool{}
		for i := 0; i < 3; i++ {
			io.WriteString(c, rawGet("/orders/1"))
			resp, body := c.ReadResponse(t, "")
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
		o := startServer(t, Options{Fault: FaultHealthFail})
		if resp, _ := testnet.Do(t, o.Addr(), rawGet("/healthz")); resp.StatusCode != 503 {
			t.Errorf("healthz %d, want 503", resp.StatusCode)
		}
		if resp, _ := testnet.Do(t, o.Addr(), rawGet("/orders/1")); resp.StatusCode != 200 {
			t.Errorf("orders %d, want 200", resp.StatusCode)
		}
	})
	t.Run("faults other than health_fail leave the health check alone", func(t *testing.T) {
		o := startServer(t, Options{Fault: FaultHang})
		if resp, body := testnet.Do(t, o.Addr(), rawGet("/healthz")); resp.StatusCode != 200 || string(body) != "ok" {
			t.Errorf("healthz %d %q", resp.StatusCode, body)
		}
	})
	t.Run("an error rate of 1 fails every order request", func(t *testing.T) {
		o := startServer(t, Options{ErrorRate: 1})
		if resp, _ := testnet.Do(t, o.Addr(), rawGet("/orders/1")); resp.StatusCode != 500 {
			t.Errorf("status %d, want 500", resp.StatusCode)
		}
		if resp, _ := testnet.Do(t, o.Addr(), rawGet("/echo/1")); resp.StatusCode != 200 {
			t.Errorf("echo status %d, want 200: the error rate is for orders", resp.StatusCode)
		}
	})
}

func TestFaultSwitching(t *testing.T) {
	o := startServer(t, Options{})
	t.Run("SetFault applies to the next request", func(t *testing.T) {
		o.SetFault(Fault5xx)
		if resp, _ := testnet.Do(t, o.Addr(), rawGet("/orders/1")); resp.StatusCode < 500 {
			t.Errorf("status %d under 5xx", resp.StatusCode)
		}
		o.SetFault(FaultNone)
		if resp, _ := testnet.Do(t, o.Addr(), rawGet("/orders/1")); resp.StatusCode != 200 {
			t.Errorf("status %d after clearing the fault", resp.StatusCode)
		}
	})
	t.Run("the control endpoint switches the mode and reports it", func(t *testing.T) {
		resp, body := testnet.Do(t, o.Addr(), rawPost("/_origin/fault?mode=health_fail", ""))
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"fault":"health_fail"`)) {
			t.Fatalf("control: %d %s", resp.StatusCode, body)
		}
		if o.Fault() != FaultHealthFail {
			t.Errorf("Fault() = %q", o.Fault())
		}
		if resp, _ := testnet.Do(t, o.Addr(), rawGet("/healthz")); resp.StatusCode != 503 {
			t.Errorf("healthz %d, want 503", resp.StatusCode)
		}
		testnet.Do(t, o.Addr(), rawPost("/_origin/fault?mode=none", ""))
		if o.Fault() != FaultNone {
			t.Errorf("Fault() = %q after mode=none", o.Fault())
		}
	})
	t.Run("the control endpoint refuses an unknown mode", func(t *testing.T) {
		if resp, _ := testnet.Do(t, o.Addr(), rawPost("/_origin/fault?mode=explode", "")); resp.StatusCode != 400 {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("stats report the request count and the mode", func(t *testing.T) {
		_, body := testnet.Do(t, o.Addr(), rawGet("/_origin/stats"))
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
