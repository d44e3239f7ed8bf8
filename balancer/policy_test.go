package balancer

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// backends returns unconnected backends named a, b, c... with the given
// weights; nothing is dialled until Do.
func backends(weights ...int) []*Backend {
	o := testOptions()
	bs := make([]*Backend, len(weights))
	for i, w := range weights {
		bs[i] = NewBackend(string(rune('a'+i))+":80", w, o)
	}
	return bs
}

// picks runs n picks, each with a different key, and returns the sequence
// of backend names.
func picks(p Policy, bs []*Backend, n int) string {
	var sb strings.Builder
	for i := range n {
		b := p.Pick(bs, strconv.AppendInt([]byte("key-"), int64(i), 10))
		if b == nil {
			sb.WriteByte('-')
			continue
		}
		sb.WriteByte(b.Addr()[0])
	}
	return sb.String()
}

// allPolicies are the names NewPolicy accepts.
var allPolicies = []string{PolicyRoundRobin, PolicyWeightedRoundRobin, PolicyLeastConn, PolicyP2CEWMA, PolicyConsistentHash}

// newPolicy returns the policy name with default options.
func newPolicy(t testing.TB, name string) Policy {
	t.Helper()
	p, err := NewPolicy(Options{Policy: name})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seeded returns a deterministic random source for a policy under test.
func seeded(seed uint64) func() uint64 { return rand.New(rand.NewPCG(seed, 1)).Uint64 }

// shares runs n picks and returns the fraction each backend got, by index.
func shares(p Policy, bs []*Backend, n int, key func(i int) []byte) []float64 {
	index := make(map[*Backend]int, len(bs))
	for i, b := range bs {
		index[b] = i
	}
	got := make([]float64, len(bs))
	for i := range n {
		var k []byte
		if key != nil {
			k = key(i)
		}
		if b := p.Pick(bs, k); b != nil {
			got[index[b]] += 1 / float64(n)
		}
	}
	return got
}

func TestNewPolicy(t *testing.T) {
	for _, name := range allPolicies {
		if p, err := NewPolicy(Options{Policy: name}); err != nil || p == nil {
			t.Errorf("NewPolicy(%q) = %v, %v; want a policy", name, p, err)
		}
	}
	if _, err := NewPolicy(Options{Policy: "random"}); err == nil {
		t.Error(`NewPolicy("random") succeeded, want an error`)
	}
}

func TestPoliciesShareBehaviour(t *testing.T) {
	for _, name := range allPolicies {
		t.Run(name+" returns nil when every backend is unhealthy", func(t *testing.T) {
			p := newPolicy(t, name)
			bs := backends(1, 2, 3)
			for _, b := range bs {
				b.SetHealthy(false)
			}
			if got := picks(p, bs, 3); got != "---" {
				t.Errorf("picks = %q, want ---", got)
			}
		})
		t.Run(name+" returns nil for an empty pool", func(t *testing.T) {
			p := newPolicy(t, name)
			if b := p.Pick(nil, nil); b != nil {
				t.Errorf("Pick(nil) = %v, want nil", b.Addr())
			}
			if b := p.Pick(nil, []byte("key")); b != nil {
				t.Errorf("Pick(nil, key) = %v, want nil", b.Addr())
			}
		})
		t.Run(name+" never picks an unhealthy backend", func(t *testing.T) {
			p := newPolicy(t, name)
			bs := backends(1, 1, 1)
			bs[1].SetHealthy(false)
			if got := picks(p, bs, 60); strings.Contains(got, "b") || strings.Count(got, "a") == 0 || strings.Count(got, "c") == 0 {
				t.Errorf("picks = %q, want only a and c, both", got)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	t.Run("takes backends in turn", func(t *testing.T) {
		if got := picks(&RoundRobin{}, backends(1, 1, 1), 7); got != "abcabca" {
			t.Errorf("picks = %q, want abcabca", got)
		}
	})
	t.Run("ignores weights", func(t *testing.T) {
		if got := picks(&RoundRobin{}, backends(5, 1), 4); got != "abab" {
			t.Errorf("picks = %q, want abab", got)
		}
	})
}

func TestWeightedRoundRobin(t *testing.T) {
	t.Run("interleaves picks smoothly, as nginx", func(t *testing.T) {
		if got := picks(&WeightedRoundRobin{}, backends(5, 1, 1), 7); got != "aabacaa" {
			t.Errorf("picks = %q, want aabacaa", got)
		}
	})
	t.Run("honours weights exactly over every cycle", func(t *testing.T) {
		weights := []int{3, 1, 4, 2}
		bs := backends(weights...)
		p := &WeightedRoundRobin{}
		for cycle := range 5 {
			got := picks(p, bs, 10)
			for i, w := range weights {
				if n := strings.Count(got, string(rune('a'+i))); n != w {
					t.Errorf("cycle %d: %c picked %d times in %q, want %d", cycle, 'a'+i, n, got, w)
				}
			}
		}
	})
	t.Run("shares a dead backend's turns by weight among the others", func(t *testing.T) {
		bs := backends(2, 5, 1)
		bs[1].SetHealthy(false)
		got := picks(&WeightedRoundRobin{}, bs, 30)
		if strings.Count(got, "a") != 20 || strings.Count(got, "c") != 10 {
			t.Errorf("picks = %q, want a 20 times and c 10", got)
		}
	})
}

func TestLeastConn(t *testing.T) {
	t.Run("picks the backend with the fewest requests in flight", func(t *testing.T) {
		bs := backends(1, 1, 1)
		bs[0].inFlight.Store(3)
		bs[1].inFlight.Store(1)
		bs[2].inFlight.Store(2)
		if got := picks(&LeastConn{}, bs, 5); got != "bbbbb" {
			t.Errorf("picks = %q, want bbbbb", got)
		}
	})
	t.Run("spreads ties in turn", func(t *testing.T) {
		bs := backends(1, 1, 1, 1)
		bs[2].inFlight.Store(1)
		if got := picks(&LeastConn{}, bs, 6); got != "abddab" {
			t.Errorf("picks = %q, want abddab", got)
		}
	})
}

// simulate runs picks against backends whose requests take latency[i] ticks
// each (1 tick = 1ms of EWMA): every tick the requests due complete (and are
// observed), then arrivals new ones are picked and counted in flight. It
// returns each backend's share of the picks, and leaves nothing in flight.
func simulate(p Policy, bs []*Backend, latency []int, arrivals, ticks int) []float64 {
	index := make(map[*Backend]int, len(bs))
	for i, b := range bs {
		index[b] = i
	}
	due := make(map[int][]*Backend)
	got := make([]float64, len(bs))
	var key [8]byte
	for tick := range ticks {
		for _, b := range due[tick] {
			b.inFlight.Add(-1)
			b.Observe(Outcome{Status: 200, Latency: time.Duration(latency[index[b]]) * time.Millisecond})
		}
		delete(due, tick)
		for a := range arrivals {
			key[0], key[1] = byte(a), byte(tick)
			b := p.Pick(bs, key[:])
			if b == nil {
				continue
			}
			got[index[b]] += 1 / float64(arrivals*ticks)
			b.inFlight.Add(1)
			end := tick + latency[index[b]]
			due[end] = append(due[end], b)
		}
	}
	for _, left := range due {
		for _, b := range left {
			b.inFlight.Add(-1)
		}
	}
	return got
}

// within reports whether every share is within tolerance of want.
func within(got []float64, want, tolerance float64) bool {
	for _, g := range got {
		if g < want-tolerance || g > want+tolerance {
			return false
		}
	}
	return true
}
