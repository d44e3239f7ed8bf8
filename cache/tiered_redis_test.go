package cache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// newTestTieredRedis builds one gateway instance's cache: its own L1, L2 on
// client c (shared with other instances in the test).
func newTestTieredRedis(t testing.TB, c redis.UniversalClient, clk *fakeClock, edit func(*Options)) *Tiered {
	t.Helper()
	o := Options{
		Memory: 8 << 20, Now: clk.Now, LockTimeout: 2 * time.Second,
		RedisTimeout: 50 * time.Millisecond, BreakerCooldown: 100 * time.Millisecond,
	}
	if edit != nil {
		edit(&o)
	}
	l1, err := NewLocal(o)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := NewRedis(c, o)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := NewTiered(l1, l2, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close(); l2.Close(); l1.Close() })
	return tc
}

func TestTwoInstancesShareL2(t *testing.T) {
	srv := testnet.StartRedis(t)
	clk := newClock()
	a := newTestTieredRedis(t, newClient(t, srv), clk, nil)
	b := newTestTieredRedis(t, newClient(t, srv), clk, nil)
	oa := answer(200, "from a", "Cache-Control", "max-age=60", "Vary", "Accept")
	ob := answer(200, "from b", "Cache-Control", "max-age=60", "Vary", "Accept")
	r := req("GET", "/shared")
	r.Fields = header("Accept", "application/json")

	if res := get(a, r, oa); !res.Stored {
		t.Fatalf("instance a did not store its fill: %+v", res)
	}
	eventually(t, 2*time.Second, "a's queued write reaching L2", func() bool {
		e, _ := b.lookupL2(r, AppendKey(nil, r))
		return e != nil
	})
	b.l1.clear() // lookupL2 copied the Vary index entry into b's L1
	res := get(b, r, ob)
	if res.Tier != TierL2 || string(res.Entry.Body) != "from a" || ob.calls.Load() != 0 {
		t.Fatalf("b got %q after %d fills of its own", res.Entry.Body, ob.calls.Load())
	}
	b.l1.Wait()
	if hit := get(b, r, ob); hit.Tier != TierL1 {
		t.Errorf("an L2 hit did not fill b's L1: %+v", hit)
	}
	other := req("GET", "/shared")
	other.Fields = header("Accept", "text/html")
	if res := get(b, other, ob); res.Tier != TierOrigin || string(res.Entry.Body) != "from b" {
		t.Errorf("RFC 9111 §4.1: another Accept was served %q from %s", res.Entry.Body, res.Tier)
	}
}

// A part stored by one instance answers the ranges it holds on another,
// read from Redis, and nothing else there either.
func TestTwoInstancesShareAPart(t *testing.T) {
	srv := testnet.StartRedis(t)
	clk := newClock()
	a := newTestTieredRedis(t, newClient(t, srv), clk, nil)
	b := newTestTieredRedis(t, newClient(t, srv), clk, nil)
	o := &origin{respond: func(*Entry, int32) *Response {
		return &Response{Status: 206, Ranged: true, Body: []byte("4567"),
			Header: fields("Cache-Control", "max-age=60", "Content-Range", "bytes 4-7/10")}
	}}
	r := req("GET", "/part")
	r.Range = []byte("bytes=4-7")
	if res := get(a, r, o); !res.Stored {
		t.Fatalf("instance a did not store the part: %+v", res)
	}
	eventually(t, 2*time.Second, "a's queued write reaching L2", func() bool {
		e, _ := b.lookupL2(r, AppendKey(nil, r))
		return e != nil
	})
	r.Range = []byte("bytes=5-6")
	if res := get(b, r, o); res.Tier != TierL2 || string(res.Entry.Body) != "4567" || o.calls.Load() != 1 {
		t.Fatalf("instance b, a range inside the part: %+v (origin asked %d times)", res, o.calls.Load())
	}
	r.Range = nil
	if res := get(b, r, o); res.Tier != TierOrigin || o.calls.Load() != 2 {
		t.Errorf("instance b, no Range: %+v, want the origin asked", res)
	}
}

