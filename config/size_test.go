package config

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr bool
	}{
		{"0", 0, false},
		{"4194304", 4 << 20, false},
		{"512B", 512, false},
		{"1KB", 1000, false},
		{"1KiB", 1024, false},
		{"4MiB", 4 << 20, false},
		{"4MB", 4_000_000, false},
		{"2GiB", 2 << 30, false},
		{"3GB", 3_000_000_000, false},
		{"16 kib", 16 << 10, false},
		{" 8KiB ", 8 << 10, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"-1", 0, true},
		{"+1", 0, true},
		{"1.5MiB", 0, true},
		{"4 MBs", 0, true},
		{"4Mi", 0, true},
		{"9999999999GiB", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSizeStringReadsBack(t *testing.T) {
	for _, tt := range []struct {
		s    Size
		want string
	}{
		{0, "0B"}, {1500, "1500B"}, {4 * MiB, "4MiB"}, {16 * KiB, "16KiB"}, {3 * GB, "3GB"}, {2000, "2KB"}, {GiB, "1GiB"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.s), got, tt.want)
		}
		var back Size
		if err := back.UnmarshalText([]byte(tt.want)); err != nil || back != tt.s {
			t.Errorf("UnmarshalText(%q) = %d, %v; want %d", tt.want, int64(back), err, int64(tt.s))
		}
	}
}
