package gateway

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// countingBackend answers every request with status and its own name, and
// counts requests by method.
type countingBackend struct {
	name   string
	addr   string
	status atomic.Int32
	gets   atomic.Int64
	posts  atomic.Int64
	hold   chan struct{} // when set, requests wait on it
}

func startCounting(t *testing.T, name string) *countingBackend {
	cb := &countingBackend{name: name}
	cb.status.Store(200)
	cb.addr = testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		if ctx.IsPost() {
			cb.posts.Add(1)
		} else {
			cb.gets.Add(1)
		}
		if cb.hold != nil {
			<-cb.hold
		}
		ctx.SetStatusCode(int(cb.status.Load()))
		ctx.SetBodyString(cb.name)
	})
	return cb
}

func (cb *countingBackend) total() int64 { return cb.gets.Load() + cb.posts.Load() }

func poolsYAML(pools map[string][]string) string {
	var b strings.Builder
	b.WriteString("listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nlog: {level: error}\npools:\n")
	for name, addrs := range pools {
		fmt.Fprintf(&b, "  %s:\n    timeout: 2s\n    backends:\n", name)
		for _, a := range addrs {
			fmt.Fprintf(&b, "      - {addr: %s}\n", a)
		}
	}
	return b.String()
}

func TestShardedRouteSendsEachKeyToOneShard(t *testing.T) {
	t.Parallel()
	shards := []*countingBackend{startCounting(t, "s0"), startCounting(t, "s1"), startCounting(t, "s2")}
	yaml := poolsYAML(map[string][]string{"shard0": {shards[0].addr}, "shard1": {shards[1].addr}, "shard2": {shards[2].addr}}) +
		"routes:\n  - name: orders\n    match: {path_prefix: /orders}\n    shards: {key: \"header:X-Customer-ID\", pools: [shard0, shard1, shard2]}\n"
	s := startGateway(t, yaml)

	seen := map[string]string{}
	perShard := map[string]int{}
	for i := range 300 {
		id := fmt.Sprintf("customer-%d", i)
		for range 2 {
			r := do(t, "GET", s.url("/orders/1"), "", "X-Customer-ID", id)
			if r.status != 200 {
				t.Fatalf("%s: status %d", id, r.status)
			}
			if prev, ok := seen[id]; ok && prev != r.body {
				t.Fatalf("%s went to %s, then to %s", id, prev, r.body)
			}
			seen[id] = r.body
		}
		perShard[seen[id]]++
	}
	for _, sh := range shards {
		if n := perShard[sh.name]; n < 60 {
			t.Errorf("shard %s got %d of 300 keys; want a fair share: %v", sh.name, n, perShard)
		}
	}

	before := shards[0].total() + shards[1].total() + shards[2].total()
	r := do(t, "GET", s.url("/orders/1"), "")
	if r.status != 400 || !strings.Contains(r.body, "shard key") {
		t.Fatalf("request without the shard key: %d %q, want 400 naming the shard key", r.status, r.body)
	}
	if after := shards[0].total() + shards[1].total() + shards[2].total(); after != before {
		t.Fatalf("a request without a shard key reached a backend")
	}
}

func TestShardMapGrowsByMovingKeysOnlyToTheNewShard(t *testing.T) {
	t.Parallel()
	a, b, c := startCounting(t, "a"), startCounting(t, "b"), startCounting(t, "c")
	base := poolsYAML(map[string][]string{"a": {a.addr}, "b": {b.addr}, "c": {c.addr}}) +
		"routes:\n  - name: orders\n    match: {path_prefix: /orders}\n    shards: {key: \"query:customer\", pools: [%s]}\n"
	two := startGateway(t, fmt.Sprintf(base, "a, b"))
	three := startGateway(t, fmt.Sprintf(base, "a, b, c"))
	moved := 0
	const keys = 300
	for i := range keys {
		path := fmt.Sprintf("/orders?x=1&customer=%d", i)
		before, after := do(t, "GET", two.url(path), "").body, do(t, "GET", three.url(path), "").body
		if before != after {
			if after != "c" {
				t.Fatalf("key %d moved from %s to %s: only moves to the new shard are allowed", i, before, after)
			}
			moved++
		}
	}
	// 1/3 of the keys should move; allow for chance.
	if moved < keys/5 || moved > keys/2 {
		t.Fatalf("%d of %d keys moved to the new shard; want about a third", moved, keys)
	}
	t.Logf("%d of %d keys (%.0f%%) moved when a third shard was appended", moved, keys, 100*float64(moved)/keys)
}

