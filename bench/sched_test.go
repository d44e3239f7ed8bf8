package bench

import (
	"strconv"
	"testing"
	"time"
)

// The open-loop schedule used to compute slot k of connection i as
// int64(phase + k×interval), truncated: with rate 333 over 7 connections the
// slot due exactly at the end of the warm-up fell 1ns short of it, so a
// one-second window held 332 slots, not 333.
func TestScheduleHoldsRateTimesDurationSlotsInAWindow(t *testing.T) {
	for _, rate := range []int{7, 300, 333, 1000, 12345, 20000} {
		for _, conns := range []int{1, 3, 7, 64} {
			t.Run(strconv.Itoa(rate)+"/s over "+strconv.Itoa(conns)+" connections", func(t *testing.T) {
				const warm, end = int64(time.Second), int64(2 * time.Second)
				n := 0
				for i := 0; i < conns; i++ {
					for k := 0; ; k++ {
						due := slotDue(float64(rate), conns, i, k)
						if due >= end {
							break
						}
						if due >= warm {
							n++
						}
					}
				}
				if n != rate {
					t.Errorf("%d slots due in the measured second, want %d", n, rate)
				}
			})
		}
	}
}

func TestScheduleInterleavesTheConnectionsEvenly(t *testing.T) {
	const rate, conns = 1000.0, 8
	var dues []int64
	for k := 0; k < 4; k++ {
		for i := 0; i < conns; i++ {
			dues = append(dues, slotDue(rate, conns, i, k))
		}
	}
	for j, d := range dues {
		if want := int64(j) * int64(time.Millisecond); d != want {
			t.Fatalf("slot %d due at %d, want %d", j, d, want)
		}
	}
}
