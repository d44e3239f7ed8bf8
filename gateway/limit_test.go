package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// limitBackend is a backend that answers 200 "ok" to everything, with a
// RateLimit field of its own that a route with rate_limit_headers must
// replace.
func limitBackend(t *testing.T) string {
	t.Helper()
	return testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("RateLimit", `"backend";r=99;t=1`)
		ctx.SetBodyString("ok")
	})
}

// limitYAML is a gateway on backend with the given rate_limits section
// (YAML lines indented by two spaces) that trusts 127.0.0.1 as a proxy, so
// that tests speak for many clients through X-Forwarded-For. Route "orders"
// (/api/orders) has routeLimits ("[per_client]", say) and route "open"
// (/open) has none.
func limitYAML(backend, limits, routeLimits string, headers bool) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: error}
server: {trusted_proxies: [127.0.0.1]}
pools:
  app: {backends: [{addr: %s}], timeout: 2s}
rate_limits:
%s
routes:
  - {name: orders, match: {path_prefix: /api/orders}, pool: app, rate_limits: %s, rate_limit_headers: %t}
  - {name: open, match: {path_prefix: /open}, pool: app}
`, backend, limits, routeLimits, headers)
}

// from sends a GET to s as the client ip (through the trusted loopback
// proxy), with header pairs after it.
func from(t *testing.T, s *Server, path, ip string, header ...string) response {
	t.Helper()
	if ip != "" {
		header = append(header, "X-Forwarded-For", ip)
	}
	return do(t, "GET", s.url(path), "", header...)
}

func adminGet(t *testing.T, s *Server, path string) response {
	t.Helper()
	return do(t, "GET", "http://"+s.AdminAddr().String()+path, "")
}

func TestAClientOverItsLimitGets429AndOthersPass(t *testing.T) {
	s := startGateway(t, limitYAML(limitBackend(t), "  per_client: {key: ip, rate: 1/m, burst: 2}", "[per_client]", false))

	for i := 0; i < 2; i++ {
		if r := from(t, s, "/api/orders/1", "198.51.100.1"); r.status != 200 {
			t.Fatalf("request %d within the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := from(t, s, "/api/orders/1", "198.51.100.1")
	if r.status != 429 {
		t.Fatalf("third request: %d %s, want 429", r.status, r.body)
	}
	var body struct {
		Error     string `json:"error"`
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("429 body %q is not JSON: %v", r.body, err)
	}
	if body.Status != 429 || body.Error != "rate limit per_client exceeded" || body.RequestID != r.header.Get("X-Request-Id") || body.RequestID == "" {
		t.Errorf("429 body = %+v (X-Request-Id %q)", body, r.header.Get("X-Request-Id"))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	// 1/m with a burst of 2: one token comes back in 60s, the bucket is
	// full again in 120s.
	for field, want := range map[string]string{
		"Retry-After":      "60",
		"RateLimit-Policy": `"per_client";q=2;w=120`,
		"RateLimit":        `"per_client";r=0;t=120`,
	} {
		if got := r.header.Get(field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	// Spelled as on an allowed response, not as fasthttp normalises it
	// ("Ratelimit-Policy").
	status, all := testnet.RawExchange(t, s.Addr().String(),
		"GET /api/orders/1 HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n")
	if status != 429 || !strings.Contains(all, "\r\nRateLimit-Policy: ") || !strings.Contains(all, "\r\nRateLimit: ") {
		t.Errorf("the fields of a 429 are not spelled RateLimit-Policy and RateLimit:\n%s", all)
	}

	if r := from(t, s, "/api/orders/1", "198.51.100.2"); r.status != 200 {
		t.Errorf("another client: %d %s, want 200", r.status, r.body)
	}
	if r := from(t, s, "/open/1", "198.51.100.1"); r.status != 200 {
		t.Errorf("the limited client on a route without the limit: %d, want 200", r.status)
	}
	if r.header.Get("RateLimit") == "" {
		t.Error("a route without rate_limit_headers must still send them with a 429")
	}
}

func TestRouteWithRateLimitHeadersShowsTheAllowanceLeft(t *testing.T) {
	limits := "  per_client: {key: ip, rate: 10/s, burst: 5}\n  per_key: {key: \"header:X-API-Key\", rate: 100/m}"
	s := startGateway(t, limitYAML(limitBackend(t), limits, "[per_client, per_key]", true))

	for i := 1; i <= 3; i++ {
		r := from(t, s, "/api/orders/1", "198.51.100.7", "X-API-Key", "k1")
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		if got, want := r.header.Get("RateLimit-Policy"), `"per_client";q=5;w=1, "per_key";q=100;w=60`; got != want {
			t.Errorf("RateLimit-Policy = %q, want %q", got, want)
		}
		// The backend's own RateLimit field is replaced, not added to.
		if got := r.header.Values("RateLimit"); len(got) != 1 ||
			!strings.HasPrefix(got[0], fmt.Sprintf(`"per_client";r=%d;t=`, 5-i)) ||
			!strings.Contains(got[0], fmt.Sprintf(`, "per_key";r=%d;t=`, 100-i)) {
			t.Errorf("request %d: RateLimit = %q", i, got)
		}
	}
	// A route without the option passes the backend's field through.
	if got := from(t, s, "/open/1", "198.51.100.7").header.Get("RateLimit"); got != `"backend";r=99;t=1` {
		t.Errorf("RateLimit on a route without limits = %q, want the backend's", got)
	}
}

func TestARequestWithoutTheKeyIsNeverUnlimited(t *testing.T) {
	t.Parallel()
	backend := limitBackend(t)
	t.Run("missing: deny refuses it and says why", func(t *testing.T) {
		s := startGateway(t, limitYAML(backend, `  per_key: {key: "header:X-API-Key", rate: 1/m, burst: 5}`, "[per_key]", false))
		r := from(t, s, "/api/orders/1", "")
		if r.status != 429 || !strings.Contains(r.body, "lacks its client key (header:X-API-Key)") {
			t.Fatalf("no key: %d %s, want 429 naming the key", r.status, r.body)
		}
		// Two copies that disagree: which one a backend reads is anyone's
		// guess, so the request has no key.
		r = from(t, s, "/api/orders/1", "", "X-API-Key", "a", "X-API-Key", "b")
		if r.status != 429 || !strings.Contains(r.body, "lacks its client key") {
			t.Errorf("two different keys: %d %s, want 429", r.status, r.body)
		}
		if r := from(t, s, "/api/orders/1", "", "X-API-Key", "a", "X-API-Key", "a"); r.status != 200 {
			t.Errorf("the same key twice: %d %s, want 200", r.status, r.body)
		}
	})
	t.Run("missing: shared counts every such request in one bucket", func(t *testing.T) {
		s := startGateway(t, limitYAML(backend, `  per_key: {key: "header:X-API-Key", rate: 1/m, burst: 2, missing: shared}`, "[per_key]", false))
		for i, ip := range []string{"198.51.100.1", "198.51.100.2"} {
			if r := from(t, s, "/api/orders/1", ip); r.status != 200 {
				t.Fatalf("keyless request %d: %d", i+1, r.status)
			}
		}
		if r := from(t, s, "/api/orders/1", "198.51.100.3"); r.status != 429 {
			t.Errorf("third keyless request, from yet another address: %d, want 429 (one shared bucket)", r.status)
		}
		if r := from(t, s, "/api/orders/1", "198.51.100.3", "X-API-Key", "k"); r.status != 200 {
			t.Errorf("a request with a key: %d, want 200", r.status)
		}
	})
}

func TestClientKeys(t *testing.T) {
	backend := limitBackend(t)
	limits := `  pair: {key: "header:A+header:B", rate: 1/m, burst: 1}
  by_query: {key: "query:api_key", rate: 1/m, burst: 1}
  by_cookie: {key: "cookie:session", rate: 1/m, burst: 1}
  per_net: {key: ip, rate: 1/m, burst: 1}
  per_host: {key: ip, ip6_prefix: 128, rate: 1/m, burst: 1}`
	yaml := limitYAML(backend, limits, "[pair]", false) +
		"  - {name: q, match: {path_prefix: /q}, pool: app, rate_limits: [by_query]}\n" +
		"  - {name: c, match: {path_prefix: /c}, pool: app, rate_limits: [by_cookie]}\n" +
		"  - {name: net, match: {path_prefix: /net}, pool: app, rate_limits: [per_net]}\n" +
		"  - {name: host, match: {path_prefix: /host}, pool: app, rate_limits: [per_host]}\n"
	s := startGateway(t, yaml)

	steps := []struct {
		what   string
		path   string
		ip     string
		header []string
		want   int
	}{
		{"A=a B=bc", "/api/orders", "", []string{"A", "a", "B", "bc"}, 200},
		{"A=ab B=c is another client", "/api/orders", "", []string{"A", "ab", "B", "c"}, 200},
		{"A=a B=bc again", "/api/orders", "", []string{"A", "a", "B", "bc"}, 429},

		{"query key", "/q?api_key=abc", "", nil, 200},
		{"the same query key percent-encoded", "/q?x=1&api_key=a%62c", "", nil, 429},
		{"another query key", "/q?api_key=abd", "", nil, 200},

		{"cookie key", "/c", "", []string{"Cookie", "theme=dark; session=s1"}, 200},
		{"the same cookie", "/c", "", []string{"Cookie", "session=s1"}, 429},
		{"another cookie", "/c", "", []string{"Cookie", "session=s2"}, 200},

		{"an IPv6 client", "/net", "2001:db8:1:2::1", nil, 200},
		{"another address of the same /64", "/net", "2001:db8:1:2:ffff:ffff:ffff:ffff", nil, 429},
		{"the next /64", "/net", "2001:db8:1:3::1", nil, 200},
		{"an IPv4 client", "/net", "198.51.100.1", nil, 200},
		{"the next IPv4 address", "/net", "198.51.100.2", nil, 200},

		{"ip6_prefix 128: one address", "/host", "2001:db8:1:2::1", nil, 200},
		{"ip6_prefix 128: its neighbour is another client", "/host", "2001:db8:1:2::2", nil, 200},
		{"ip6_prefix 128: the first again", "/host", "2001:db8:1:2::1", nil, 429},
	}
	for _, st := range steps {
		if r := from(t, s, st.path, st.ip, st.header...); r.status != st.want {
			t.Errorf("%s: %d %s, want %d", st.what, r.status, r.body, st.want)
		}
	}
}

func TestLongKeyValuesAreHashed(t *testing.T) {
	long := strings.Repeat("k", 10_000)
	short := framePart([]byte(long[:maxKeyValue]), 0)
	if want := strconv.Itoa(maxKeyValue) + ":" + long[:maxKeyValue]; string(short) != want {
		t.Errorf("a value of %d bytes is kept: %q", maxKeyValue, short)
	}
	hashed := framePart([]byte(long), 0)
	if len(hashed) != len("33:#")+32 || !strings.HasPrefix(string(hashed), "33:#") {
		t.Errorf("a 10,000-byte value became %q, want 33:# and 32 hex digits", hashed)
	}
	if other := framePart([]byte(long+"x"), 0); string(other) == string(hashed) {
		t.Error("two long values share a key")
	}
}

func TestReloadKeepsTheStateOfUnchangedLimits(t *testing.T) {
	t.Parallel()
	backend := limitBackend(t)
	yaml := func(changedRate, keptKey string) string {
		limits := fmt.Sprintf("  kept: {key: %s, rate: 1/m, burst: 2}\n  changed: {key: ip, rate: %s, burst: 2}", keptKey, changedRate)
		return limitYAML(backend, limits, "[kept]", false) +
			"  - {name: other, match: {path_prefix: /other}, pool: app, rate_limits: [changed]}\n"
	}
	path := writeConfig(t, yaml("1/m", "ip"))
	s := startGateway(t, yaml("1/m", "ip"))
	spend := func(p string) {
		t.Helper()
		for i := 0; i < 2; i++ {
			from(t, s, p, "198.51.100.1")
		}
		if r := from(t, s, p, "198.51.100.1"); r.status != 429 {
			t.Fatalf("%s: %d after the burst, want 429", p, r.status)
		}
	}
	spend("/api/orders/1")
	spend("/other/1")
	keptBefore := s.table.Load().limits["kept"].lim

	if err := os.WriteFile(path, []byte(yaml("100/s", "ip")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if r := from(t, s, "/api/orders/1", "198.51.100.1"); r.status != 429 {
		t.Errorf("unchanged limit after a reload: %d, want 429 (the client's bucket kept)", r.status)
	}
	// At 100/s a token is back within 10ms, so the client passes at once;
	// the bucket was not refilled by the reload itself (burst 2 → 2 passes
	// only after 20ms). Polled, since the test may be slow.
	testnet.Eventually(t, "the new rate to apply to the client's bucket", func() bool {
		return from(t, s, "/other/1", "198.51.100.1").status == 200
	})
	if got := adminGet(t, s, "/metrics").body; !strings.Contains(got, `sluice_ratelimit_requests_total{limit="kept",result="denied",route="orders"} 2`) {
		t.Errorf("the route's counters did not carry over the reload:\n%s", testnet.Lines(got, "sluice_ratelimit_requests_total"))
	}

	// A changed key counts other things: the state starts afresh.
	if err := os.WriteFile(path, []byte(yaml("100/s", `"ip+header:X-Tenant"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if s.table.Load().limits["kept"].lim == keptBefore {
		t.Error("a limit whose key changed kept its limiter")
	}
	if r := from(t, s, "/api/orders/1", "198.51.100.1", "X-Tenant", "t"); r.status != 200 {
		t.Errorf("after the key changed: %d, want 200 (new buckets)", r.status)
	}
}

