package gateway

import (
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// TestMaxForwards: a TRACE or OPTIONS with Max-Forwards: 0 is answered by
// the gateway as the final recipient and never reaches a backend; a larger
// value is decremented on the forwarded request (RFC 9110 §7.6.2). Other
// methods, and a value that is not a number, go on untouched.
func TestMaxForwards(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	tests := []struct {
		name      string
		method    string
		value     string
		forwarded string // the Max-Forwards the backend gets; "-" for no request at all
		body      string // what the gateway's own answer's body starts with
	}{
		{"TRACE at 0", "TRACE", "0", "-", "TRACE /echo/x HTTP/1.1\r\n"},
		{"OPTIONS at 0", "OPTIONS", "0", "-", ""},
		{"OPTIONS at 5", "OPTIONS", "5", "4", ""},
		{"TRACE at 1", "TRACE", "1", "0", ""},
		{"TRACE with a value that is no number", "TRACE", "x1", "x1", ""},
		{"GET at 0", "GET", "0", "0", ""},
		{"OPTIONS at a value over the most forwarded", "OPTIONS", "99999999999999999999999", "2147483646", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(o.Received())
			raw := tt.method + " /echo/x HTTP/1.1\r\nHost: a\r\nMax-Forwards: " + tt.value +
				"\r\nCookie: secret=1\r\nX-Api-Key: secret\r\nX-Probe: p\r\nConnection: close\r\n\r\n"
			status, resp := testnet.RawExchange(t, s.Addr().String(), raw)
			if status != 200 {
				t.Fatalf("status %d\n%.400s", status, resp)
			}
			got := o.Received()[before:]
			if tt.forwarded == "-" {
				if len(got) != 0 {
					t.Fatalf("the backend got %d requests, want none", len(got))
				}
				_, body, _ := strings.Cut(resp, "\r\n\r\n")
				if !strings.HasPrefix(body, tt.body) || strings.Contains(body, "secret") ||
					tt.method == "TRACE" && (!strings.Contains(resp, "message/http") || !strings.Contains(body, "X-Probe: p\r\n")) {
					t.Errorf("answer:\n%s", resp)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("the backend got %d requests, want 1", len(got))
			}
			if v := got[0].Values("Max-Forwards"); len(v) != 1 || v[0] != tt.forwarded {
				t.Errorf("backend got Max-Forwards %q, want %q", v, tt.forwarded)
			}
		})
	}
}

// Two Max-Forwards fields: the first counts, and the request goes on with
// one field, its value less one.
func TestMaxForwardsInTwoFieldsGoesOnAsOneLowered(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	status, resp := testnet.RawExchange(t, s.Addr().String(),
		"OPTIONS /echo/x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 5\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n")
	if status != 200 {
		t.Fatalf("status %d\n%.300s", status, resp)
	}
	if v := lastReceived(t, o).Values("Max-Forwards"); len(v) != 1 || v[0] != "4" {
		t.Errorf("backend got Max-Forwards %q, want [4]", v)
	}
}
