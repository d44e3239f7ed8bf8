package origin

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Latency is the shape of the delay the origin adds before answering an
// /orders or /echo request. The zero value adds none.
//
// Latency implements flag.Value with the forms "none", "fixed:2ms",
// "uniform:1ms-5ms", "lognormal:2ms:0.5" and "lognormal:2ms:0.5:50ms"
// (median, sigma, cap).
type Latency struct {
	// Dist is "" (no delay), "fixed", "uniform" or "lognormal".
	Dist string
	// Fixed is the delay of the "fixed" distribution.
	Fixed time.Duration
	// Min and Max bound the "uniform" distribution. For "lognormal", a
	// non-zero Max caps the sample, which keeps a large Sigma from producing
	// delays longer than the client's timeout.
	Min, Max time.Duration
	// Median and Sigma shape the "lognormal" distribution: the delay is
	// Median·e^(Sigma·N(0,1)). Sigma 0.5 gives a p99 about 3.2x the median,
	// close to what a real service with a warm cache shows.
	Median time.Duration
	Sigma  float64
}

// The distribution names of Latency.Dist.
const (
	distFixed     = "fixed"
	distUniform   = "uniform"
	distLognormal = "lognormal"
)

// Validate reports whether l describes a usable distribution.
func (l Latency) Validate() error {
	switch l.Dist {
	case "":
		return nil
	case distFixed:
		if l.Fixed < 0 {
			return fmt.Errorf("latency fixed: negative delay %v", l.Fixed)
		}
	case distUniform:
		if l.Min < 0 || l.Max < l.Min {
			return fmt.Errorf("latency uniform: want 0 <= min <= max, got %v-%v", l.Min, l.Max)
		}
	case distLognormal:
		if l.Median <= 0 {
			return fmt.Errorf("latency lognormal: median must be positive, got %v", l.Median)
		}
		if l.Sigma < 0 || math.IsNaN(l.Sigma) || math.IsInf(l.Sigma, 0) {
			return fmt.Errorf("latency lognormal: sigma must be a finite number >= 0, got %v", l.Sigma)
		}
		if l.Max < 0 {
			return fmt.Errorf("latency lognormal: negative cap %v", l.Max)
		}
	default:
		return fmt.Errorf("latency: unknown distribution %q (want fixed, uniform or lognormal)", l.Dist)
	}
	return nil
}

// sample draws one delay. It never allocates.
func (l *Latency) sample() time.Duration {
	switch l.Dist {
	case distFixed:
		return l.Fixed
	case distUniform:
		if l.Max == l.Min {
			return l.Min
		}
		return l.Min + rand.N(l.Max-l.Min+1)
	case distLognormal:
		d := time.Duration(float64(l.Median) * math.Exp(l.Sigma*rand.NormFloat64()))
		if l.Max > 0 && d > l.Max {
			d = l.Max
		}
		return d
	}
	return 0
}

// String formats l in the form Set accepts.
func (l *Latency) String() string {
	if l == nil {
		return "none"
	}
	switch l.Dist {
	case distFixed:
		return "fixed:" + l.Fixed.String()
	case distUniform:
		return "uniform:" + l.Min.String() + "-" + l.Max.String()
	case distLognormal:
		s := "lognormal:" + l.Median.String() + ":" + strconv.FormatFloat(l.Sigma, 'g', -1, 64)
		if l.Max > 0 {
			s += ":" + l.Max.String()
		}
		return s
	}
	return "none"
}

// Set parses the flag form of a latency (see the type's comment).
func (l *Latency) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		*l = Latency{}
		return nil
	}
	dist, rest, _ := strings.Cut(s, ":")
	var v Latency
	var err error
	switch dist {
	case distFixed:
		v.Dist = dist
		v.Fixed, err = time.ParseDuration(rest)
	case distUniform:
		lo, hi, ok := strings.Cut(rest, "-")
		if !ok {
			return fmt.Errorf("latency %q: want uniform:MIN-MAX, e.g. uniform:1ms-5ms", s)
		}
		v.Dist = dist
		if v.Min, err = time.ParseDuration(lo); err == nil {
			v.Max, err = time.ParseDuration(hi)
		}
	case distLognormal:
		parts := strings.Split(rest, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return fmt.Errorf("latency %q: want lognormal:MEDIAN:SIGMA[:CAP], e.g. lognormal:2ms:0.5", s)
		}
		v.Dist = dist
		if v.Median, err = time.ParseDuration(parts[0]); err == nil {
			v.Sigma, err = strconv.ParseFloat(parts[1], 64)
		}
		if err == nil && len(parts) == 3 {
			v.Max, err = time.ParseDuration(parts[2])
		}
	default:
		return fmt.Errorf("latency %q: want none, fixed:D, uniform:MIN-MAX or lognormal:MEDIAN:SIGMA[:CAP]", s)
	}
	if err != nil {
		return fmt.Errorf("latency %q: %w", s, err)
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("latency %q: %w", s, err)
	}
	*l = v
	return nil
}
