package cache

import "time"

// maxDelta is the largest delta-seconds value kept: RFC 9111 §1.2.2 says a
// value that overflows must be taken as 2^31.
const maxDelta = 1 << 31

// Delta is the argument of a delta-seconds directive (max-age=60). Set
// reports whether the directive was present; Seconds is clamped to 2^31.
type Delta struct {
	Seconds uint32
	Set     bool
}

// Duration is the value as a time.Duration (0 when the directive is absent).
func (d Delta) Duration() time.Duration { return time.Duration(d.Seconds) * time.Second }

// atMost records v, keeping the smaller value when the directive repeats.
func (d *Delta) atMost(v uint32) {
	if !d.Set || v < d.Seconds {
		d.Seconds = v
	}
	d.Set = true
}

// atLeast records v, keeping the larger value when the directive repeats.
func (d *Delta) atLeast(v uint32) {
	if !d.Set || v > d.Seconds {
		d.Seconds = v
	}
	d.Set = true
}

// CacheControl holds the directives of Cache-Control field lines, request or
// response side (RFC 9111 §5.2, RFC 5861). The zero value means no
// directives. Unknown directives are ignored.
//
// Duplicates resolve to the most restrictive value (RFC 9111 §4.2.1 allows
// the first occurrence or treating the response as stale; the most
// restrictive is never less safe than either): the smallest max-age,
// s-maxage, max-stale, stale-while-revalidate and stale-if-error, the
// largest min-fresh. An invalid delta-seconds argument (max-age="abc",
// max-age=-1, max-age=) counts as 0, which makes a response stale.
//
// The qualified forms no-cache="field" and private="field" are treated as
// their unqualified forms, as RFC 9111 §5.2.2.4 and §5.2.2.7 note most
// caches do: the response is always revalidated, or not stored.
type CacheControl struct {
	MaxAge               Delta // max-age (request and response)
	SMaxAge              Delta // s-maxage (response)
	MaxStale             Delta // max-stale=N (request)
	MinFresh             Delta // min-fresh (request)
	StaleWhileRevalidate Delta // stale-while-revalidate (response, RFC 5861 §3)
	StaleIfError         Delta // stale-if-error (request and response, RFC 5861 §4)

	MaxStaleAny     bool // max-stale without an argument: any staleness is accepted
	NoStore         bool // no-store
	NoCache         bool // no-cache, qualified or not
	NoCacheFields   bool // no-cache had field names
	Private         bool // private, qualified or not
	PrivateFields   bool // private had field names
	Public          bool // public
	MustRevalidate  bool // must-revalidate
	ProxyRevalidate bool // proxy-revalidate
	MustUnderstand  bool // must-understand
	NoTransform     bool // no-transform
	OnlyIfCached    bool // only-if-cached (request)
	Immutable       bool // immutable (RFC 8246), recorded only
	// Malformed: a member had more than a directive and its argument
	// before the next comma ("max-age=60 private", "max-age=60;no-store"),
	// or an unterminated quoted string. What was meant cannot be told, and
	// the rest may be the very directive that forbids storing: Storable
	// refuses such a response.
	Malformed bool
}

// ParseCacheControl parses one Cache-Control field value. It never fails and
// does not allocate; see CacheControl for how odd input is read.
func ParseCacheControl(b []byte) CacheControl {
	var c CacheControl
	c.Add(b)
	return c
}

// Add parses one more Cache-Control field line into c, so that a message
// with several lines reads as one list (RFC 9110 §5.3).
func (c *CacheControl) Add(b []byte) { c.add(b, false) }

// SurrogateDevice is the device token of this cache in Surrogate-Control
// (W3C Edge Architecture): a directive targeted at a device
// ("max-age=60;sluice") applies here only when it names this token, and
// the gateway announces it to origins in Surrogate-Capability.
const SurrogateDevice = "sluice"

// AddSurrogate parses one Surrogate-Control field line into c, leaving out
// the directives targeted at another device ("max-age=3600;cdn"), and
// reports whether it applied a directive this cache knows.
func (c *CacheControl) AddSurrogate(b []byte) bool { return c.add(b, true) }

