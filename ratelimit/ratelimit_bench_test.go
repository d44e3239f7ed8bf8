package ratelimit

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// benchKeys are the clients of a benchmark: many, so that requests spread
// over the shards as a gateway's do.
func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = appendIPv4(nil, i)
	}
	return keys
}

// runAllow calls l.Allow from every P, each goroutine walking the keys from
// its own offset; with one key, every request is for the same client.
func runAllow(b *testing.B, l Limiter, keys [][]byte) {
	for _, k := range keys {
		l.Allow(k) // create the clients: the benchmark measures known ones
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			l.Allow(keys[i%len(keys)])
			i++
		}
	})
}

// benchCases are known clients whose requests pass (a burst so large it
// never runs out) or are refused (a spent burst that refills once an hour).
var benchCases = []struct {
	name  string
	keys  int
	rate  string
	burst int
}{
	{"10k_clients/allowed", 10_000, "1/h", 1 << 30},
	{"10k_clients/refused", 10_000, "1/h", 1},
	{"one_client/allowed", 1, "1/h", 1 << 30},
}

func BenchmarkLocalAllow(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			l := mustLocal(b, Options{Name: "bench", Rate: bc.rate, Burst: bc.burst}, nil)
			runAllow(b, l, benchKeys(bc.keys))
		})
	}
}

// BenchmarkGlobalAllow runs with a real Redis and the sync loop running, as
// in production: leases are renewed in the background while the benchmark
// admits from them.
func BenchmarkGlobalAllow(b *testing.B) {
	r := testnet.StartRedis(b)
	for i, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			g, err := NewGlobal(Options{Name: "bench" + strconv.Itoa(i), Rate: bc.rate, Burst: bc.burst, Scope: ScopeGlobal}, redisClient(b, r.Addr()), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(g.Close)
			testnet.Eventually(b, "the heartbeat", func() bool { return g.Stats().SyncRounds > 0 })
			runAllow(b, g, benchKeys(bc.keys))
			st := g.Stats()
			b.ReportMetric(float64(st.Allowed)/float64(st.Allowed+st.Denied), "allowed/op")
			if st.SyncErrors > 0 {
				b.Logf("%d of %d sync rounds failed: the numbers include degraded mode", st.SyncErrors, st.SyncRounds)
			}
		})
	}
}

func BenchmarkHeaders(b *testing.B) {
	buf := make([]byte, 0, 256)
	d := Decision{Limit: 100, Remaining: 42, ResetAfter: 10e9}
	p := Policy{Quota: 100, Window: 60e9}
	b.ReportAllocs()
	for b.Loop() {
		out := AppendPolicy(buf[:0], "api_key", p)
		out = AppendRateLimit(out, "api_key", d)
		_ = AppendRetryAfter(out, d)
	}
}
