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

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in   string
		want ContentRange
	}{
		{"bytes 4-9/10", ContentRange{4, 9, 10, true}},
		{"bytes 0-0/1", ContentRange{0, 0, 1, true}},
		{"Bytes 1-2/3", ContentRange{1, 2, 3, true}},
		{" bytes 1-2/30 ", ContentRange{1, 2, 30, true}},
		{"bytes 0-4/*", ContentRange{}},   // unknown length: cannot be placed
		{"bytes */10", ContentRange{}},    // a 416's
		{"bytes 5-4/10", ContentRange{}},  // backwards
		{"bytes 0-10/10", ContentRange{}}, // past the end
		{"bytes 0-4", ContentRange{}},
		{"bytes -4/10", ContentRange{}},
		{"bytes 0--4/10", ContentRange{}},
		{"bytes 0-4/10/10", ContentRange{}},
		{"bytes +0-4/10", ContentRange{}},
		{"items 0-4/10", ContentRange{}},
		{"bytes=0-4/10", ContentRange{}},
		{"", ContentRange{}},
	}
	for _, tt := range tests {
		if got := ParseContentRange([]byte(tt.in)); got != tt.want {
			t.Errorf("ParseContentRange(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
