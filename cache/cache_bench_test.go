package cache

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func BenchmarkParseCacheControl(b *testing.B) {
	cc := []byte("public, max-age=60, s-maxage=30, stale-while-revalidate=30, stale-if-error=600")
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseCacheControl(cc)
	}
}

func BenchmarkAppendKey(b *testing.B) {
	r := req("GET", "/orders/12345?expand=items")
	r.Policy = policy("header:Accept-Language")
	r.Fields = header("Accept-Language", "de-DE, en;q=0.5")
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendKey(buf[:0], r)
	}
}

func BenchmarkLocalGet(b *testing.B) {
	l := newTestLocal(b, 64<<20)
	keys := make([][]byte, 1024)
	for i := range keys {
		e := entryFor("h/"+strconv.Itoa(i), "x")
		keys[i] = e.Key
		l.Set(e, time.Hour)
	}
	l.Wait()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if l.Get(keys[i&1023]) == nil {
				b.Fatal("miss")
			}
			i++
		}
	})
}

// BenchmarkTieredGetHit is the whole cache lookup of a hit, key building
// included, as the gateway makes it.
func BenchmarkTieredGetHit(b *testing.B) {
	for _, vary := range []bool{false, true} {
		b.Run(fmt.Sprintf("vary=%v", vary), func(b *testing.B) {
			tc := newTestTiered(b, newClock(), nil)
			kv := []string{"Cache-Control", "max-age=3600", "Content-Type", "application/json"}
			r := req("GET", "/orders/1")
			if vary {
				kv = append(kv, "Vary", "Accept-Encoding")
				r.Fields = header("Accept-Encoding", "gzip, br")
			}
			get(tc, r, answer(200, `{"id":1}`, kv...))
			tc.l1.Wait()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 256)
				for pb.Next() {
					buf = AppendKey(buf[:0], r)
					if res := tc.Get(r, buf, nil); res.Tier != TierL1 {
						b.Fatal("not an L1 hit")
					}
				}
			})
		})
	}
}

// BenchmarkRedisGet is an L2 hit: one round trip to a local redis-server
// and a decode.
func BenchmarkRedisGet(b *testing.B) {
	srv := testnet.StartRedis(b)
	r := newTestRedis(b, newClient(b, srv), nil)
	e := testEntry("bench-key", 200, string(make([]byte, 1024)), "Cache-Control", "max-age=3600",
		"Content-Type", "application/json")
	r.Set(e, time.Hour)
	deadline := time.Now().Add(2 * time.Second)
	for r.Get(e.Key) == nil {
		if time.Now().After(deadline) {
			b.Fatal("the entry never reached Redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r.Get(e.Key) == nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkLocalMemory1M stores 1,000,000 distinct entries in an L1 bounded
// to 64 MiB, for three body sizes, and reports by how much the live heap
// the cache keeps exceeds the bound (negative: it stays under). Run it
// alone:
//
//	go test -run XXX -bench LocalMemory1M -benchtime 1x ./cache/
func BenchmarkLocalMemory1M(b *testing.B) {
	for _, body := range []int{128, 512, 4096} {
		b.Run(fmt.Sprintf("body=%d", body), func(b *testing.B) {
			for b.Loop() {
				over := measureL1Heap(b, 64<<20, 1_000_000, body)
				b.ReportMetric(float64(over)/(1<<20), "MiB-over-bound")
			}
		})
	}
}

// measureL1Heap fills an L1 of the given bound with n distinct entries with
// bodies of bodySize bytes and returns by how many bytes the live heap it
// holds exceeds the bound.
func measureL1Heap(tb testing.TB, memory int64, n, bodySize int) int64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	l, err := NewLocal(Options{Memory: memory})
	if err != nil {
		tb.Fatal(err)
	}
	body := make([]byte, bodySize)
	h := fields("Cache-Control", "max-age=3600", "Content-Type", "application/json", "ETag", `"0123456789"`)
	m := ParseMeta(200, h, t0, t0, t0)
	for i := range n {
		url := fmt.Appendf(nil, "api.example.com/orders/%d", i)
		e := newEntry(append([]byte("K\x01GET"), url...), url, 200, h, body, nil, nil, &m, time.Hour)
		l.Set(e, time.Hour)
		if i%4096 == 0 {
			l.Wait() // as traffic would: ristretto drops sets when its buffer is full
		}
	}
	l.Wait()
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	tb.Logf("L1 bound %.1f MiB, %d entries of %d-byte bodies offered, %d evicted, %.1f MiB stored by cost, live heap %.1f MiB",
		float64(memory)/(1<<20), n, bodySize, l.evictions.Load(), float64(l.StoredBytes())/(1<<20), float64(live)/(1<<20))
	runtime.KeepAlive(l)
	l.Close()
	return live - memory
}
