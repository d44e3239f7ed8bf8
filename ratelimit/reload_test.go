package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestLocalReload(t *testing.T) {
	base := Options{Name: "per_client", Rate: "1/s", Burst: 10}
	tests := []struct {
		name     string
		next     Options
		advance  time.Duration
		want     int // admitted of 20 after the reload
		wantKept bool
	}{
		{"an unchanged limit keeps what clients used", base, 0, 5, true},
		{"a higher rate applies at once, from the tokens left", Options{Name: "per_client", Rate: "10/s", Burst: 10}, 300 * time.Millisecond, 5 + 3, true},
		{"a smaller burst applies at once", Options{Name: "per_client", Rate: "1/s", Burst: 3}, 0, 3, true},
		{"a larger burst grants nothing at once", Options{Name: "per_client", Rate: "1/s", Burst: 50}, 0, 5, true},
		{"another limit starts afresh", Options{Name: "other", Rate: "1/s", Burst: 10}, 0, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			base.Now, tt.next.Now = c.Now, c.Now
			old := mustLocal(t, base, nil)
			for range 5 {
				old.Allow([]byte("client"))
			}
			l := mustLocal(t, tt.next, old)
			c.Advance(tt.advance)
			got := 0
			for range 20 {
				if l.Allow([]byte("client")).Allowed {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("admitted %d of 20 after the reload, want %d", got, tt.want)
			}
			if kept := l.Stats().Allowed >= 5+uint64(got); kept != tt.wantKept {
				t.Errorf("stats kept across the reload: %v, want %v", kept, tt.wantKept)
			}
			if tt.wantKept && old.State([]byte("client")) != l.State([]byte("client")) {
				t.Error("the old limiter, still used by requests in flight, sees other state than the new one")
			}
		})
	}
	t.Run("New switches type when the scope changes", func(t *testing.T) {
		old := mustLocal(t, base, nil)
		old.Allow([]byte("client"))
		l, err := New(Options{Name: "per_client", Rate: "1/s", Burst: 10, Scope: ScopeGlobal}, nil, old)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := l.(*Local); !ok {
			t.Fatalf("a global limit without Redis is a %T, want *Local", l)
		}
	})
}

func TestGlobalReload(t *testing.T) {
	r := testnet.StartRedis(t)
	rdb := redisClient(t, r.Addr())
	o := Options{Name: "reload", Rate: "10/s", Burst: 10, Scope: ScopeGlobal, InstanceID: "a"}
	old, err := NewGlobal(o, rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(old.Close)
	testnet.Eventually(t, "the heartbeat", func() bool { return old.Stats().SyncRounds > 0 })
	admit(old, "client", 10)

	o.Rate, o.Burst = "100/s", 4
	g, err := NewGlobal(o, rdb, old)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	if old.owner || !g.owner {
		t.Fatal("the old limiter still runs the sync loop")
	}
	old.Close() // the gateway closes what it replaced: this must not stop g
	if st := g.Stats(); st.Keys != 1 || st.Allowed != 10 {
		t.Errorf("Stats after the reload = %+v, want the client and its 10 requests kept", st)
	}
	ctx := context.Background()
	if ok, _ := rdb.ZScore(ctx, "sluice:rl:instances:{reload}", "a").Result(); ok == 0 {
		t.Error("closing the replaced limiter removed the instance from the live ones")
	}
	// The new burst of 4 applies at once in Redis, and the new rate refills it.
	testnet.Eventually(t, "the new burst in Redis", func() bool {
		admit(g, "client", 1)
		level, err := rdb.HGet(ctx, "sluice:rl:{reload:client}", "t").Float64()
		return err == nil && level <= 4
	})
	time.Sleep(100 * time.Millisecond)
	if got := admit(g, "client", 3); got == 0 {
		t.Error("nothing admitted 100ms after the reload at 100/s")
	}
}
