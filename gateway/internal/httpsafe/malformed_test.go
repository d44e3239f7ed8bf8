package httpsafe

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestMalformedRequestsAreRefusedAndCloseTheConnection(t *testing.T) {
	t.Run("with header names as sent", func(t *testing.T) {
		testMalformedRequests(t, startGate(t, &Options{MergeSlashes: true}, nil))
	})
	t.Run("with header names normalised", func(t *testing.T) {
		testMalformedRequests(t, startGate(t, &Options{MergeSlashes: true}, func(s *fasthttp.Server) {
			s.DisableHeaderNamesNormalizing = false
		}))
	})
}

// With SecureErrorLogMessage the error text has no buffer snippet, so a
// request line longer than the read buffer cannot be told from a large
// header section and is answered 431.
func TestSecureErrorLogMessageTurnsALongRequestLineInto431(t *testing.T) {
	addr := startGate(t, &Options{MergeSlashes: true}, func(s *fasthttp.Server) {
		s.SecureErrorLogMessage = true
	})
	raw := "GET /" + strings.Repeat("a", testnet.RawCaseReadBuffer+10) + " HTTP/1.1\r\nHost: a.example\r\n\r\n"
	if r := sendRaw(t, addr, raw, false); r.status != 431 {
		t.Fatalf("status %d, want 431", r.status)
	}
}

func testMalformedRequests(t *testing.T, addr string) {
	cases := testnet.MalformedRequests()
	if len(cases) < 30 {
		t.Fatalf("testnet.MalformedRequests has %d cases, want 30 or more", len(cases))
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.Name] {
			t.Fatalf("duplicate case name %q", tc.Name)
		}
		seen[tc.Name] = true
		t.Run(tc.Name, func(t *testing.T) {
			r := sendRaw(t, addr, tc.Raw, true)
			if r.status != tc.Status {
				t.Errorf("status %d, want %d (body %s)", r.status, tc.Status, r.body)
			}
			if r.handled == tc.ByServer {
				t.Errorf("handler ran = %v, want %v", r.handled, !tc.ByServer)
			}
			if strings.Contains(r.body, " /") || !strings.HasPrefix(r.body, `{"error":"`) {
				t.Errorf("body %q is not the JSON error", r.body)
			}
			if want := `"status":` + strconv.Itoa(tc.Status) + "}"; !strings.HasSuffix(r.body, want) {
				t.Errorf("body %q does not end in %s", r.body, want)
			}
			var body struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error == "" || body.Status != tc.Status {
				t.Errorf("body %q is not {error, status: %d}: %v", r.body, tc.Status, err)
			}
			if !r.closed {
				t.Errorf("connection left open after the refusal")
			}
		})
	}
}

// testnet.MalformedRequests cannot import this package (it is internal to
// gateway); it assumes the default request-target limit instead.
func TestMalformedRequestsAssumeTheDefaultURILimit(t *testing.T) {
	if testnet.RawCaseMaxURILength != DefaultMaxURILength {
		t.Fatalf("testnet.RawCaseMaxURILength = %d, DefaultMaxURILength = %d: the malformed-request cases test another limit",
			testnet.RawCaseMaxURILength, DefaultMaxURILength)
	}
}
