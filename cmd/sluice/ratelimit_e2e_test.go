package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// A client that `sluice bench` drives over its limit gets 429s, while
// another client of the same gateway, at a polite rate, is never refused.
// Clients are told apart by address: both come from loopback, which the
// configuration trusts as a proxy, and each names itself in
// X-Forwarded-For.
func TestAClientOverItsLimitIsRefusedAndOthersAreNot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildBinary(t)
	orig := testnet.FreeAddr(t)
	start(t, bin, "origin", "-listen", orig)
	// The polite client's first request must not race the origin's start.
	testnet.Eventually(t, "the origin to answer", func() bool { st, _, _ := get("http://" + orig + "/healthz"); return st == 200 })
	listen, admin := testnet.FreeAddr(t), testnet.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := fmt.Sprintf(`listen: %s
admin: {listen: %s}
log: {level: info, format: text}
server: {trusted_proxies: [127.0.0.1]}
pools:
  orders: {backends: [{addr: %s}]}
rate_limits:
  per_client: {key: ip, rate: 20/s, burst: 10}
routes:
  - {name: orders, match: {path_prefix: /api/orders}, strip_prefix: /api, pool: orders, rate_limits: [per_client]}
`, listen, admin, orig)
	testnet.WriteFile(t, cfg, yaml)
	start(t, bin, "run", "-c", cfg)
	testnet.Eventually(t, "the gateway to be ready", func() bool { st, _, _ := get("http://" + admin + "/readyz"); return st == 200 })
	url := "http://" + listen + "/api/orders/7"

	// The heavy client: 200 requests a second for 2s, ten times its limit.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	benchDone := make(chan []byte, 1)
	go func() {
		out, _ := exec.CommandContext(ctx, bin, "bench", "-rate", "200", "-duration", "2s", "-warmup", "0", "-c", "4",
			"-max-error-rate", "1", "-max-lag", "1s", "-o", "json", "-H", "X-Forwarded-For: 198.51.100.1", url).Output()
		benchDone <- out // a run full of 429s may count as invalid: the report is what matters
	}()

	// The polite client, meanwhile: 10 requests a second, half its limit.
	polite := 0
	for i := 0; i < 15; i++ {
		if st, _, body := getAs(url, "198.51.100.2"); st == 200 {
			polite++
		} else {
			t.Errorf("polite client, request %d: %d %s, want 200", i+1, st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var report struct {
		Requests int64            `json:"requests"`
		Status   map[string]int64 `json:"status"`
		ElapsedS float64          `json:"elapsed_s"`
	}
	out := <-benchDone
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("bench report: %v\n%s", err, out)
	}
	ok, refused := report.Status["200"], report.Status["429"]
	// 10 at once, then 20 a second (a little slack for the seconds that
	// elapse around the measured run).
	if most := int64(10 + 20*(report.ElapsedS+0.5)); ok > most || ok < 10 {
		t.Errorf("heavy client: %d answered 200 in %.1fs, want 10..%d", ok, report.ElapsedS, most)
	}
	if refused < report.Requests/2 || ok+refused != report.Requests {
		t.Errorf("heavy client: %d requests, %d refused with 429, status counts %v", report.Requests, refused, report.Status)
	}
	t.Logf("heavy client: %d requests in %.1fs, %d passed, %d refused; polite client: %d of %d passed",
		report.Requests, report.ElapsedS, ok, refused, polite, 15)

	// What a refused client is told: the bucket refills while bench exits,
	// so spend it again first.
	for i := 0; ; i++ {
		st, h, body := getAs(url, "198.51.100.1")
		if st == 200 && i < 20 {
			continue
		}
		if st != 429 || h.Get("Retry-After") != "1" || h.Get("RateLimit-Policy") != `"per_client";q=10;w=1` ||
			!strings.Contains(body, `"status":429`) {
			t.Errorf("heavy client: %d %q, Retry-After %q, RateLimit-Policy %q", st, body, h.Get("Retry-After"), h.Get("RateLimit-Policy"))
		}
		break
	}
}

// getAs sends a GET as client ip, through the trusted loopback proxy.
func getAs(url, ip string) (int, http.Header, string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	var b [512]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode, resp.Header, string(b[:n])
}
