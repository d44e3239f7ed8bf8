package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sharedBase = `
pools:
  orders: {backends: [{addr: 127.0.0.1:9001}]}
routes:
  - name: orders
    match: {path_prefix: /orders}
    pool: orders
`

func TestRedisCacheAndRateLimitsLoadWithTheirDefaults(t *testing.T) {
	cfg, err := Load(writeConfig(t, `
redis: {addrs: [127.0.0.1:6379]}
cache: {memory: 64MiB}
rate_limits:
  per_client: {rate: 100/s, burst: 200}
  api_key: {key: "header:X-API-Key", rate: 6000/m, burst: 100, scope: global, missing: shared}
`+sharedBase+`    cache: {enabled: true, max_entry: 512KiB, key: ["header:Accept-Language"]}
    rate_limits: [per_client, api_key]
    rate_limit_headers: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.Timeout != 20*time.Millisecond || cfg.Cache.Memory != 64<<20 {
		t.Errorf("redis timeout %v, cache memory %d", cfg.Redis.Timeout, cfg.Cache.Memory)
	}
	r := cfg.Routes[0]
	if !r.Cache.Enabled || r.Cache.MaxEntry != 512<<10 || r.Cache.Key[0] != "header:Accept-Language" || !r.RateLimitHeaders {
		t.Errorf("route: %+v", r)
	}
	pc, ak := cfg.RateLimits["per_client"], cfg.RateLimits["api_key"]
	if pc.Name != "per_client" || pc.Key != "ip" || pc.IP6Prefix != 64 || pc.Missing != MissingDeny || pc.Rate != "100/s" || pc.Burst != 200 {
		t.Errorf("per_client: %+v", pc)
	}
	if ak.Scope != "global" || ak.Missing != MissingShared || ak.Key != "header:X-API-Key" {
		t.Errorf("api_key: %+v", ak)
	}
}

func TestSharedSectionsAreRefusedWithTheKeyPath(t *testing.T) {
	tests := []struct {
		name, head, route, want string
	}{
		{"a Redis address without a port", "redis: {addrs: [localhost]}\n", "", "redis.addrs[0]: invalid address"},
		{"a zero Redis timeout", "redis: {addrs: [a:1], timeout: 0s}\n", "", "redis.timeout: must be positive"},
		{"a route entry larger than the cache", "cache: {memory: 1MiB}\n", "    cache: {enabled: true, max_entry: 2MiB}\n", "routes[0].cache.max_entry:"},
		{"a bad cache key part", "", "    cache: {enabled: true, key: [\"body:x\"]}\n", "routes[0].cache.key[0]:"},
		{"a negative heuristic_max", "", "    cache: {enabled: true, heuristic_max: -1s}\n", "routes[0].cache.heuristic_max: -1s must not be negative"},
		{"a negative stale_if_error", "", "    cache: {enabled: true, stale_if_error: -1s}\n", "routes[0].cache.stale_if_error: -1s must not be negative"},
		{"a byte size given as a burst", "rate_limits: {a: {rate: 1/s, burst: 4MiB}}\n", "", "rate_limits.a.burst:"},
		{"a bad rate", "rate_limits: {a: {rate: 100/sec}}\n", "", "rate_limits.a.rate:"},
		{"a bad key", "rate_limits: {a: {rate: 1/s, key: \"path:1\"}}\n", "", "rate_limits.a.key:"},
		{"an unknown missing policy", "rate_limits: {a: {rate: 1/s, missing: allow}}\n", "", "rate_limits.a.missing: unknown policy \"allow\""},
		{"an unknown key in a limit", "rate_limits: {a: {rate: 1/s, brust: 3}}\n", "", "rate_limits.a.brust: unknown key"},
		{"a route naming an unknown limit", "", "    rate_limits: [nope]\n", "routes[0].rate_limits[0]: unknown limit \"nope\""},
		{"a limit listed twice on a route", "rate_limits: {a: {rate: 1/s}}\n", "    rate_limits: [a, a]\n", "routes[0].rate_limits[1]: limit \"a\" is already listed at rate_limits[0]"},
		{"a missing token file", "admin: {token_file: /nonexistent/token}\n", "", "admin.token_file:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.head+sharedBase+tt.route))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if n := strings.Count(err.Error(), tt.want); n != 1 {
				t.Errorf("the problem is reported %d times:\n%v", n, err)
			}
		})
	}
}

func TestReadTokenTrimsAndRefusesAnEmptyFile(t *testing.T) {
	dir := t.TempDir()
	good, empty := filepath.Join(dir, "good"), filepath.Join(dir, "empty")
	_ = os.WriteFile(good, []byte(" s3cret\n"), 0o600)
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	if tok, err := ReadToken(good); err != nil || tok != "s3cret" {
		t.Fatalf("ReadToken = %q, %v", tok, err)
	}
	if _, err := ReadToken(empty); err == nil {
		t.Fatal("an empty token file was accepted")
	}
}
