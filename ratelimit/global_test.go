package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// stepped is a Global without its sync loop, on a manual clock: the test
// runs each reconciliation itself.
func stepped(t *testing.T, rdb redis.UniversalClient, c *clock, o Options) *Global {
	t.Helper()
	o.Scope, o.Now = ScopeGlobal, c.Now
	g, err := newGlobal(o, rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// syncNow runs the rounds the loop would: the early syncs asked for, then
// a full round.
func syncNow(g *Global) {
	var queue []*bucket
	for {
		select {
		case b := <-g.st.early:
			queue = append(queue, b)
			continue
		default:
		}
		break
	}
	g.round(false, queue)
	g.round(true, nil)
}

func admit(g *Global, key string, n int) (allowed int) {
	for range n {
		if g.Allow([]byte(key)).Allowed {
			allowed++
		}
	}
	return allowed
}

func TestGlobalLeases(t *testing.T) {
	r := testnet.StartRedis(t)
	rdb := redisClient(t, r.Addr())
	ctx := context.Background()

	t.Run("a new client is admitted from the share, then from a lease", func(t *testing.T) {
		c := newClock()
		g := stepped(t, rdb, c, Options{Name: "lease", Rate: "10/s", Burst: 10, InstanceID: "a"})
		syncNow(g) // heartbeat: one instance, whose share is the whole limit
		if got := admit(g, "k", 3); got != 3 {
			t.Fatalf("%d of 3 first requests admitted", got)
		}
		syncNow(g) // reports the 3 as debt and leases tokens
		level, err := rdb.HGet(ctx, "sluice:rl:{lease:k}", "t").Float64()
		if err != nil {
			t.Fatal(err)
		}
		b := bucketOf(g, []byte("k"))
		if b.leased < 1 || level+float64(b.leased)+3 != 10 {
			t.Errorf("after 3 admissions: lease %d, cluster level %v; want a lease and lease+level+3 = burst 10", b.leased, level)
		}
		d := g.Allow([]byte("k"))
		if !d.Allowed || d.Limit != 10 || d.Remaining != 10-4 {
			t.Errorf("Allow from the lease = %+v, want allowed, 6 remaining of 10", d)
		}
		if st := g.State([]byte("k")); st != d {
			t.Errorf("State = %+v, want what the last Allow said, %+v", st, d)
		}
		if st := g.State([]byte("unknown")); !st.Allowed || st.Remaining != 10 || g.Stats().Keys != 1 {
			t.Errorf("State of an unknown client = %+v (%d keys), want a full allowance and no key created", st, g.Stats().Keys)
		}
	})

	t.Run("New builds a Global for a global limit with Redis", func(t *testing.T) {
		l, err := New(Options{Name: "new", Rate: "1/s", Scope: ScopeGlobal}, rdb, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, ok := l.(*Global); !ok {
			t.Errorf("New = %T, want *Global", l)
		}
	})

	t.Run("instances share one bucket and a frozen clock admits one burst", func(t *testing.T) {
		c := newClock()
		o := Options{Name: "shared", Rate: "10/s", Burst: 12}
		var gs []*Global
		for i := range 3 {
			o.InstanceID = fmt.Sprint("i", i)
			gs = append(gs, stepped(t, redisClient(t, r.Addr()), c, o))
		}
		for range 2 {
			for _, g := range gs {
				syncNow(g)
			}
		}
		for i, g := range gs {
			if n := g.Stats().Instances; n != 3 {
				t.Fatalf("instance %d sees %d instances, want 3", i, n)
			}
		}
		// Instance 0 takes the whole bucket: its share, then leases.
		total := 0
		for range 10 {
			total += admit(gs[0], "k", 5)
			syncNow(gs[0])
		}
		if total != 12 {
			t.Errorf("one instance admitted %d with the clock stopped, want the burst 12", total)
		}
		// The others see the client for the first time: each may admit its
		// share of the burst (12/3) before its first sync, as debt.
		for _, g := range gs[1:] {
			total += admit(g, "k", 10)
			syncNow(g)
			total += admit(g, "k", 10)
		}
		if bound := 12 + 3*4; total > bound {
			t.Errorf("3 instances admitted %d with the clock stopped, want at most burst + n×⌈burst/n⌉ = %d", total, bound)
		}
		level, _ := rdb.HGet(ctx, "sluice:rl:{shared:k}", "t").Float64()
		if level > -7.9 {
			t.Errorf("cluster level %v, want the other instances' first admissions (8) recorded as debt", level)
		}
		// The debt is paid back: over the whole run the instances stay
		// within the documented bound, the bucket plus one burst.
		c.Advance(time.Second) // refills 10 tokens
		for range 5 {
			for _, g := range gs {
				total += admit(g, "k", 5)
				syncNow(g)
			}
		}
		if bound := 12 + 10 + 3*4; total > bound {
			t.Errorf("3 instances admitted %d in 1s, want at most burst + rate×1s + n×⌈burst/n⌉ = %d", total, bound)
		}
		t.Logf("admitted %d; burst + rate×1s = 22", total)
	})

	t.Run("an idle client's lease goes back to the cluster", func(t *testing.T) {
		c := newClock()
		g := stepped(t, rdb, c, Options{Name: "idle", Rate: "100/s", Burst: 100, InstanceID: "a"})
		syncNow(g)
		admit(g, "k", 50)
		syncNow(g)
		b := bucketOf(g, []byte("k"))
		if b.leased == 0 {
			t.Fatal("no lease after 50 requests")
		}
		c.Advance(200 * time.Millisecond) // idle for two intervals
		syncNow(g)
		if b.leased != 0 || b.epoch != 0 {
			t.Errorf("idle client keeps lease %d (epoch %d), want it given back", b.leased, b.epoch)
		}
		// 50 spent, 20 refilled since: nothing held by the instance.
		if level, _ := rdb.HGet(ctx, "sluice:rl:{idle:k}", "t").Float64(); math.Abs(level-70) > 0.01 {
			t.Errorf("cluster level %v after the lease came back, want 70", level)
		}
		// Holding nothing, it is the first one evicted.
		c.Advance(time.Second)
		syncNow(g)
		for i := range 3000 {
			g.Allow(keyN(i))
		}
		if bucketOf(g, []byte("k")) != nil {
			t.Errorf("the idle client is still tracked after 3,000 new ones (%d evictions)", g.Stats().Evictions)
		}
	})

	t.Run("MaxKeys bounds the clients tracked", func(t *testing.T) {
		c := newClock()
		g := stepped(t, rdb, c, Options{Name: "bound", Rate: "1/h", MaxKeys: 2560, InstanceID: "a"})
		for i := range 20_000 {
			g.Allow(keyN(i))
			if i%1000 == 0 {
				syncNow(g)
			}
		}
		if n := g.Stats().Keys; n > 2560 {
			t.Errorf("%d keys, want at most MaxKeys 2560", n)
		}
	})

	t.Run("every key it writes expires", func(t *testing.T) {
		c := newClock()
		g := stepped(t, rdb, c, Options{Name: "ttl", Rate: "10/s", Burst: 20, InstanceID: "a"})
		syncNow(g)
		admit(g, "k", 20)
		syncNow(g)
		for key, max := range map[string]time.Duration{
			"sluice:rl:{ttl:k}":         2*time.Second + time.Millisecond, // refill of a burst of 20 at 10/s
			"sluice:rl:instances:{ttl}": 2 * g.aliveFor(),
		} {
			ttl, err := rdb.PTTL(ctx, key).Result()
			if err != nil || ttl <= 0 || ttl > max {
				t.Errorf("PTTL %s = %v, %v; want between 0 and %v", key, ttl, err, max)
			}
		}
	})

	t.Run("instances leave the count when they close", func(t *testing.T) {
		o := Options{Name: "count", Rate: "10/s", Scope: ScopeGlobal, SyncInterval: 20 * time.Millisecond}
		var gs []*Global
		for i := range 3 {
			o.InstanceID = fmt.Sprint("i", i)
			g, err := NewGlobal(o, redisClient(t, r.Addr()), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.Close)
			gs = append(gs, g)
		}
		testnet.Eventually(t, "3 instances seen", func() bool { return gs[0].Stats().Instances == 3 })
		gs[2].Close()
		testnet.Eventually(t, "2 instances seen", func() bool { return gs[0].Stats().Instances == 2 })
	})
}

// TestGlobalAccuracy runs 3 instances (3 Globals with their own Redis
// clients) behind one limit, with traffic at 3 times the limit, and counts
// what they admit together. The issue asks for ±10% over 10s; the test
// runs 3s, with the rate scaled so that the burst weighs as much.
func TestGlobalAccuracy(t *testing.T) {
	r := testnet.StartRedis(t)
	const (
		rate     = 300 // per second
		burst    = 100
		duration = 3 * time.Second
	)
	tests := []struct {
		name   string
		spread [3]float64 // share of the traffic per instance
	}{
		{"traffic spread evenly over the instances", [3]float64{1. / 3, 1. / 3, 1. / 3}},
		{"all traffic on one instance", [3]float64{1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("accuracy%t", tt.spread[1] > 0)
			var gs []*Global
			for i := range 3 {
				g, err := NewGlobal(Options{Name: name, Rate: fmt.Sprint(rate, "/s"), Burst: burst, Scope: ScopeGlobal,
					InstanceID: fmt.Sprint("i", i)}, redisClient(t, r.Addr()), nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(g.Close)
				gs = append(gs, g)
			}
			testnet.Eventually(t, "3 instances seen by each", func() bool {
				return gs[0].Stats().Instances == 3 && gs[1].Stats().Instances == 3 && gs[2].Stats().Instances == 3
			})

			var admitted atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for i, g := range gs {
				if tt.spread[i] == 0 {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, _ := drive(g, []byte("client"), 3*rate*tt.spread[i], start, duration)
					admitted.Add(int64(n))
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			want := burst + rate*elapsed.Seconds()
			got := float64(admitted.Load())
			rounds := 0
			for _, g := range gs {
				rounds += int(g.Stats().SyncRounds)
			}
			t.Logf("admitted %.0f in %v, limit %.0f (%+.1f%%); %d sync rounds by the 3 instances",
				got, elapsed.Round(time.Millisecond), want, 100*(got-want)/want, rounds)
			if math.Abs(got-want) > 0.1*want {
				t.Errorf("admitted %.0f in %v, want %.0f ±10%%", got, elapsed.Round(time.Millisecond), want)
			}
		})
	}
}

// drive sends perSecond requests of key to l from start until duration has
// passed, catching up after any stall, and returns how many were admitted
// and the longest decision.
func drive(l Limiter, key []byte, perSecond float64, start time.Time, duration time.Duration) (admitted int, slowest time.Duration) {
	sent := 0
	for {
		elapsed := time.Since(start)
		if elapsed >= duration {
			return admitted, slowest
		}
		for due := int(elapsed.Seconds() * perSecond); sent < due; sent++ {
			t0 := time.Now()
			if l.Allow(key).Allowed {
				admitted++
			}
			slowest = max(slowest, time.Since(t0))
		}
		time.Sleep(time.Millisecond)
	}
}