func TestRetriesGoToAnotherBackendOnlyWhenSafe(t *testing.T) {
	bad, good := startCounting(t, "bad"), startCounting(t, "good")
	bad.status.Store(503)
	yaml := poolsYAML(map[string][]string{"orders": {bad.addr, good.addr}}) +
		"routes:\n  - name: orders\n    match: {path_prefix: /orders}\n    pool: orders\n    retries: {attempts: 2, on: [503], budget: 100%, min_per_second: 1000}\n"
	// Ejection would take the failing backend out; this test is about
	// what is retried while it is in. Round robin sends every other POST
	// to the failing backend: under p2c_ewma a latency average twice the
	// other's (loopback noise) could keep every POST from it.
	yaml = strings.Replace(yaml, "timeout: 2s\n", "timeout: 2s\n    policy: round_robin\n    outlier_detection: {consecutive_failures: -1}\n", 1)
	s := startGateway(t, yaml)

	for i := range 20 {
		if r := do(t, "GET", s.url("/orders"), ""); r.status != 200 || r.body != "good" {
			t.Fatalf("GET %d: %d %q; a 503 must be retried on the other backend", i, r.status, r.body)
		}
	}
	// POST without Idempotency-Key: the backend that answered 503 may have
	// acted on it, so the 503 stands and nothing is sent twice.
	var got503 int
	for range 20 {
		r := do(t, "POST", s.url("/orders"), `{"item":1}`)
		if r.status == 503 {
			got503++
		}
	}
	if bad.posts.Load()+good.posts.Load() != 20 {
		t.Fatalf("20 POSTs reached the backends %d times; a POST without Idempotency-Key must never be sent twice", bad.posts.Load()+good.posts.Load())
	}
	if got503 == 0 {
		t.Fatal("no POST saw the 503; the test did not exercise the non-retry path")
	}
	posts := bad.posts.Load() + good.posts.Load()
	for i := range 20 {
		r := do(t, "POST", s.url("/orders"), `{"item":1}`, "Idempotency-Key", fmt.Sprintf("k-%d", i))
		if r.status != 200 {
			t.Fatalf("POST with Idempotency-Key: %d, want it retried to 200", r.status)
		}
	}
	if n := bad.posts.Load() + good.posts.Load() - posts; n < 20 || n > 40 {
		t.Fatalf("20 POSTs with Idempotency-Key reached backends %d times", n)
	}
}

func TestRetryBudgetCapsRetriesWhenEveryBackendFails(t *testing.T) {
	t.Parallel()
	a, b := startCounting(t, "a"), startCounting(t, "b")
	a.status.Store(503)
	b.status.Store(503)
	yaml := poolsYAML(map[string][]string{"orders": {a.addr, b.addr}}) +
		"routes:\n  - name: orders\n    match: {path_prefix: /orders}\n    pool: orders\n    retries: {attempts: 3, on: [503], budget: 10%, min_per_second: 1}\n"
	yaml = strings.Replace(yaml, "timeout: 2s\n", "timeout: 2s\n    outlier_detection: {consecutive_failures: -1}\n", 1)
	s := startGateway(t, yaml)
	const n = 200
	for range n {
		if r := do(t, "GET", s.url("/orders"), ""); r.status != 503 {
			t.Fatalf("status %d, want the backends' 503", r.status)
		}
	}
	sent := a.total() + b.total()
	retries := sent - n
	// 10% of 200 plus the minimum of 1/s over the test's few seconds.
	if retries > n/10+15 {
		t.Fatalf("%d retries for %d requests with every backend failing; the 10%% budget allows about %d", retries, n, n/10)
	}
	t.Logf("%d requests, every backend failing: %d retries (%.2f per request)", n, retries, float64(retries)/n)
	body := scrape(t, s)
	if !strings.Contains(body, `sluice_retries_total{result="budget_exhausted",route="orders"}`) {
		t.Fatalf("metrics lack the budget_exhausted count:\n%s", testnet.Lines(body, "sluice_retries_total"))
	}
}

