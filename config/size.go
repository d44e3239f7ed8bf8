package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a number of bytes. In YAML and in the environment it is written as
// a plain integer or an integer with a unit: B, KB/KiB, MB/MiB, GB/GiB, where
// K is 1000 and Ki is 1024 (units ignore case, a space before the unit is
// allowed).
type Size int64

// Size units.
const (
	B   Size = 1
	KB  Size = 1000
	MB  Size = 1000 * KB
	GB  Size = 1000 * MB
	KiB Size = 1024
	MiB Size = 1024 * KiB
	GiB Size = 1024 * MiB
)

// ParseSize parses "4MiB", "16 KB", "512B" or "4194304". Fractions and
// negative values are refused: a size is a whole, non-negative number of
// bytes.
func ParseSize(s string) (Size, error) {
	// Longer suffixes first, so "KiB" is not read as "Ki" + "B".
	units := [...]struct {
		suffix string
		size   Size
	}{
		{"kib", KiB}, {"mib", MiB}, {"gib", GiB},
		{"kb", KB}, {"mb", MB}, {"gb", GB},
		{"b", B},
	}
	t := strings.TrimSpace(s)
	mult := B
	lower := strings.ToLower(t)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.size
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	if t == "" || t[0] < '0' || t[0] > '9' {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n) * mult, nil
}

// String renders the size with the largest unit that divides it exactly,
// preferring binary units: 4194304 is "4MiB", 1500 is "1500B".
func (s Size) String() string {
	if s != 0 {
		for _, u := range [...]struct {
			suffix string
			size   Size
		}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}, {"GB", GB}, {"MB", MB}, {"KB", KB}} {
			if s%u.size == 0 {
				return strconv.FormatInt(int64(s/u.size), 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText writes the String form, so a dumped config reads back.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses what ParseSize accepts.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
