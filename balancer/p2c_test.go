package balancer

import (
	"testing"
	"time"
)

// newP2C returns a p2c_ewma policy drawing from a fixed seed.
func newP2C(seed uint64) *P2CEWMA {
	p := &P2CEWMA{}
	p.rnd.next = seeded(seed)
	return p
}

func TestP2CEWMA(t *testing.T) {
	t.Run("spreads picks evenly over equal backends", func(t *testing.T) {
		bs := backends(1, 1, 1, 1)
		if got := shares(newP2C(1), bs, 40000, nil); !within(got, 0.25, 0.02) {
			t.Errorf("shares = %.3f, want 0.25 each", got)
		}
	})
	t.Run("spreads load evenly over equally fast backends under load", func(t *testing.T) {
		bs := backends(1, 1, 1, 1)
		if got := simulate(newP2C(2), bs, []int{5, 5, 5, 5}, 8, 2000); !within(got, 0.25, 0.03) {
			t.Errorf("shares = %.3f, want 0.25 each", got)
		}
	})
	t.Run("sends much less to a backend ten times slower", func(t *testing.T) {
		latency := []int{2, 2, 2, 20}
		got := simulate(newP2C(3), backends(1, 1, 1, 1), latency, 8, 2000)
		rr := simulate(&RoundRobin{}, backends(1, 1, 1, 1), latency, 8, 2000)
		lc := simulate(&LeastConn{}, backends(1, 1, 1, 1), latency, 8, 2000)
		t.Logf("slow backend's share: p2c_ewma %.3f, least_conn %.3f, round_robin %.3f", got[3], lc[3], rr[3])
		if got[3] > 0.06 {
			t.Errorf("slow backend's share = %.3f, want under 0.06 (round_robin gives it %.3f)", got[3], rr[3])
		}
		if got[3] == 0 {
			t.Error("slow backend got nothing; it must keep a trickle so its average can recover")
		}
	})
	t.Run("sends traffic by weight under load", func(t *testing.T) {
		got := simulate(newP2C(4), backends(1, 3), []int{10, 10}, 8, 2000)
		if got[1] < 0.65 || got[1] > 0.85 {
			t.Errorf("weight 3 of 4 got %.3f of the picks, want about 0.75", got[1])
		}
	})
	t.Run("gives a backend without latency yet a fair share, not a flood", func(t *testing.T) {
		bs := backends(1, 1, 1, 1)
		for _, b := range bs[:3] {
			b.Observe(Outcome{Status: 200, Latency: 20 * time.Millisecond})
		}
		p := newP2C(5)
		var fresh int
		for range 400 { // nothing completes: the new backend's average stays unknown
			b := p.Pick(bs, nil)
			b.inFlight.Add(1)
			if b == bs[3] {
				fresh++
			}
		}
		if fresh < 60 || fresh > 140 {
			t.Errorf("new backend got %d of 400 picks, want about 100", fresh)
		}
	})
	t.Run("probes a backend that looked slow even at low load", func(t *testing.T) {
		bs := backends(1, 1, 1)
		for range warmSamples {
			bs[0].Observe(Outcome{Status: 200, Latency: 200 * time.Millisecond}) // slow answers
			for _, b := range bs[1:] {
				b.Observe(Outcome{Status: 200, Latency: 2 * time.Millisecond})
			}
		}
		p := newP2C(7)
		var probed int
		for range 3000 { // every request ends before the next: in flight is always 0
			if p.Pick(bs, nil) == bs[0] {
				probed++
			}
		}
		if probed == 0 || probed > 300 {
			t.Errorf("the backend that looked slow got %d of 3000 picks; want a few probes, not a share", probed)
		}
		// Its probes show it fast again: it gets its share back.
		for range 100 {
			bs[0].Observe(Outcome{Status: 200, Latency: 2 * time.Millisecond})
		}
		if got := shares(p, bs, 30000, nil); got[0] < 0.25 {
			t.Errorf("recovered backend's share = %.3f, want about a third", got[0])
		}
	})
	t.Run("shares evenly when latencies differ by noise only", func(t *testing.T) {
		bs := backends(1, 1, 1)
		for i, b := range bs {
			for range warmSamples {
				b.Observe(Outcome{Status: 200, Latency: time.Duration(2000+50*i) * time.Microsecond})
			}
		}
		if got := shares(newP2C(8), bs, 30000, nil); !within(got, 1.0/3, 0.03) {
			t.Errorf("shares = %.3f, want a third each", got)
		}
	})
	t.Run("takes the one available backend", func(t *testing.T) {
		bs := backends(1, 1, 1)
		bs[0].SetHealthy(false)
		bs[2].SetHealthy(false)
		if got := picks(newP2C(6), bs, 5); got != "bbbbb" {
			t.Errorf("picks = %q, want bbbbb", got)
		}
	})
}