func TestATimedOutTryIsRetriedWithinTheRouteDeadline(t *testing.T) {
	t.Parallel()
	slow, fast := startCounting(t, "slow"), startCounting(t, "fast")
	slow.hold = make(chan struct{})
	t.Cleanup(func() { close(slow.hold) })
	yaml := poolsYAML(map[string][]string{"orders": {slow.addr, fast.addr}}) +
		"routes:\n  - name: orders\n    match: {path_prefix: /orders}\n    pool: orders\n    timeout: 2s\n    retries: {attempts: 2, on: [timeout], per_try_timeout: 200ms}\n"
	s := startGateway(t, yaml)
	for i := range 6 {
		start := time.Now()
		r := do(t, "GET", s.url("/orders"), "")
		if r.status != 200 || r.body != "fast" {
			t.Fatalf("GET %d: %d %q, want the slow try retried on the fast backend", i, r.status, r.body)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("GET %d took %v; the per-try timeout is 200ms", i, d)
		}
	}
}

func TestLowPriorityRoutesAreShedFirst(t *testing.T) {
	t.Parallel()
	hold := startCounting(t, "hold")
	hold.hold = make(chan struct{})
	free := startCounting(t, "free")
	yaml := poolsYAML(map[string][]string{"held": {hold.addr}, "free": {free.addr}}) +
		"server: {max_concurrency: 10}\n" +
		"routes:\n" +
		"  - {name: held, match: {path_prefix: /held}, pool: held}\n" +
		"  - {name: low, match: {path_prefix: /low}, pool: free, priority: low}\n" +
		"  - {name: high, match: {path_prefix: /high}, pool: free, priority: high}\n"
	s := startGateway(t, yaml)
	var wg sync.WaitGroup
	for range 8 { // 80% of max_concurrency: past low's 75%, under high's 100%
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, "GET", s.url("/held"), "")
		}()
	}
	defer func() { close(hold.hold); wg.Wait() }()
	testnet.Eventually(t, "8 requests held", func() bool { return hold.gets.Load() == 8 })

	r := do(t, "GET", s.url("/low"), "")
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("low priority at 80%% of max_concurrency: %d (Retry-After %q), want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if free.total() != 0 {
		t.Fatal("a shed request reached the backend")
	}
	if r := do(t, "GET", s.url("/high"), ""); r.status != 200 {
		t.Fatalf("high priority at 80%% of max_concurrency: %d, want 200", r.status)
	}
	if body := scrape(t, s); !strings.Contains(body, `sluice_shed_total{route="low"} 1`) {
		t.Fatalf("shed requests not counted:\n%s", testnet.Lines(body, "sluice_shed_total"))
	}
}

// scrape returns the gateway's /metrics page.
func scrape(t *testing.T, s *Server) string {
	t.Helper()
	return do(t, "GET", "http://"+s.AdminAddr().String()+"/metrics", "").body
}

func TestConsistentHashPoolKeepsAKeyOnOneBackend(t *testing.T) {
	t.Parallel()
	bs := []*countingBackend{startCounting(t, "a"), startCounting(t, "b"), startCounting(t, "c")}
	yaml := "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nlog: {level: error}\npools:\n" +
		"  orders:\n    policy: consistent_hash\n    hash_key: \"cookie:session\"\n    backends:\n" +
		fmt.Sprintf("      - {addr: %s}\n      - {addr: %s}\n      - {addr: %s}\n", bs[0].addr, bs[1].addr, bs[2].addr) +
		"routes:\n  - {name: orders, match: {path_prefix: /orders}, pool: orders}\n"
	s := startGateway(t, yaml)
	owners := map[string]int{}
	for i := range 60 {
		cookie := fmt.Sprintf("session=s%d", i)
		first := do(t, "GET", s.url("/orders"), "", "Cookie", cookie).body
		for range 3 {
			if got := do(t, "GET", s.url("/orders"), "", "Cookie", cookie).body; got != first {
				t.Fatalf("session s%d went to %s, then %s", i, first, got)
			}
		}
		owners[first]++
	}
	if len(owners) != 3 {
		t.Fatalf("60 sessions landed on %v; want all three backends used", owners)
	}
}
