package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// newClient is a go-redis client for srv, built as the gateway should
// build it: deadlines honoured, no retries within a request's budget.
func newClient(t testing.TB, srv *testnet.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		DialerRetries:         1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newTestRedis(t testing.TB, c redis.UniversalClient, edit func(*Options)) *Redis {
	t.Helper()
	o := Options{RedisTimeout: 50 * time.Millisecond, BreakerCooldown: 100 * time.Millisecond}
	if edit != nil {
		edit(&o)
	}
	r, err := NewRedis(c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func TestRedisSetThenGet(t *testing.T) {
	srv := testnet.StartRedis(t)
	c := newClient(t, srv)
	r := newTestRedis(t, c, nil)
	e := testEntry("key-1", 200, "hello", "Cache-Control", "max-age=60", "Surrogate-Key", "t1")
	r.Set(e, time.Minute)
	eventually(t, 2*time.Second, "the queued write", func() bool { return r.Get(e.Key) != nil })
	got := r.Get(e.Key)
	if !sameEntry(got, e) {
		t.Fatalf("Get returned %+v, want %+v", got, e)
	}
	ttl := c.PTTL(context.Background(), entryName(Hash(e.Key))).Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("entry TTL %v, want within (0, 1m]", ttl)
	}
	if r.Get([]byte("key-2")) != nil {
		t.Error("a key never stored was found")
	}
}

func TestRedisMissesOnBadValues(t *testing.T) {
	srv := testnet.StartRedis(t)
	c := newClient(t, srv)
	r := newTestRedis(t, c, nil)
	ctx := context.Background()
	other := testEntry("other-key", 200, "someone else's", "Cache-Control", "max-age=60")
	good := appendEntry(nil, testEntry("k", 200, "x", "Cache-Control", "max-age=60"))
	tests := []struct {
		name    string
		value   []byte
		counter func() uint64
	}{
		{"a truncated value is a counted miss", good[:len(good)-3], r.corrupt.Load},
		{"garbage is a counted miss", []byte("not an entry"), r.corrupt.Load},
		{"another key's entry under this key's hash is a counted miss", appendEntry(nil, other), r.mismatches.Load},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.counter()
			if err := c.Set(ctx, entryName(Hash([]byte("k"))), tt.value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if e := r.Get([]byte("k")); e != nil {
				t.Fatalf("Get returned an entry for key %q", e.Key)
			}
			if tt.counter() != before+1 {
				t.Errorf("counter went from %d to %d, want +1", before, tt.counter())
			}
		})
	}
}

func TestRedisForcedHashCollisionIsAMiss(t *testing.T) {
	srv := testnet.StartRedis(t)
	r := newTestRedis(t, newClient(t, srv), nil)
	r.hash = func([]byte) uint64 { return 7 } // every key collides
	a := testEntry("a", 200, "a's body", "Cache-Control", "max-age=60")
	r.Set(a, time.Minute)
	eventually(t, 2*time.Second, "the queued write", func() bool { return r.Get(a.Key) != nil })
	if e := r.Get([]byte("b")); e != nil {
		t.Fatalf("key b got key %q's entry", e.Key)
	}
}

func TestRedisEveryKeyHasATTL(t *testing.T) {
	srv := testnet.StartRedis(t)
	c := newClient(t, srv)
	cc := newTestTieredRedis(t, c, newClock(), nil)
	o := answer(200, "x", "Cache-Control", "max-age=60", "Surrogate-Key", "a b", "Vary", "Accept")
	r := req("GET", "/orders/1")
	r.Fields = header("Accept", "text/html")
	get(cc, r, o)
	ctx := context.Background()
	var keys []string
	eventually(t, 2*time.Second, "the entry, its Vary index and its purge indexes", func() bool {
		keys = c.Keys(ctx, "sluice:*").Val()
		return len(keys) >= 6 // c ×2, url, host, tag ×2 (the lease is released)
	})
	for _, k := range keys {
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("key %s has TTL %v", k, ttl)
		}
	}
	if c.Exists(ctx, leaseName(Hash(AppendKey(nil, r)))).Val() != 0 {
		t.Errorf("the fill lease was not released")
	}
	t.Logf("keys: %s", strings.Join(keys, " "))
}

func TestRedisFailuresAreMissesWithinTheTimeout(t *testing.T) {
	srv := testnet.StartRedis(t)
	r := newTestRedis(t, newClient(t, srv), func(o *Options) { o.BreakerFailures = 3 })
	e := testEntry("k", 200, "x", "Cache-Control", "max-age=60")
	r.Set(e, time.Minute)
	eventually(t, 2*time.Second, "the queued write", func() bool { return r.Get(e.Key) != nil })

	timed := func(what string) {
		t.Helper()
		start := time.Now()
		if got := r.Get(e.Key); got != nil {
			t.Fatalf("%s: Get returned an entry", what)
		}
		if d := time.Since(start); d > 10*r.o.RedisTimeout {
			t.Errorf("%s: Get took %v, over 10× the %v timeout", what, d, r.o.RedisTimeout)
		}
	}
	srv.Pause()
	for range 3 {
		timed("paused")
	}
	if r.Breaker() != BreakerOpen {
		t.Fatalf("breaker %s after 3 timeouts, want open", r.Breaker())
	}
	timed("paused, breaker open")
	srv.Resume()
	srv.Kill()
	time.Sleep(150 * time.Millisecond) // past the cooldown: the next call probes
	timed("killed")
	if r.Breaker() != BreakerOpen {
		t.Fatalf("breaker %s after a failed probe, want open again", r.Breaker())
	}
	srv.Restart()
	eventually(t, 3*time.Second, "the breaker closing after Redis came back", func() bool {
		r.Get(e.Key)
		return r.Breaker() == BreakerClosed
	})
	if r.br.opens.Load() < 2 {
		t.Errorf("breaker opened %d times, want at least 2", r.br.opens.Load())
	}
}

func TestRedisFullWriteQueueDrops(t *testing.T) {
	srv := testnet.StartRedis(t)
	r := newTestRedis(t, newClient(t, srv), func(o *Options) {
		o.WriteQueue, o.Writers, o.WriteTimeout = 2, 1, 300*time.Millisecond
	})
	srv.Pause()
	defer srv.Resume()
	for i := range 100 {
		r.Set(testEntry("k"+string(rune('a'+i%26)), 200, "x", "Cache-Control", "max-age=60"), time.Minute)
	}
	if d := r.writeDrops.Load(); d == 0 {
		t.Errorf("100 writes into a queue of 2 with Redis paused dropped none")
	}
}