// add parses one field line; with surrogate, a directive may be followed by
// ";device" and counts only for SurrogateDevice. It reports whether a known
// directive was applied.
func (c *CacheControl) add(b []byte, surrogate bool) (known bool) {
	i := 0
	for i < len(b) {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == ',') {
			i++
		}
		if i >= len(b) {
			return known
		}
		start := i
		for i < len(b) && isTokenChar(b[i]) {
			i++
		}
		name := b[start:i]
		var arg []byte
		hasArg := false
		if j := skipOWS(b, i); j < len(b) && b[j] == '=' {
			hasArg = true
			// RFC 9111 §5.2 allows no whitespace around "=": with it the
			// argument is invalid (for delta-seconds: 0, stale), though
			// the directive still counts.
			spaced := j > i
			i = j + 1
			if j = skipOWS(b, i); j > i {
				spaced, i = true, j
			}
			if i < len(b) && b[i] == '"' {
				end, closed := quotedEnd(b, i)
				if closed {
					arg = b[i+1 : end-1]
				} else {
					arg = b[i+1:] // unterminated: keep what is there
					c.Malformed = true
				}
				i = end
			} else {
				s := i
				for i < len(b) && isTokenChar(b[i]) {
					i++
				}
				arg = b[s:i]
			}
			if spaced {
				arg = nil
			}
		} else {
			i = j
		}
		mine := true
		if j := skipOWS(b, i); surrogate && j < len(b) && b[j] == ';' {
			s := skipOWS(b, j+1)
			i = s
			for i < len(b) && isTokenChar(b[i]) {
				i++
			}
			mine = equalFold(b[s:i], SurrogateDevice)
		}
		// Skip whatever follows up to the next comma outside quotes: only
		// whitespace, in a well-formed member.
		for i < len(b) && b[i] != ',' {
			if b[i] != ' ' && b[i] != '\t' {
				c.Malformed = true
			}
			if b[i] == '"' {
				i, _ = quotedEnd(b, i)
				continue
			}
			i++
		}
		if len(name) > 0 && mine && c.apply(name, arg, hasArg) {
			known = true
		}
	}
	return known
}

// apply records one directive and reports whether it is one c knows.
func (c *CacheControl) apply(name, arg []byte, hasArg bool) bool {
	switch {
	case equalFold(name, "max-age"):
		c.MaxAge.atMost(parseDelta(arg, hasArg))
	case equalFold(name, "s-maxage"):
		c.SMaxAge.atMost(parseDelta(arg, hasArg))
	case equalFold(name, "max-stale"):
		if hasArg {
			c.MaxStale.atMost(parseDelta(arg, hasArg))
		} else {
			c.MaxStaleAny = true
		}
	case equalFold(name, "min-fresh"):
		c.MinFresh.atLeast(parseDelta(arg, hasArg))
	case equalFold(name, "stale-while-revalidate"):
		c.StaleWhileRevalidate.atMost(parseDelta(arg, hasArg))
	case equalFold(name, "stale-if-error"):
		c.StaleIfError.atMost(parseDelta(arg, hasArg))
	case equalFold(name, "no-store"):
		c.NoStore = true
	case equalFold(name, "no-cache"):
		c.NoCache = true
		c.NoCacheFields = c.NoCacheFields || hasArg
	case equalFold(name, "private"):
		c.Private = true
		c.PrivateFields = c.PrivateFields || hasArg
	case equalFold(name, "public"):
		c.Public = true
	case equalFold(name, "must-revalidate"):
		c.MustRevalidate = true
	case equalFold(name, "proxy-revalidate"):
		c.ProxyRevalidate = true
	case equalFold(name, "must-understand"):
		c.MustUnderstand = true
	case equalFold(name, "no-transform"):
		c.NoTransform = true
	case equalFold(name, "only-if-cached"):
		c.OnlyIfCached = true
	case equalFold(name, "immutable"):
		c.Immutable = true
	default:
		return false
	}
	return true
}

// parseDelta reads delta-seconds = 1*DIGIT (RFC 9111 §1.2.2). Anything
// else, including a missing argument, is 0; overflow is 2^31.
func parseDelta(b []byte, hasArg bool) uint32 {
	if !hasArg || len(b) == 0 {
		return 0
	}
	var n uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0
		}
		n = n*10 + uint64(ch-'0')
		if n >= maxDelta {
			n = maxDelta
		}
	}
	return uint32(n)
}

// quotedEnd returns the index just past the quoted-string that starts at
// b[i] == '"' and true, or len(b) and false when it is not terminated.
func quotedEnd(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return len(b), false
}

func skipOWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// isTokenChar reports whether ch is a tchar (RFC 9110 §5.6.2).
func isTokenChar(ch byte) bool {
	switch {
	case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		return true
	}
	switch ch {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes compares two ASCII strings ignoring case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(ch byte) byte {
	if ch >= 'A' && ch <= 'Z' {
		return ch + 'a' - 'A'
	}
	return ch
}
