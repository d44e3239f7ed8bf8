package balancer

import "testing"

func TestJumpHash(t *testing.T) {
	keys := hashKeys(100000)

	t.Run("moves about 1/(n+1) of the keys, all to the new shard, when one is appended", func(t *testing.T) {
		for _, n := range []int{1, 4, 10} {
			moved := 0
			for _, k := range keys {
				h := HashKey(k)
				before, after := JumpHash(h, n), JumpHash(h, n+1)
				if before != after {
					moved++
					if after != n {
						t.Fatalf("n=%d: key %s moved from shard %d to %d, not to the new one", n, k, before, after)
					}
				}
			}
			frac := float64(moved) / float64(len(keys))
			t.Logf("appending shard %d to %d moved %.4f of %d keys (ideal %.4f)", n+1, n, frac, len(keys), 1/float64(n+1))
			if want := 1 / float64(n+1); frac < want*0.9 || frac > want*1.1 {
				t.Errorf("n=%d: %.4f of the keys moved, want about %.4f", n, frac, want)
			}
		}
	})

	t.Run("spreads keys evenly", func(t *testing.T) {
		counts := make([]int, 7)
		for _, k := range keys {
			counts[JumpHash(HashKey(k), len(counts))]++
		}
		for i, c := range counts {
			if share := float64(c) / float64(len(keys)); share < 0.13 || share > 0.156 {
				t.Errorf("shard %d got %.4f of the keys, want about 1/7", i, share)
			}
		}
	})

	t.Run("returns -1 without buckets and 0 with one", func(t *testing.T) {
		if got := JumpHash(42, 0); got != -1 {
			t.Errorf("JumpHash(42, 0) = %d, want -1", got)
		}
		if got := JumpHash(42, 1); got != 0 {
			t.Errorf("JumpHash(42, 1) = %d, want 0", got)
		}
	})
}