func TestPurgeOnOneInstanceReachesTheOther(t *testing.T) {
	srv := testnet.StartRedis(t)
	clk := newClock()
	c := newClient(t, srv)
	a := newTestTieredRedis(t, c, clk, nil)
	b := newTestTieredRedis(t, newClient(t, srv), clk, nil)
	ctx := context.Background()
	o := answer(200, "x", "Cache-Control", "max-age=60", "Surrogate-Key", "orders")
	urls := []string{"/orders/1", "/orders/2?page=2", "/users/1"}
	tests := []struct {
		name   string
		purge  func() (Purged, error)
		gone   []string
		redis  int
		remain string
	}{
		{"by URL", func() (Purged, error) { return a.PurgeURL(ctx, "API.example.com/orders/1") }, urls[:1], 1, "/orders/2?page=2"},
		{"by prefix", func() (Purged, error) { return a.PurgePrefix(ctx, "api.example.com/orders/") }, urls[:2], 2, "/users/1"},
		{"by tag", func() (Purged, error) { return a.PurgeTag(ctx, "orders") }, urls, 3, ""},
		{"by invalidation", func() (Purged, error) {
			return Purged{Local: a.Invalidate([]byte("api.example.com"), []byte("/orders/1")), Redis: 1}, nil
		}, urls[:1], 1, "/users/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.FlushAll(ctx)
			a.l1.clear()
			b.l1.clear()
			for _, u := range urls {
				get(a, req("GET", u), o)
			}
			for _, u := range urls { // b reads them all from L2 into its L1
				eventually(t, 2*time.Second, "L2 "+u, func() bool { return b.l2.Get(AppendKey(nil, req("GET", u))) != nil })
				if res := get(b, req("GET", u), o); res.Tier != TierL2 {
					t.Fatalf("b read %s from %s, want L2", u, res.Tier)
				}
			}
			b.l1.Wait()
			p, err := tt.purge()
			if err != nil {
				t.Fatal(err)
			}
			if p.Local != len(tt.gone) || p.Redis != tt.redis {
				t.Errorf("purged %+v, want local %d redis %d", p, len(tt.gone), tt.redis)
			}
			for _, u := range tt.gone {
				eventually(t, 2*time.Second, "b seeing the purge of "+u, func() bool {
					e, _ := b.lookupL1(req("GET", u), AppendKey(nil, req("GET", u)))
					return e == nil
				})
				if e := b.l2.Get(AppendKey(nil, req("GET", u))); e != nil {
					t.Errorf("%s is still in L2", u)
				}
			}
			if tt.remain != "" {
				if res := get(b, req("GET", tt.remain), o); res.Tier != TierL1 {
					t.Errorf("%s, not purged, was lost from b's L1: %+v", tt.remain, res)
				}
			}
		})
	}
}

func TestConcurrentMissesFillOnce(t *testing.T) {
	tests := []struct {
		name      string
		shared    bool // the instances share Redis (and the lease)
		wantCalls int32
	}{
		{"two instances without Redis fill once each", false, 2},
		{"two instances sharing Redis fill once in total", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			var instances [2]*Tiered
			if tt.shared {
				srv := testnet.StartRedis(t)
				// 200 first calls at once under -race can take longer than
				// the usual 50ms: a timed-out lease call fills without it.
				slow := func(o *Options) { o.RedisTimeout = time.Second }
				for i := range instances {
					instances[i] = newTestTieredRedis(t, newClient(t, srv), clk, slow)
				}
			} else {
				for i := range instances {
					instances[i] = newTestTiered(t, clk, nil)
				}
			}
			o := answer(200, "hot", "Cache-Control", "max-age=60")
			o.delay = 300 * time.Millisecond // long enough for every leader to find the lease taken
			start := make(chan struct{})
			var wg sync.WaitGroup
			var answered atomic.Int32
			for i := range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if res := get(instances[i%2], req("GET", "/hot"), o); res.Entry != nil && string(res.Entry.Body) == "hot" {
						answered.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := o.calls.Load(); n != tt.wantCalls {
				t.Errorf("origin called %d times for 200 concurrent misses, want %d", n, tt.wantCalls)
			}
			if answered.Load() != 200 {
				t.Errorf("%d of 200 requests got the response", answered.Load())
			}
			if tt.shared {
				s := instances[0].Stats()
				s1 := instances[1].Stats()
				if s.LeaseHits+s1.LeaseHits != 1 {
					t.Errorf("lease hits %d + %d, want 1", s.LeaseHits, s1.LeaseHits)
				}
			}
		})
	}
}

