package balancer

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// Policy chooses a backend for a request. Pick returns nil when no backend is
// available; it skips backends that are not (Backend.Available). key
// identifies the client or request for policies that hash it
// (consistent_hash); the others ignore it. A Policy is used concurrently by
// every request of its pool and may keep state for it, so each pool has its
// own, and a pool always passes it the same slice.
type Policy interface {
	Pick(backends []*Backend, key []byte) *Backend
}

// NewPolicy returns a fresh policy for o.Policy, set up with the options it
// reads (slow_start, hash_load_factor). o should be defaulted; a zero field
// takes its default here too.
func NewPolicy(o Options) (Policy, error) {
	o.Backends = nil // WithDefaults would copy them for nothing
	o = o.WithDefaults()
	slow := slowStart{window: o.SlowStart}
	switch o.Policy {
	case PolicyRoundRobin:
		p := &RoundRobin{slow: slow}
		p.rnd.seed()
		return p, nil
	case PolicyWeightedRoundRobin:
		p := &WeightedRoundRobin{slow: slow}
		p.rnd.seed()
		return p, nil
	case PolicyLeastConn:
		p := &LeastConn{slow: slow}
		p.rnd.seed()
		return p, nil
	case PolicyP2CEWMA:
		p := &P2CEWMA{slow: slow}
		p.rnd.seed()
		return p, nil
	case PolicyConsistentHash:
		p := &ConsistentHash{loadFactor: o.HashLoadFactor, slow: slow}
		p.fallback.slow = slow
		p.fallback.rnd.seed()
		return p, nil
	default:
		return nil, fmt.Errorf("unknown policy %q", o.Policy)
	}
}

// random is a policy's source of pseudo-random numbers: wyrand over one
// atomic counter, so concurrent picks never wait for each other (no lock, as
// math/rand's global source would take) and allocate nothing. The zero value
// works, with seed 0; NewPolicy seeds each pool differently so gateway
// instances do not draw in step.
type random struct {
	state atomic.Uint64
	// next, when set, replaces the generator: tests inject a fixed sequence.
	next func() uint64
}

func (r *random) seed() { r.state.Store(rand.Uint64()) }

// uint64 returns the next number, uniform over all 64-bit values.
func (r *random) uint64() uint64 {
	if r.next != nil {
		return r.next()
	}
	s := r.state.Add(0xa0761d6478bd642f)
	hi, lo := bits.Mul64(s, s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// below returns a number in [0, n), n > 0, by Lemire's multiply-shift (no
// division; the bias is below 2^-32 for any pool size).
func (r *random) below(n int) int {
	hi, _ := bits.Mul64(r.uint64(), uint64(n))
	return int(hi)
}

// float returns a number in [0, 1).
func (r *random) float() float64 { return float64(r.uint64()>>11) / (1 << 53) }
