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

// ContentRange is a Content-Range field's one byte range: bytes First to
// Last (inclusive) of a representation of Total bytes (RFC 9110 §14.4). OK
// is false when the field is not exactly that.
type ContentRange struct {
	First, Last, Total int64
	OK                 bool
}

// Len is the number of bytes the range holds.
func (c ContentRange) Len() int64 { return c.Last - c.First + 1 }

// ParseContentRange reads "bytes first-last/complete-length" with
// first <= last < complete-length. The unsatisfied-range form ("bytes
// */10"), an unknown length ("bytes 0-4/*") and other units are not OK:
// a cache can neither place nor serve such a part.
func ParseContentRange(v []byte) ContentRange {
	v = trimOWS(v)
	const unit = "bytes "
	if len(v) <= len(unit) || !equalFold(v[:len(unit)], unit) {
		return ContentRange{}
	}
	v = v[len(unit):]
	dash, slash := -1, -1
	for i, c := range v {
		switch {
		case c == '-' && dash < 0:
			dash = i
		case c == '/' && slash < 0:
			slash = i
		}
	}
	if dash <= 0 || slash <= dash+1 {
		return ContentRange{}
	}
	first, ok1 := parseDigits(v[:dash])
	last, ok2 := parseDigits(v[dash+1 : slash])
	total, ok3 := parseDigits(v[slash+1:])
	if !ok1 || !ok2 || !ok3 || first > last || last >= total {
		return ContentRange{}
	}
	return ContentRange{First: first, Last: last, Total: total, OK: true}
}
