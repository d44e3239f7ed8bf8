package balancer

import (
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// HashKey is the 64-bit hash consistent_hash places keys with, and the one to
// give JumpHash: xxhash64 with seed 0, the same on every gateway instance,
// machine and version (unlike hash/maphash, seeded per process), so that
// instances behind one L4 balancer send a key to the same backend. It does
// not allocate.
func HashKey(b []byte) uint64 { return xxhash.Sum64(b) }

// ConsistentHash sends requests with the same key to the same backend, and
// moves few keys when backends come and go: each backend owns
// ringPointsPerWeight points per unit of weight on a hash ring, placed by
// hashing its address (not its position, so order in the file does not
// matter), and a key goes to the owner of the first point at or after its
// hash. Adding one backend to n moves about 1/(n+1) of the keys, all to it
// (TestConsistentHash: 0.091 of 100,000 keys from 10 to 11).
//
// Loads are bounded (Mirrokni, Thorup, Zadimoghaddam, "Consistent hashing
// with bounded loads"): a backend takes a key only while its requests in
// flight are below ceil(c × (in flight over the available backends + 1) ×
// its weight / their total weight), c = hash_load_factor; otherwise the key
// goes on along the ring. A hot key therefore spills to the next backends
// instead of overloading one, and no backend ever carries more than c times
// its share. An idle owner takes its key without that count, so at low load
// a pick is one binary search.
//
// Unavailable backends are passed over the same way. A recovering backend
// in slow start takes the part of its keys whose hash falls below its ramp
// factor, the same part on every instance, so its share grows without
// scattering keys at random. A request without a key (nil or empty) is
// placed by P2CEWMA.
type ConsistentHash struct {
	// loadFactor is c; below 1 (the zero value) means DefaultHashLoadFactor.
	loadFactor float64
	ring       atomic.Pointer[ring]
	slow       slowStart
	fallback   P2CEWMA
}

// ringPointsPerWeight is the number of points per unit of weight: with 128,
// 10 equal backends get between 0.87 and 1.11 times their share of 100,000
// keys (TestConsistentHash; the spread shrinks as 1/sqrt(points)), against
// several times with a single point each. maxRingPoints bounds the ring (1 MiB) for large
// weights, which are then scaled down.
const (
	ringPointsPerWeight = 128
	maxRingPoints       = 1 << 16
)

// ring is the sorted points of one backends slice.
type ring struct {
	base   **Backend // &backends[0] of the slice it was built for
	n      int
	points []uint64 // sorted hashes
	owners []int32  // owners[i] is the index in backends of points[i]
}

// Pick implements Policy.
func (p *ConsistentHash) Pick(backends []*Backend, key []byte) *Backend {
	if len(key) == 0 || len(backends) == 0 {
		return p.fallback.Pick(backends, key)
	}
	r := p.ringFor(backends)
	h := HashKey(key)
	i, _ := slices.BinarySearch(r.points, h)
	if i == len(r.points) {
		i = 0
	}
	if b := backends[r.owners[i]]; b.InFlight() == 0 && p.takes(b, h) {
		return b
	}
	inFlight, weight := availableLoad(backends)
	if weight == 0 {
		return nil
	}
	c := p.loadFactor
	if c < 1 {
		c = DefaultHashLoadFactor
	}
	scale := c * float64(inFlight+1) / float64(weight)
	for range len(r.points) {
		b := backends[r.owners[i]]
		if p.takes(b, h) && float64(b.InFlight()) < math.Ceil(scale*float64(b.Weight())) {
			return b
		}
		if i++; i == len(r.points) {
			i = 0
		}
	}
	// Loads changed under the walk (the bound guarantees a taker otherwise),
	// or every available backend ramps and declined.
	return p.fallback.Pick(backends, nil)
}

// takes reports whether b may take the key of hash h, load aside.
func (p *ConsistentHash) takes(b *Backend, h uint64) bool {
	if !b.Available() {
		return false
	}
	f := p.slow.factor(b)
	// Remix h so the part taken does not follow ring position.
	return f >= 1 || float64((h*0x9e3779b97f4a7c15)>>11)/(1<<53) < f
}

// availableLoad returns the requests in flight on, and the total weight of,
// the available backends.
func availableLoad(backends []*Backend) (inFlight, weight int64) {
	for _, b := range backends {
		if b.Available() {
			inFlight += b.InFlight()
			weight += int64(b.Weight())
		}
	}
	return inFlight, weight
}

// ringFor returns the ring of backends, building it on first use and when
// the pool passes another slice. Weights are read once: a reload that
// changes them builds a new pool, and a new policy.
func (p *ConsistentHash) ringFor(backends []*Backend) *ring {
	if r := p.ring.Load(); r != nil && r.base == unsafe.SliceData(backends) && r.n == len(backends) {
		return r
	}
	r := newRing(backends)
	p.ring.Store(r)
	return r
}

func newRing(backends []*Backend) *ring {
	var sum float64
	for _, b := range backends {
		sum += float64(b.Weight()) * ringPointsPerWeight
	}
	scale := min(1, maxRingPoints/sum)
	type point struct {
		hash  uint64
		owner int32
	}
	var points []point
	var buf []byte
	for i, b := range backends {
		n := max(1, int(float64(b.Weight())*ringPointsPerWeight*scale))
		for v := range n {
			buf = strconv.AppendInt(append(append(buf[:0], b.Addr()...), '#'), int64(v), 10)
			points = append(points, point{HashKey(buf), int32(i)})
		}
	}
	slices.SortFunc(points, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.owner - b.owner) // a collision: any fixed order
	})
	r := &ring{base: unsafe.SliceData(backends), n: len(backends),
		points: make([]uint64, len(points)), owners: make([]int32, len(points))}
	for i, pt := range points {
		r.points[i], r.owners[i] = pt.hash, pt.owner
	}
	return r
}
