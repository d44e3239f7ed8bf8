package cache

// RangeAnswer is how a stored response answers a request's Range field
// (RFC 9110 §14.2).
type RangeAnswer uint8

const (
	// RangeWhole: the field is ignored and the whole response answers. A
	// server may always do so; here when the field is invalid, is in a unit
	// other than bytes, or asks for several ranges.
	RangeWhole RangeAnswer = iota
	// RangePartial: 206 with the bytes first to last.
	RangePartial
	// RangeUnsatisfiable: 416; no byte of the range exists.
	RangeUnsatisfiable
)

// ParseRange reads a Range field value against a representation of size
// bytes: "bytes=first-last", "bytes=first-" or "bytes=-suffix" (§14.1.2),
// with last clipped to the end. One range only: a list of several is
// answered whole, which spares the multipart framing and costs nothing a
// client cannot handle (§14.2: a server MAY ignore Range).
func ParseRange(v []byte, size int64) (first, last int64, a RangeAnswer) {
	v = trimOWS(v)
	eq := -1
	for i, c := range v {
		if c == '=' {
			eq = i
			break
		}
	}
	if eq < 0 || !equalFold(v[:eq], "bytes") {
		return 0, 0, RangeWhole
	}
	var spec []byte
	n := 0
	forEachMember(v[eq+1:], func(m []byte) {
		spec = m
		n++
	})
	if n != 1 {
		return 0, 0, RangeWhole
	}
	dash := -1
	for i, c := range spec {
		if c == '-' {
			dash = i
			break
		}
	}
	if dash < 0 {
		return 0, 0, RangeWhole
	}
	if dash == 0 { // -suffix: the last suffix bytes
		suffix, ok := parseDigits(spec[1:])
		switch {
		case !ok:
			return 0, 0, RangeWhole
		case suffix == 0 || size == 0:
			return 0, 0, RangeUnsatisfiable
		}
		return max(0, size-suffix), size - 1, RangePartial
	}
	first, ok := parseDigits(spec[:dash])
	if !ok {
		return 0, 0, RangeWhole
	}
	last = size - 1
	if dash+1 < len(spec) {
		if last, ok = parseDigits(spec[dash+1:]); !ok || last < first {
			return 0, 0, RangeWhole
		}
	}
	if first >= size {
		return 0, 0, RangeUnsatisfiable
	}
	return first, min(last, size-1), RangePartial
}

// parseDigits reads 1*DIGIT that fits an int64 (18 digits do).
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 || !allDigits(b) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		n = n*10 + int64(c-'0')
	}
	return n, true
}