func TestRedisFailingDuringTrafficFailsNoRequest(t *testing.T) {
	srv := testnet.StartRedis(t)
	clk := newClock()
	var instances [2]*Tiered
	for i := range instances {
		instances[i] = newTestTieredRedis(t, newClient(t, srv), clk, func(o *Options) { o.LockTimeout = 300 * time.Millisecond })
	}
	timeout := instances[0].o.RedisTimeout
	const bound = 10 // × the Redis timeout, for a noisy 2-core machine
	o := &origin{respond: func(_ *Entry, n int32) *Response {
		return &Response{Status: 200, Header: fields("Cache-Control", "max-age=60"), Body: []byte("ok")}
	}}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, failures, slow atomic.Int32
	var slowest atomic.Int64
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tc := instances[(g+i)%2]
				r := req("GET", fmt.Sprintf("/k/%d", (g*7919+i)%400))
				start := time.Now()
				res := get(tc, r, o)
				d := time.Since(start)
				requests.Add(1)
				if res.Entry == nil || string(res.Entry.Body) != "ok" {
					failures.Add(1)
				}
				if d > bound*timeout {
					slow.Add(1)
				}
				if int64(d) > slowest.Load() {
					slowest.Store(int64(d))
				}
				if i%50 == 0 { // let some keys miss L1 again, so L2 is read
					tc.l1.clear()
				}
			}
		}()
	}
	phase := func(what string, d time.Duration, act func()) {
		act()
		time.Sleep(d)
		t.Logf("%s: %d requests so far, breaker %s", what, requests.Load(), instances[0].l2.Breaker())
	}
	phase("healthy", 200*time.Millisecond, func() {})
	phase("paused", 400*time.Millisecond, srv.Pause)
	phase("resumed", 200*time.Millisecond, srv.Resume)
	phase("killed", 400*time.Millisecond, srv.Kill)
	phase("restarted", 400*time.Millisecond, srv.Restart)
	close(stop)
	wg.Wait()

	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed", failures.Load(), requests.Load())
	}
	if slow.Load() != 0 {
		t.Errorf("%d of %d requests took over %v (slowest %v)", slow.Load(), requests.Load(),
			bound*timeout, time.Duration(slowest.Load()))
	}
	t.Logf("%d requests, slowest %v, stats %+v", requests.Load(), time.Duration(slowest.Load()), instances[0].Stats())
}

func TestReconnectedSubscriptionClearsL1(t *testing.T) {
	srv := testnet.StartRedis(t)
	tc := newTestTieredRedis(t, newClient(t, srv), newClock(), nil)
	o := answer(200, "x", "Cache-Control", "max-age=60")
	r := req("GET", "/a")
	get(tc, r, o)
	if res := get(tc, r, o); res.Tier != TierL1 {
		t.Fatalf("not in L1: %+v", res)
	}
	srv.Restart() // purges sent meanwhile would be lost to this instance
	eventually(t, 5*time.Second, "L1 cleared after the subscription came back", func() bool {
		return tc.Stats().L1Clears > 0
	})
	tc.l1.Wait()
	if e, _ := tc.lookupL1(r, AppendKey(nil, r)); e != nil {
		t.Errorf("L1 still holds the entry")
	}
}

// gate holds, until it is opened, every pipeline that carries a command
// named name: a real Redis that a test can make slow at one step.
type gate struct {
	name string
	open chan struct{}
}

func holdPipelines(c *redis.Client, name string) *gate {
	g := &gate{name: name, open: make(chan struct{})}
	c.AddHook(g)
	return g
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == g.name {
				<-g.open
				break
			}
		}
		return next(ctx, cmds)
	}
}

// An invalidation (RFC 9111 §4.4) reaches Redis after the write of what it
// invalidates, even when that write is still queued: both go to the URL's
// writer. With the entry's key choosing the writer, the purge ran first on
// the other writer, found nothing, and the write then stored the
// invalidated response in L2, to be served again.
func TestInvalidationIsAppliedAfterTheQueuedWrite(t *testing.T) {
	srv := testnet.StartRedis(t)
	c := newClient(t, srv)
	clk := newClock()
	o := answer(200, "old", "Cache-Control", "max-age=60")
	for i := range 8 { // URLs whose key and URL hashes pick different writers, among others
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			tc := newTestTieredRedis(t, c, clk, func(o *Options) { o.Writers = 4 })
			g := holdPipelines(c, "set")
			r := req("GET", fmt.Sprintf("/orders/%d", i))
			if res := get(tc, r, o); !res.Stored {
				t.Fatalf("not stored: %+v", res)
			}
			tc.Invalidate([]byte("api.example.com"), r.Path)
			// Give a purge on another writer time to run ahead of the held write.
			time.Sleep(20 * time.Millisecond)
			close(g.open)
			eventually(t, 2*time.Second, "the invalidation applied", func() bool { return tc.l2.inval.queued.Load() == 0 })
			if e := tc.l2.Get(AppendKey(nil, r)); e != nil {
				t.Fatalf("the invalidated response is in L2: %q", e.Body)
			}
		})
	}
}

