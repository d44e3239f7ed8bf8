//go:build !race

package ratelimit

import (
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestAllowDoesNotAllocate(t *testing.T) {
	key := []byte("10.1.2.3")
	t.Run("local, allowed and refused", func(t *testing.T) {
		c := newClock()
		l := mustLocal(t, Options{Name: "local", Rate: "1/h", Burst: 500, Now: c.Now}, nil)
		l.Allow(key)
		if n := testing.AllocsPerRun(1000, func() { l.Allow(key) }); n != 0 {
			t.Errorf("Local.Allow allocates %v times, want 0", n)
		}
		if l.Allow(key).Allowed {
			t.Fatal("want the bucket empty by now")
		}
	})

	r := testnet.StartRedis(t)
	rdb := redisClient(t, r.Addr())
	c := newClock()
	g := stepped(t, rdb, c, Options{Name: "global", Rate: "1000/s", Burst: 1000, InstanceID: "a"})
	syncNow(g)
	tests := []struct {
		name  string
		setup func()
	}{
		{"global, before the first lease", func() {}},
		{"global, from the lease", func() {
			for range 200 {
				g.Allow(key)
			}
			syncNow(g)
			if b := bucketOf(g, key); b.leased <= 100 || b.epoch != g.st.epoch.Load() {
				t.Fatalf("lease %d after a demand of 200, want more than the 100 runs", b.leased)
			}
		}},
		{"global, lease spent, refused", func() {
			for g.Allow(key).Allowed {
			}
		}},
		{"global, degraded", func() { g.st.degraded.Store(true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			if n := testing.AllocsPerRun(100, func() { g.Allow(key) }); n != 0 {
				t.Errorf("Global.Allow allocates %v times, want 0", n)
			}
		})
	}
}

func TestHeadersDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	d := Decision{Allowed: false, Limit: 100, Remaining: 0, ResetAfter: 3 * time.Second, RetryAfter: 40 * time.Millisecond}
	p := Policy{Quota: 100, Window: time.Minute}
	if n := testing.AllocsPerRun(1000, func() {
		b := AppendPolicy(buf[:0], "api_key", p)
		b = AppendRateLimit(b, "api_key", d)
		_ = AppendRetryAfter(b, d)
	}); n != 0 {
		t.Errorf("the header helpers allocate %v times, want 0", n)
	}
}
