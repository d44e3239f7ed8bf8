package balancer

import (
	"math"
	"strconv"
	"testing"
	"time"
)

func TestRampFactor(t *testing.T) {
	const window = time.Minute
	t.Run("is 1 for a backend that started up rather than recovered", func(t *testing.T) {
		b := backends(1)[0]
		if f := b.rampFactor(time.Now().UnixNano(), window); f != 1 {
			t.Errorf("rampFactor = %v, want 1", f)
		}
	})
	t.Run("rises from 0.1 to 1 over the window after the backend recovers", func(t *testing.T) {
		b := backends(1)[0]
		b.SetHealthy(false)
		before := time.Now().UnixNano()
		b.SetHealthy(true)
		at := b.recoveredAt.Load()
		if at < before {
			t.Fatalf("recoveredAt = %d, want the time of SetHealthy(true), at least %d", at, before)
		}
		for _, tt := range []struct {
			after time.Duration
			want  float64
		}{{0, 0.1}, {window / 2, 0.55}, {window * 9 / 10, 0.91}} {
			if f := b.rampFactor(at+int64(tt.after), window); math.Abs(f-tt.want) > 1e-9 {
				t.Errorf("%v after recovery: rampFactor = %v, want %v", tt.after, f, tt.want)
			}
		}
		if f := b.rampFactor(at+int64(window), window); f != 1 || b.recoveredAt.Load() != 0 {
			t.Errorf("at the window's end: rampFactor = %v, recoveredAt = %d; want 1 and cleared", f, b.recoveredAt.Load())
		}
	})
	t.Run("starts only when every reason for being out has cleared", func(t *testing.T) {
		b := backends(1)[0]
		b.SetHealthy(false)
		b.SetEjected(true)
		b.SetHealthy(true)
		if b.recoveredAt.Load() != 0 {
			t.Fatal("ramp started while the backend is still ejected")
		}
		b.SetEjected(false)
		if b.recoveredAt.Load() == 0 {
			t.Error("ramp did not start when the ejection ended")
		}
	})
	t.Run("is 1 with slow start off", func(t *testing.T) {
		b := backends(1)[0]
		b.SetHealthy(false)
		b.SetHealthy(true)
		if f := b.rampFactor(b.recoveredAt.Load(), 0); f != 1 {
			t.Errorf("rampFactor = %v, want 1", f)
		}
	})
}

// rampingPolicy returns the policy name with a one-minute slow start whose
// clock reads *now and whose draws come from a fixed seed.
func rampingPolicy(t *testing.T, name string, now *int64) Policy {
	t.Helper()
	p, err := NewPolicy(Options{Policy: name, SlowStart: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	clock := func() int64 { return *now }
	switch p := p.(type) {
	case *RoundRobin:
		p.slow.now, p.rnd.next = clock, seeded(11)
	case *WeightedRoundRobin:
		p.slow.now, p.rnd.next = clock, seeded(12)
	case *LeastConn:
		p.slow.now, p.rnd.next = clock, seeded(13)
	case *P2CEWMA:
		p.slow.now, p.rnd.next = clock, seeded(14)
	case *ConsistentHash:
		p.slow.now, p.fallback.slow.now, p.fallback.rnd.next = clock, clock, seeded(15)
	default:
		t.Fatalf("no clock to set in %T", p)
	}
	return p
}

func TestSlowStartRampsTheShare(t *testing.T) {
	const recovered = int64(1e18)
	key := func(i int) []byte { return strconv.AppendInt([]byte("k"), int64(i), 10) }
	for _, name := range allPolicies {
		t.Run(name, func(t *testing.T) {
			now := recovered
			p := rampingPolicy(t, name, &now)
			bs := backends(1, 1, 1, 1)
			bs[3].recoveredAt.Store(recovered)
			var got []float64
			for _, f := range []float64{0.1, 0.55, 1} {
				now = recovered + int64((f-rampFloor)/(1-rampFloor)*float64(time.Minute))
				var share float64
				if name == PolicyP2CEWMA { // p2c needs load to compare
					share = simulate(p, bs, []int{5, 5, 5, 5}, 8, 1000)[3]
				} else {
					share = shares(p, bs, 20000, key)[3]
				}
				got = append(got, share)
			}
			t.Logf("recovering backend's share at ramp 0.1, 0.55, 1: %.3f", got)
			if name != PolicyP2CEWMA {
				for i, f := range []float64{0.1, 0.55, 1} {
					want := f / 4 // f of its share, the rest passed on
					if name == PolicyWeightedRoundRobin {
						want = f / (3 + f) // weight f against 3 × 1
					}
					if math.Abs(got[i]-want) > 0.02 {
						t.Errorf("share at ramp %v = %.3f, want about %.3f", f, got[i], want)
					}
				}
			} else if !(got[0] < got[1] && got[1] < got[2] && got[0] < 0.1 && got[2] > 0.2) {
				t.Errorf("shares %.3f, want rising from under 0.1 to about 0.25", got)
			}
		})
	}
}

func TestSlowStartKeepsKeysSticky(t *testing.T) {
	const recovered = int64(1e18)
	now := recovered + int64(20*time.Second) // ramp 0.4
	p := rampingPolicy(t, PolicyConsistentHash, &now)
	bs := backends(1, 1, 1, 1)
	bs[3].recoveredAt.Store(recovered)
	keys := hashKeys(2000)
	first := owners(p, bs, keys)
	if again := owners(p, bs, keys); !equalStrings(first, again) {
		t.Error("a ramping backend's keys moved between two picks")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