// Until Redis has dropped an invalidated URL's entries, the instance that
// invalidated it reads them as misses: a GET right after the POST must not
// copy the old response from L2 back into L1.
func TestInvalidatedEntriesAreNotReadFromL2WhileThePurgeIsQueued(t *testing.T) {
	srv := testnet.StartRedis(t)
	c := newClient(t, srv)
	tc := newTestTieredRedis(t, c, newClock(), nil)
	o := answer(200, "old", "Cache-Control", "max-age=60")
	r := req("GET", "/orders/1")
	if res := get(tc, r, o); !res.Stored {
		t.Fatalf("not stored: %+v", res)
	}
	eventually(t, 2*time.Second, "the entry in L2", func() bool { return tc.l2.Get(AppendKey(nil, r)) != nil })
	g := holdPipelines(c, "del")
	tc.Invalidate([]byte("api.example.com"), []byte("/orders/1"))
	if res := get(tc, r, answer(200, "new", "Cache-Control", "max-age=60")); bodyOf(res) != "new" {
		t.Errorf("right after the invalidation: %q from %s, want the origin's new response", bodyOf(res), res.Tier)
	}
	close(g.open)
	eventually(t, 2*time.Second, "the invalidation applied", func() bool { return tc.l2.inval.queued.Load() == 0 })
	if res := get(tc, r, o); bodyOf(res) != "new" {
		t.Errorf("after the purge: %q from %s, want the new response", bodyOf(res), res.Tier)
	}
}

// bodyOf is the body of the response a Get answered with, "" for none.
func bodyOf(res Result) string {
	if res.Entry == nil {
		return ""
	}
	return string(res.Entry.Body)
}

// A fill stored after an invalidation of its URL survives it, even when
// both reach the writer in one batch: the batch is applied in order. Its
// writes went first, and the purge then deleted the fresh copy from L2.
func TestAFillStoredAfterAnInvalidationSurvivesIt(t *testing.T) {
	srv := testnet.StartRedis(t)
	c := newClient(t, srv)
	tc := newTestTieredRedis(t, c, newClock(), func(o *Options) { o.Writers = 1 })
	r := req("GET", "/orders/1")
	if res := get(tc, r, answer(200, "old", "Cache-Control", "max-age=60")); !res.Stored {
		t.Fatalf("not stored: %+v", res)
	}
	eventually(t, 2*time.Second, "the entry in L2", func() bool { return tc.l2.Get(AppendKey(nil, r)) != nil })
	g := holdPipelines(c, "set")
	// Holds the one writer, so that what follows is queued behind it.
	if res := get(tc, req("GET", "/orders/0"), answer(200, "other", "Cache-Control", "max-age=60")); !res.Stored {
		t.Fatalf("not stored: %+v", res)
	}
	time.Sleep(20 * time.Millisecond)
	tc.Invalidate([]byte("api.example.com"), r.Path)
	if res := get(tc, r, answer(200, "new", "Cache-Control", "max-age=60")); !res.Stored || bodyOf(res) != "new" {
		t.Fatalf("after the invalidation: %q, stored %v", bodyOf(res), res.Stored)
	}
	close(g.open)
	eventually(t, 2*time.Second, "the invalidation applied", func() bool { return tc.l2.inval.queued.Load() == 0 })
	eventually(t, 2*time.Second, "the fresh fill in L2", func() bool {
		e := tc.l2.Get(AppendKey(nil, r))
		return e != nil && string(e.Body) == "new"
	})
}

// A purge that fails (Redis paused past the write timeout) is sent again
// after BreakerCooldown: the invalidated copy used to stay in Redis, for
// every instance to read, until it expired.
func TestAFailedPurgeIsSentAgain(t *testing.T) {
	srv := testnet.StartRedis(t)
	c := newClient(t, srv)
	tc := newTestTieredRedis(t, c, newClock(), func(o *Options) { o.WriteTimeout = 100 * time.Millisecond })
	r := req("GET", "/orders/1")
	if res := get(tc, r, answer(200, "old", "Cache-Control", "max-age=600")); !res.Stored {
		t.Fatalf("not stored: %+v", res)
	}
	eventually(t, 2*time.Second, "the entry in L2", func() bool { return tc.l2.Get(AppendKey(nil, r)) != nil })
	srv.Pause()
	tc.Invalidate([]byte("api.example.com"), r.Path)
	time.Sleep(300 * time.Millisecond) // the purge times out
	srv.Resume()
	eventually(t, 5*time.Second, "the invalidated entry gone from L2", func() bool {
		return tc.l2.Get(AppendKey(nil, r)) == nil && tc.l2.inval.queued.Load() == 0
	})
}
