package bench

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestScenarioSendsTheWeightedMix(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	bodies := 0
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		defer mu.Unlock()
		key := string(ctx.Method()) + " " + string(ctx.Path())
		seen[key]++
		if ctx.IsPost() && strings.HasPrefix(string(ctx.PostBody()), `{"id":`) &&
			string(ctx.Request.Header.ContentType()) == "application/json" {
			bodies++
		}
	})
	sc, err := LoadScenario("testdata/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, Options{URL: url, Scenario: sc, Connections: 4, Requests: 2000, Duration: 20 * time.Second})
	if res.Requests != 2000 || res.Errors.Total() != 0 {
		t.Fatalf("requests %d errors %+v", res.Requests, res.Errors)
	}
	mu.Lock()
	defer mu.Unlock()
	reads := 0
	for k, n := range seen {
		if strings.HasPrefix(k, "GET /orders/") {
			reads += n
			if k := strings.TrimPrefix(k, "GET /orders/"); !strings.Contains("alpha beta gamma delta", k) {
				t.Errorf("read of unknown key %q", k)
			}
		}
	}
	writes := seen["POST /orders"]
	// 3:1 weights; 2000 draws put reads near 1500 (sd ≈ 19).
	if reads < 1350 || reads > 1650 || reads+writes != 2000 {
		t.Errorf("reads %d writes %d, want about 1500 and 500", reads, writes)
	}
	if bodies != writes {
		t.Errorf("%d of %d writes carried the JSON body and content type", bodies, writes)
	}
	if seen["GET /orders/alpha"] <= seen["GET /orders/delta"] {
		t.Errorf("key:zipf: first key read %d times, last %d: want the first hotter", seen["GET /orders/alpha"], seen["GET /orders/delta"])
	}
}

func TestBadScenariosAreRejected(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"a scenario without requests", "url: http://127.0.0.1:1\n"},
		{"an unknown field", "requests:\n  - path: /\n    wieght: 2\n"},
		{"a negative weight", "requests:\n  - path: /\n    weight: -1\n"},
		{"broken YAML", "requests: [\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is an error", func(t *testing.T) {
			if _, err := ParseScenario([]byte(tc.yaml)); err == nil {
				t.Error("ParseScenario returned no error")
			}
		})
	}
	t.Run("a relative path without any url is an error", func(t *testing.T) {
		sc, err := ParseScenario([]byte("requests:\n  - path: /x\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := sc.specs(""); err == nil {
			t.Error("specs returned no error")
		}
	})
	t.Run("a missing keys file is an error", func(t *testing.T) {
		if _, err := LoadScenario("testdata/no-such-file.yaml"); err == nil {
			t.Error("LoadScenario returned no error")
		}
	})
}
