package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Ratio is a fraction between 0 and 1. In YAML and in the environment it is
// written as a percentage ("20%") or as a plain fraction (0.2); a number
// above 1 without "%" is refused rather than guessed at, since "20" could
// mean 20% or twenty times.
type Ratio float64

// ParseRatio parses "20%", "2.5 %" or "0.2".
func ParseRatio(s string) (Ratio, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	if pct {
		t = strings.TrimSpace(strings.TrimSuffix(t, "%"))
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || t[0] == '+' {
		return 0, fmt.Errorf("invalid ratio %q (want a percentage such as \"20%%\" or a fraction such as 0.2)", s)
	}
	if pct {
		f /= 100
	}
	return checkRatio(f, s)
}

func checkRatio(f float64, orig any) (Ratio, error) {
	if f < 0 || f > 1 || f != f {
		return 0, fmt.Errorf("invalid ratio %v: must be between 0%% and 100%%", orig)
	}
	return Ratio(f), nil
}

// String formats r as a percentage.
func (r Ratio) String() string {
	return strconv.FormatFloat(float64(r)*100, 'f', -1, 64) + "%"
}

// MarshalText writes r as a percentage, so a dumped configuration loads back.
func (r Ratio) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func toRatio(data any) (any, error) {
	switch v := data.(type) {
	case Ratio:
		return float64(v), nil
	case string:
		r, err := ParseRatio(v)
		return float64(r), err
	case float64:
		r, err := checkRatio(v, v)
		return float64(r), err
	case float32:
		r, err := checkRatio(float64(v), v)
		return float64(r), err
	}
	if n, ok := asInt64(data); ok {
		r, err := checkRatio(float64(n), n)
		return float64(r), err
	}
	return nil, fmt.Errorf("expected a ratio such as \"20%%\" or 0.2, got %s", describe(data))
}
