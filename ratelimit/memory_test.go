//go:build !race

package ratelimit

import (
	"runtime"
	"testing"
	"time"
)

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryOfAMillionClients sends one request from each of 1,000,000
// distinct IPv4 clients within one simulated minute and measures the heap a
// local limit keeps.
func TestMemoryOfAMillionClients(t *testing.T) {
	const clients = 1_000_000
	tests := []struct {
		name     string
		rate     string
		burst    int
		maxKeys  int
		maxHeap  uint64 // bytes
		maxKeysT int    // keys tracked at the end
	}{
		// A bucket of 10 at 10/s refills completely in a second: only the
		// clients of about the last second (16,700) are kept.
		{"idle clients are evicted", "10/s", 10, 0, 40_000 * BytesPerKey, 40_000},
		// 10/h never refills within the minute: every client is kept,
		// up to MaxKeys, at the documented bound per key.
		{"busy clients are bounded by the default MaxKeys", "10/h", 10, 0, clients * BytesPerKey, clients},
		{"busy clients are bounded by a smaller MaxKeys", "10/h", 10, 100_000, 100_000 * BytesPerKey, 100_000 + numShards},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			before := heapInUse()
			l := mustLocal(t, Options{Name: "per_client", Rate: tt.rate, Burst: tt.burst, MaxKeys: tt.maxKeys, Now: c.Now}, nil)
			key := make([]byte, 0, 16)
			start := time.Now()
			for i := range clients {
				key = appendIPv4(key[:0], i)
				if !l.Allow(key).Allowed {
					t.Fatalf("client %s refused its first request", key)
				}
				c.Advance(time.Minute / clients)
			}
			elapsed := time.Since(start)
			after := heapInUse()
			st := l.Stats()
			runtime.KeepAlive(l)
			heap := after - min(before, after)
			t.Logf("%d clients in %v: %d kept, %d evicted, heap %.1f MB (%.0f B per kept key)",
				clients, elapsed.Round(time.Millisecond), st.Keys, st.Evictions, float64(heap)/1e6, float64(heap)/float64(max(st.Keys, 1)))
			if heap > tt.maxHeap {
				t.Errorf("heap grew by %.1f MB, want at most %.1f MB", float64(heap)/1e6, float64(tt.maxHeap)/1e6)
			}
			if st.Keys > tt.maxKeysT {
				t.Errorf("%d keys kept, want at most %d", st.Keys, tt.maxKeysT)
			}
		})
	}
}