func TestAdminShowsOneClientsStateAndMetricsCountDecisions(t *testing.T) {
	t.Parallel()
	limits := "  per_client: {key: ip, rate: 1/m, burst: 3}\n  pair: {key: \"ip+query:k\", rate: 1/m, burst: 3, missing: shared}"
	s := startGateway(t, limitYAML(limitBackend(t), limits, "[per_client]", false))
	for i := 0; i < 4; i++ {
		from(t, s, "/api/orders/1", "2001:db8::1")
	}

	var v limitStateView
	r := adminGet(t, s, "/admin/ratelimits/per_client?key=2001:db8::ffff")
	if err := json.Unmarshal([]byte(r.body), &v); r.status != 200 || err != nil {
		t.Fatalf("admin: %d %s (%v)", r.status, r.body, err)
	}
	want := limitStateView{Limit: "per_client", Scope: "local", Key: "13:2001:db8::/64", Policy: `"per_client";q=3;w=180`,
		Allowed: false, Quota: 3, Remaining: 0}
	got := v
	got.ResetAfterSeconds, got.RetryAfterSeconds = 0, 0
	if got != want || v.RetryAfterSeconds <= 0 || v.ResetAfterSeconds <= 0 {
		t.Errorf("state of the spent client (another address of its /64) = %+v, want %+v", v, want)
	}

	for _, tt := range []struct {
		query  string
		status int
		has    string
	}{
		{"/admin/ratelimits/per_client?key=198.51.100.9", 200, `"remaining": 3`},
		{"/admin/ratelimits/pair?key=198.51.100.9&key=abc", 200, `"key": "12:198.51.100.93:abc"`},
		{"/admin/ratelimits/pair", 200, `"key": "missing"`},
		{"/admin/ratelimits/pair?key=198.51.100.9", 400, "give key= once for each"},
		{"/admin/ratelimits/per_client", 400, "needs key=ip"},
		{"/admin/ratelimits/per_client?key=nonsense", 400, "ip"},
		{"/admin/ratelimits/nope?key=1.2.3.4", 404, "no rate limit named nope"},
	} {
		if r := adminGet(t, s, tt.query); r.status != tt.status || !strings.Contains(r.body, tt.has) {
			t.Errorf("GET %s: %d %s, want %d with %q", tt.query, r.status, r.body, tt.status, tt.has)
		}
	}

	metrics := adminGet(t, s, "/metrics").body
	for _, line := range []string{
		`sluice_ratelimit_requests_total{limit="per_client",result="allowed",route="orders"} 3`,
		`sluice_ratelimit_requests_total{limit="per_client",result="denied",route="orders"} 1`,
		`sluice_ratelimit_keys{limit="per_client"} 1`,
		`sluice_ratelimit_degraded{limit="per_client"} 0`,
		`sluice_ratelimit_evictions_total{limit="pair"} 0`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s; have:\n%s", line, testnet.Lines(metrics, "sluice_ratelimit"))
		}
	}
}

func TestAGlobalLimitWithoutRedisSaysItIsEnforcedPerInstance(t *testing.T) {
	var log testnet.Buffer
	yaml := limitYAML(limitBackend(t), "  per_key: {key: \"header:X-API-Key\", rate: 100/s, scope: global}", "[per_key]", false)
	s := startGateway(t, yaml, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	if !strings.Contains(log.String(), "enforced per instance") || !strings.Contains(log.String(), "limit=per_key") {
		t.Errorf("start-up log does not say the global limit is per instance:\n%s", log.String())
	}
	if r := from(t, s, "/api/orders/1", "", "X-API-Key", "k"); r.status != 200 {
		t.Errorf("request: %d", r.status)
	}
}
