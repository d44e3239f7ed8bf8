package gateway

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// sharedCacheGateways starts n gateways over one origin and one Redis, with
// an admin token.
func sharedCacheGateways(t *testing.T, n int, opts ...func(*Options)) (*cacheOrigin, *testnet.Redis, []*Server, string) {
	o := startCacheOrigin(t)
	r := testnet.StartRedis(t)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := "redis: {addrs: [" + r.Addr() + "], timeout: 500ms}\nadmin: {listen: 127.0.0.1:0, token_file: " + token + "}\n"
	yaml := strings.Replace(cacheYAML(o.addr, extra), "admin: {listen: 127.0.0.1:0}\n", "", 1)
	var gws []*Server
	for range n {
		gws = append(gws, startGateway(t, yaml, opts...))
	}
	return o, r, gws, "s3cret"
}

func adminDo(t *testing.T, s *Server, method, path, token string) response {
	t.Helper()
	var hdr []string
	if token != "" {
		hdr = []string{"Authorization", "Bearer " + token}
	}
	return do(t, method, "http://"+s.AdminAddr().String()+path, "", hdr...)
}

func TestInstancesShareTheirCacheThroughRedisAndPurgeEverywhere(t *testing.T) {
	t.Parallel()
	o, _, gws, token := sharedCacheGateways(t, 2)
	a, b := gws[0], gws[1]
	path := "/c/shared?cc=max-age%3D60&tag=orders%20all"
	do(t, "GET", a.url(path), "", "Host", "shop.example")
	testnet.Eventually(t, "the entry written to Redis", func() bool { return a.cache.Stats().RedisWrites >= 1 })
	fromB := do(t, "GET", b.url(path), "", "Host", "shop.example")
	if cs := fromB.header.Get("Cache-Status"); !strings.Contains(cs, "detail=l2") || o.count("/c/shared") != 1 {
		t.Fatalf("second instance: %q, backend saw %d", fromB.header.Get("Cache-Status"), o.count("/c/shared"))
	}

	// Admin writes need the token.
	if r := adminDo(t, a, "POST", "/admin/cache/purge?tag=orders", ""); r.status != 401 {
		t.Fatalf("purge without a token: %d", r.status)
	}
	if r := adminDo(t, a, "POST", "/admin/cache/purge?tag=orders", "wrong"); r.status != 401 {
		t.Fatalf("purge with a wrong token: %d", r.status)
	}
	r := adminDo(t, a, "POST", "/admin/cache/purge?tag=orders", token)
	if r.status != 200 || !strings.Contains(r.body, `"local":1`) || !strings.Contains(r.body, `"redis":1`) {
		t.Fatalf("purge by tag: %d %s", r.status, r.body)
	}
	testnet.Eventually(t, "the purge reaching the other instance", func() bool {
		return strings.Contains(do(t, "GET", b.url(path), "", "Host", "shop.example").header.Get("Cache-Status"), "fwd=miss")
	})

	// By URL and by prefix.
	do(t, "GET", a.url("/c/u?cc=max-age%3D60"), "", "Host", "shop.example")
	if r := adminDo(t, a, "POST", "/admin/cache/purge?url=shop.example/c/u?cc=max-age%253D60", token); r.status != 200 || !strings.Contains(r.body, `"local":1`) {
		t.Fatalf("purge by URL: %d %s", r.status, r.body)
	}
	do(t, "GET", a.url("/c/p1?cc=max-age%3D60"), "", "Host", "shop.example")
	do(t, "GET", a.url("/c/p2?cc=max-age%3D60"), "", "Host", "shop.example")
	if r := adminDo(t, a, "POST", "/admin/cache/purge?prefix=shop.example/c/p", token); r.status != 200 || !strings.Contains(r.body, `"local":2`) {
		t.Fatalf("purge by prefix: %d %s", r.status, r.body)
	}
	if r := adminDo(t, a, "POST", "/admin/cache/purge", token); r.status != 400 {
		t.Fatalf("purge without a target: %d", r.status)
	}
}

func TestAdminWritesAreRefusedWithoutAToken(t *testing.T) {
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	r := adminDo(t, s, "POST", "/admin/cache/purge?tag=x", "anything")
	if r.status != 403 || !strings.Contains(r.body, "admin.token_file") {
		t.Fatalf("%d %s, want 403 naming admin.token_file", r.status, r.body)
	}
}

func TestOneFillAcrossInstancesForConcurrentMisses(t *testing.T) {
	t.Parallel()
	o, _, gws, _ := sharedCacheGateways(t, 2)
	o.delay.Store(int64(300 * time.Millisecond))
	// One authority for both, as behind the L4 balancer: the authority the
	// backend is sent is part of the key.
	failed := getConcurrently(200, func(i int) string { return gws[i%2].url("/c/hot?cc=max-age%3D60") }, "shop.example")
	if failed != 0 || o.count("/c/hot") != 1 {
		t.Fatalf("%d failed; the backend saw %d requests, want 1 for both instances", failed, o.count("/c/hot"))
	}
}

