package balancer

import (
	"strings"
	"sync"
	"testing"
)

func TestWeightedSchedule(t *testing.T) {
	t.Run("gives each backend exactly its weight per cycle when picks run concurrently", func(t *testing.T) {
		bs := backends(3, 1, 4, 2) // a cycle of 10
		p := &WeightedRoundRobin{}
		const workers, cycles = 5, 400 // 800 picks each
		counts := make([][]int, workers)
		var wg sync.WaitGroup
		for w := range workers {
			counts[w] = make([]int, len(bs))
			wg.Go(func() {
				for range cycles * 10 / workers {
					counts[w][int(p.Pick(bs, nil).Addr()[0]-'a')]++
				}
			})
		}
		wg.Wait()
		for i, weight := range []int{3, 1, 4, 2} {
			total := 0
			for w := range workers {
				total += counts[w][i]
			}
			if total != weight*cycles {
				t.Errorf("%c picked %d times in %d cycles, want exactly %d", 'a'+i, total, cycles, weight*cycles)
			}
		}
	})
	t.Run("follows a weight changed in place", func(t *testing.T) {
		bs := backends(1, 1)
		p := &WeightedRoundRobin{}
		if got := picks(p, bs, 4); got != "abab" {
			t.Fatalf("picks = %q, want abab", got)
		}
		bs[0].setWeight(3)
		got := picks(p, bs, 41)[1:] // the first pick notices and rebuilds
		if strings.Count(got, "a") != 30 || strings.Count(got, "b") != 10 {
			t.Errorf("after weights 3,1: picks = %q, want a 30 times and b 10", got)
		}
	})
	t.Run("reduces weights by their common divisor", func(t *testing.T) {
		s := newSchedule(backends(200, 100, 100))
		if got := len(s.turns); got != 4 {
			t.Errorf("a cycle of weights 200,100,100 has %d turns, want 4", got)
		}
	})
	t.Run("bounds a cycle of huge weights, keeping every backend in it", func(t *testing.T) {
		bs := backends(1_000_000, 999_999, 1)
		s := newSchedule(bs)
		if len(s.turns) > maxSchedule+len(bs) {
			t.Fatalf("cycle of %d turns, want at most about %d", len(s.turns), maxSchedule)
		}
		seen := make([]int, len(bs))
		for _, k := range s.turns {
			seen[k]++
		}
		if seen[2] == 0 || seen[0] < seen[1] {
			t.Errorf("turns per backend = %v, want the weight-1 backend present and the order kept", seen)
		}
	})
	t.Run("hands a dead heavy backend's turns to the live light ones", func(t *testing.T) {
		bs := backends(1, 100, 3)
		bs[1].SetHealthy(false)
		got := picks(&WeightedRoundRobin{}, bs, 4000)
		a, c := strings.Count(got, "a"), strings.Count(got, "c")
		if a+c != 4000 || a < 700 || a > 1300 {
			t.Errorf("a %d and c %d of 4000 picks, want about 1000 and 3000", a, c)
		}
	})
}
