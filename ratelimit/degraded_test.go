package ratelimit

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// slowClient is a client whose own timeouts are long: a request that waited
// on Redis would show as seconds, not microseconds.
func slowClient(t *testing.T, addr string) redis.UniversalClient {
	t.Helper()
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{addr}, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
		WriteTimeout: 5 * time.Second, MaxRetries: -1, PoolSize: 4,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestGlobalWithoutRedis stops Redis under 3 instances mid-run: requests
// keep being decided at once, at this instance's share of the limit, and the
// limit leaves degraded mode when Redis is back.
func TestGlobalWithoutRedis(t *testing.T) {
	const (
		rate  = 300 // per second, so the share of one of 3 instances is 100/s
		burst = 90  // and its share of the burst 30
	)
	outages := []struct {
		name       string
		stop, back func(r *testnet.Redis)
	}{
		{"Redis killed, then restarted empty", (*testnet.Redis).Kill, (*testnet.Redis).Restart},
		{"Redis paused (SIGSTOP), then resumed", (*testnet.Redis).Pause, (*testnet.Redis).Resume},
	}
	for _, failClosed := range []bool{false, true} {
		for _, o := range outages {
			name := o.name
			if failClosed {
				name += " with fail_closed"
			}
			t.Run(name, func(t *testing.T) {
				r := testnet.StartRedis(t)
				var tr transitions
				var gs []*Global
				for i := range 3 {
					g, err := NewGlobal(Options{Name: "outage", Rate: fmt.Sprint(rate, "/s"), Burst: burst, Scope: ScopeGlobal,
						FailClosed: failClosed, InstanceID: fmt.Sprint("i", i), Logger: tr.logger()}, slowClient(t, r.Addr()), nil)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(g.Close)
					gs = append(gs, g)
				}
				g := gs[0]
				testnet.Eventually(t, "3 instances seen", func() bool { return g.Stats().Instances == 3 })
				admit(g, "warm", 10)

				stopped := time.Now()
				o.stop(r)
				for i, g := range gs {
					testnet.Eventually(t, fmt.Sprint("instance ", i, " to enter degraded mode"), g.Degraded)
				}
				// SyncTimeout (200ms) after the next round, not the client's 5s.
				if d := time.Since(stopped); d > 2*time.Second {
					t.Errorf("degraded mode came %v after Redis stopped, want about SyncTimeout", d)
				}
				// An instance logs just after it switches: wait for the lines,
				// then count them.
				testnet.Eventually(t, "3 lines for entering degraded mode", func() bool { e, _ := tr.counts(); return e >= 3 })
				if entered, _ := tr.counts(); entered != 3 {
					t.Errorf("%d lines for entering degraded mode from 3 instances, want 3", entered)
				}

				start := time.Now()
				admitted, slowest := drive(g, []byte("client"), 3*rate/3., start, time.Second) // 3 × the share's rate
				elapsed := time.Since(start)
				if slowest > 100*time.Millisecond {
					t.Errorf("the slowest decision took %v without Redis, want no waiting", slowest)
				}
				want := math.Ceil(burst/3.) + rate/3.*elapsed.Seconds()
				if failClosed {
					want = 0
				}
				t.Logf("admitted %d in %v without Redis, share %.0f; slowest decision %v", admitted, elapsed.Round(time.Millisecond), want, slowest)
				if math.Abs(float64(admitted)-want) > 0.1*want {
					t.Errorf("admitted %d in %v without Redis, want this instance's share %.0f ±10%%", admitted, elapsed.Round(time.Millisecond), want)
				}
				if st := g.Stats(); !st.Degraded || st.SyncErrors == 0 {
					t.Errorf("Stats = %+v, want degraded with sync errors", st)
				}

				o.back(r)
				for i, g := range gs {
					testnet.Eventually(t, fmt.Sprint("instance ", i, " to leave degraded mode"), func() bool { return !g.Degraded() })
				}
				testnet.Eventually(t, "3 lines for leaving degraded mode", func() bool { _, l := tr.counts(); return l >= 3 })
				if entered, left := tr.counts(); entered != 3 || left != 3 {
					t.Errorf("logged %d entries and %d exits of degraded mode for one outage of 3 instances, want 3 and 3", entered, left)
				}
				// Back to the cluster bucket: the client's use reaches Redis.
				rdb := redisClient(t, r.Addr())
				testnet.Eventually(t, "the client's bucket in Redis", func() bool {
					admit(g, "after", 1)
					return rdb.Exists(context.Background(), "sluice:rl:{outage:after}").Val() == 1
				})
			})
		}
	}
}

func TestDegradedModeHysteresis(t *testing.T) {
	r := testnet.StartRedis(t)
	var tr transitions
	c := newClock()
	g := stepped(t, redisClient(t, r.Addr()), c, Options{Name: "flap", Rate: "10/s", InstanceID: "a", Logger: tr.logger()})
	steps := []struct {
		name         string
		do           func()
		wantDegraded bool
	}{
		{"a working Redis", func() {}, false},
		{"a failed round enters degraded mode", r.Kill, true},
		{"failing rounds change nothing", func() {}, true},
		{"one successful probe is not enough", r.Restart, true},
		{"nor two", func() {}, true},
		{"three in a row end degraded mode", func() {}, false},
		{"a failure after that enters it again", r.Kill, true},
	}
	for _, s := range steps {
		s.do()
		g.round(true, nil)
		if g.Degraded() != s.wantDegraded {
			t.Fatalf("%s: degraded %v, want %v", s.name, g.Degraded(), s.wantDegraded)
		}
	}
	if entered, left := tr.counts(); entered != 2 || left != 1 {
		t.Errorf("logged %d entries and %d exits of degraded mode, want 2 and 1", entered, left)
	}
}
