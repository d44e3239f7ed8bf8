//go:build !race

package cache

import "testing"

// TestL1HeapStaysWithinMemory offers 200,000 distinct entries to an L1
// bounded to 8 MiB: the live heap it keeps must stay within the bound plus
// 1 MiB. BenchmarkLocalMemory1M does the same with 1,000,000 keys and 64
// MiB (numbers in doc.go).
func TestL1HeapStaysWithinMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 200,000 entries")
	}
	const memory = 8 << 20
	for _, body := range []int{128, 2048} {
		if over := measureL1Heap(t, memory, 200_000, body); over > 1<<20 {
			t.Errorf("%d-byte bodies: live heap %.1f MiB over the %d MiB bound",
				body, float64(over)/(1<<20), memory>>20)
		}
	}
}
