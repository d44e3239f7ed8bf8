package cache

import "testing"

func TestParseRange(t *testing.T) {
	const size = 11
	tests := []struct {
		in          string
		first, last int64
		want        RangeAnswer
	}{
		{"bytes=0-1", 0, 1, RangePartial},
		{"bytes=5-", 5, 10, RangePartial},
		{"bytes=-1", 10, 10, RangePartial},
		{"bytes=-50", 0, 10, RangePartial},
		{"bytes=3-100", 3, 10, RangePartial},
		{"Bytes=2-2", 2, 2, RangePartial},
		{" bytes=1-2 ", 1, 2, RangePartial},
		{"bytes=1-2, ", 1, 2, RangePartial}, // §5.6.1: empty members are ignored
		{"bytes=11-", 0, 0, RangeUnsatisfiable},
		{"bytes=20-30", 0, 0, RangeUnsatisfiable},
		{"bytes=-0", 0, 0, RangeUnsatisfiable},
		{"bytes=0-1,3-4", 0, 0, RangeWhole},
		{"bytes=2-1", 0, 0, RangeWhole},
		{"bytes=a-1", 0, 0, RangeWhole},
		{"bytes=1", 0, 0, RangeWhole},
		{"bytes=-", 0, 0, RangeWhole},
		{"bytes=+1-2", 0, 0, RangeWhole},
		{"bytes=1 -2", 0, 0, RangeWhole},
		{"bytes=99999999999999999999-", 0, 0, RangeWhole},
		{"items=0-1", 0, 0, RangeWhole},
		{"bytes 0-1", 0, 0, RangeWhole},
		{"", 0, 0, RangeWhole},
	}
	for _, tt := range tests {
		first, last, a := ParseRange([]byte(tt.in), size)
		if a != tt.want || a == RangePartial && (first != tt.first || last != tt.last) {
			t.Errorf("ParseRange(%q, %d) = %d, %d, %d; want %d, %d, %d", tt.in, size, first, last, a, tt.first, tt.last, tt.want)
		}
	}
	if _, _, a := ParseRange([]byte("bytes=-5"), 0); a != RangeUnsatisfiable {
		t.Errorf("a suffix of an empty body: %d, want unsatisfiable", a)
	}
	if _, _, a := ParseRange([]byte("bytes=0-"), 0); a != RangeUnsatisfiable {
		t.Errorf("bytes=0- of an empty body: %d, want unsatisfiable", a)
	}
}
