package balancer

import (
	"fmt"
	"math"
	"strconv"
	"testing"
)

// newHash returns a consistent_hash policy with load factor c whose keyless
// fallback draws from a fixed seed.
func newHash(c float64) *ConsistentHash {
	p := &ConsistentHash{loadFactor: c}
	p.fallback.rnd.next = seeded(7)
	return p
}

// hashKeys returns n distinct keys.
func hashKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("user-" + strconv.Itoa(i))
	}
	return keys
}

// namedBackends returns unconnected backends with the given addresses.
func namedBackends(addrs ...string) []*Backend {
	bs := make([]*Backend, len(addrs))
	for i, a := range addrs {
		bs[i] = NewBackend(a, 1, testOptions())
	}
	return bs
}

// tenAddrs returns n backend addresses.
func tenAddrs(n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.0.0.%d:8080", i+1)
	}
	return addrs
}

// owners returns the address each key goes to.
func owners(p Policy, bs []*Backend, keys [][]byte) []string {
	got := make([]string, len(keys))
	for i, k := range keys {
		got[i] = p.Pick(bs, k).Addr()
	}
	return got
}

func TestConsistentHash(t *testing.T) {
	keys := hashKeys(100000)

	t.Run("sends a key to the same backend every time, on every instance", func(t *testing.T) {
		addrs := tenAddrs(5)
		bs := namedBackends(addrs...)
		// Another gateway instance lists the backends in another order.
		other := namedBackends(addrs[4], addrs[2], addrs[0], addrs[3], addrs[1])
		first := owners(newHash(0), bs, keys[:2000])
		again := owners(newHash(0), bs, keys[:2000])
		elsewhere := owners(newHash(0), other, keys[:2000])
		for i := range first {
			if first[i] != again[i] || first[i] != elsewhere[i] {
				t.Fatalf("key %s went to %s, then %s, and to %s on another instance", keys[i], first[i], again[i], elsewhere[i])
			}
		}
	})

	t.Run("spreads keys evenly", func(t *testing.T) {
		bs := namedBackends(tenAddrs(10)...)
		got := shares(newHash(0), bs, len(keys), func(i int) []byte { return keys[i] })
		lo, hi := 1.0, 0.0
		for _, s := range got {
			lo, hi = min(lo, s), max(hi, s)
		}
		t.Logf("10 backends, %d keys: shares from %.3f to %.3f (mean 0.100)", len(keys), lo, hi)
		if lo < 0.075 || hi > 0.125 {
			t.Errorf("shares = %.3f, want each within 25%% of 0.1", got)
		}
	})

	t.Run("gives a backend keys in proportion to its weight", func(t *testing.T) {
		bs := namedBackends(tenAddrs(3)...)
		bs[1].setWeight(2)
		got := shares(newHash(0), bs, len(keys), func(i int) []byte { return keys[i] })
		if math.Abs(got[0]-0.25) > 0.04 || math.Abs(got[1]-0.5) > 0.04 || math.Abs(got[2]-0.25) > 0.04 {
			t.Errorf("shares = %.3f, want 0.25, 0.5, 0.25", got)
		}
	})

	t.Run("moves only about 1/(n+1) of the keys, all to it, when a backend is added", func(t *testing.T) {
		addrs := tenAddrs(11)
		before := owners(newHash(0), namedBackends(addrs[:10]...), keys)
		after := owners(newHash(0), namedBackends(addrs...), keys)
		moved := 0
		for i := range keys {
			if before[i] != after[i] {
				moved++
				if after[i] != addrs[10] {
					t.Fatalf("key %s moved from %s to %s, not to the new backend", keys[i], before[i], after[i])
				}
			}
		}
		frac := float64(moved) / float64(len(keys))
		t.Logf("adding an 11th backend moved %.4f of %d keys (ideal 1/11 = %.4f)", frac, len(keys), 1.0/11)
		if frac < 0.06 || frac > 0.12 {
			t.Errorf("%.4f of the keys moved, want about 1/11", frac)
		}
	})

	t.Run("moves only a down backend's keys, and brings them back", func(t *testing.T) {
		bs := namedBackends(tenAddrs(5)...)
		p := newHash(0)
		before := owners(p, bs, keys[:5000])
		bs[2].SetHealthy(false)
		during := owners(p, bs, keys[:5000])
		bs[2].SetHealthy(true)
		after := owners(p, bs, keys[:5000])
		for i := range before {
			if during[i] == bs[2].Addr() || (before[i] != bs[2].Addr() && during[i] != before[i]) || after[i] != before[i] {
				t.Fatalf("key %s: %s, while backend 2 was down %s, then %s", keys[i], before[i], during[i], after[i])
			}
		}
	})

	t.Run("spills a hot key to the next backend when its own is over the bound", func(t *testing.T) {
		bs := namedBackends(tenAddrs(4)...)
		p := newHash(1.25)
		key := []byte("hot")
		home := p.Pick(bs, key)
		for _, b := range bs {
			b.inFlight.Store(1)
		}
		// 4 in flight in all: the bound is ceil(1.25 × (4+1) / 4) = 2.
		if b := p.Pick(bs, key); b != home {
			t.Errorf("with 1 in flight (bound 2) the key went to %s, want its home %s", b.Addr(), home.Addr())
		}
		// 7 in flight in all: the bound is ceil(1.25 × (7+1) / 4) = 3.
		home.inFlight.Store(4)
		spill := p.Pick(bs, key)
		if spill == home {
			t.Fatalf("with 4 in flight (bound 3) the key stayed on its home %s", home.Addr())
		}
		if again := p.Pick(bs, key); again != spill {
			t.Errorf("the spilled key went to %s, then %s; want the same next backend", spill.Addr(), again.Addr())
		}
	})

	t.Run("never lets a backend exceed c times the mean load", func(t *testing.T) {
		for _, c := range []float64{1, 1.25, 2} {
			bs := namedBackends(tenAddrs(5)...)
			p := newHash(c)
			hot := [][]byte{[]byte("hot-1"), []byte("hot-2")}
			var total int64
			for i := range 1000 { // nothing completes: loads only grow
				b := p.Pick(bs, hot[i%2])
				b.inFlight.Add(1)
				total++
				bound := int64(math.Ceil(c * float64(total) / 5))
				if b.InFlight() > bound {
					t.Fatalf("c=%v: after %d requests %s has %d in flight, over the bound %d", c, total, b.Addr(), b.InFlight(), bound)
				}
			}
		}
	})

	t.Run("places a request without a key by load", func(t *testing.T) {
		bs := namedBackends(tenAddrs(4)...)
		if got := shares(newHash(0), bs, 40000, nil); !within(got, 0.25, 0.02) {
			t.Errorf("shares = %.3f, want 0.25 each", got)
		}
	})

	t.Run("builds a new ring when given another slice", func(t *testing.T) {
		p := newHash(0)
		one, two := namedBackends(tenAddrs(3)...), namedBackends("192.0.2.1:80", "192.0.2.2:80")
		for i, k := range keys[:100] {
			bs := one
			if i%2 == 1 {
				bs = two
			}
			if b := p.Pick(bs, k); b != bs[0] && b != bs[1] && (len(bs) < 3 || b != bs[2]) {
				t.Fatalf("pick from a slice returned %s, not one of its backends", b.Addr())
			}
		}
	})
}

func TestHashKeyIsStable(t *testing.T) {
	// xxhash64 with seed 0 of "" and "abc": the values every instance, on any
	// machine, must compute.
	if got := HashKey(nil); got != 0xef46db3751d8e999 {
		t.Errorf("HashKey(\"\") = %#x, want 0xef46db3751d8e999", got)
	}
	if got := HashKey([]byte("abc")); got != 0x44bc2cf5ad770999 {
		t.Errorf("HashKey(\"abc\") = %#x, want 0x44bc2cf5ad770999", got)
	}
}