func TestRequestsSucceedWhileRedisIsPausedOrKilled(t *testing.T) {
	t.Parallel()
	var logs testnet.Buffer
	o, r, gws, _ := sharedCacheGateways(t, 1, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	s := gws[0]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed, slow, total atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				resp, err := testClient.Get(s.url("/c/k" + string(rune('a'+w)) + "?cc=max-age%3D1&n=" + string(rune('a'+i%20))))
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				} else {
					resp.Body.Close()
				}
				// The Redis timeout is 500ms (generous for -race on a busy machine); a
				// backend answer takes ~1ms.
				if time.Since(start) > 2*time.Second {
					slow.Add(1)
				}
				total.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	r.Pause()
	time.Sleep(500 * time.Millisecond)
	r.Resume()
	time.Sleep(300 * time.Millisecond)
	r.Kill()
	time.Sleep(500 * time.Millisecond)
	r.Restart()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || slow.Load() != 0 || total.Load() < 100 {
		t.Fatalf("%d of %d requests failed, %d took over 2s", failed.Load(), total.Load(), slow.Load())
	}
	_ = o
	// Each outage is told once, and its end once, however many requests
	// fail to reach Redis meanwhile. The outages above may or may not have
	// opened the breaker (most requests are hits in memory); this one does:
	// every request misses memory and finds Redis gone.
	get := func(path string) {
		if resp, err := testClient.Get(s.url(path)); err == nil {
			resp.Body.Close()
		}
	}
	counts := func() (lost, back int) {
		return strings.Count(logs.String(), "cache: redis unreachable"), strings.Count(logs.String(), "cache: redis answers again")
	}
	testnet.Eventually(t, "the cache to see redis again after the traffic", func() bool {
		get("/c/before?cc=max-age%3D1&n=" + strconv.FormatInt(time.Now().UnixNano(), 10))
		lost, back := counts()
		return lost == back
	})
	r.Kill()
	testnet.Eventually(t, "the outage to be logged", func() bool {
		get("/c/down?cc=max-age%3D1&n=" + strconv.FormatInt(time.Now().UnixNano(), 10))
		lost, back := counts()
		return lost > back
	})
	r.Restart()
	testnet.Eventually(t, "the cache to see redis again", func() bool {
		// A probe goes to Redis only with a request, after breaker_cooldown.
		get("/c/up?cc=max-age%3D1&n=" + strconv.FormatInt(time.Now().UnixNano(), 10))
		lost, back := counts()
		return lost == back
	})
	if lost, _ := counts(); lost < 1 || lost > 3 {
		t.Errorf("three outages logged as %d, want one line each at most:\n%s", lost, logs.String())
	}
}

func TestPurgeRefusesAmbiguousTargetsAndAcceptsAnyBearerSpelling(t *testing.T) {
	t.Parallel()
	_, _, gws, token := sharedCacheGateways(t, 1)
	a := gws[0]
	for _, q := range []string{
		"url=shop.example/c/x?a=1&b=2", // the & was not encoded
		"url=shop.example/a&url=shop.example/b",
		"url=shop.example/a&tag=t",
		"url=",
	} {
		if r := adminDo(t, a, "POST", "/admin/cache/purge?"+q, token); r.status != 400 {
			t.Errorf("purge ?%s: %d %s, want 400", q, r.status, r.body)
		}
	}
	do(t, "GET", a.url("/c/s?cc=max-age%3D60"), "", "Host", "shop.example")
	r := do(t, "POST", "http://"+a.AdminAddr().String()+"/admin/cache/purge?url=http://shop.example/c/s%3Fcc%3Dmax-age%253D60", "",
		"Authorization", "bearer "+token)
	if r.status != 200 || !strings.Contains(r.body, `"local":1`) {
		t.Fatalf("purge with a scheme and a lower-case bearer: %d %s", r.status, r.body)
	}
	// The URL as a client on another port wrote it, scheme in capitals.
	do(t, "GET", a.url("/c/s?cc=max-age%3D60"), "", "Host", "shop.example")
	if r := adminDo(t, a, "POST", "/admin/cache/purge?url=HTTP://Shop.Example:8080/c/s%3Fcc%3Dmax-age%253D60", token); r.status != 200 || !strings.Contains(r.body, `"local":1`) {
		t.Fatalf("purge with a port and an upper-case scheme: %d %s", r.status, r.body)
	}
}
