package cache

import "bytes"

// maxLanguages is the most Accept-Language members normaliseLanguages
// sorts; a longer list keeps its order (it is lower-cased all the same).
const maxLanguages = 16

// normaliseLanguages rewrites dst[start:], an Accept-Language value that
// normaliseList has trimmed, into one form per preference, so that a
// response stored under Vary: Accept-Language answers every request that
// asks for the same thing (RFC 9111 §4.1 lets a cache normalise): language
// ranges and weights are case-insensitive (RFC 4647 §2, RFC 9110 §12.4.2),
// whitespace around ";" is not significant, and members are ordered by
// weight. Members of equal weight keep their order: many servers (Go's
// x/text, Django, Java's LanguageRange) take the first of them, so "en, de"
// and "de, en" may well get different answers. A value it cannot read as
// language ranges keeps its order. It returns dst, which may have grown:
// the sorted form is built past its end and copied back, so a reused buffer
// does not allocate.
func normaliseLanguages(dst []byte, start int) []byte {
	if bytes.IndexByte(dst[start:], '"') >= 0 {
		return dst // not a language list: leave it as it is
	}
	w := start
	for _, ch := range dst[start:] {
		if ch == ' ' || ch == '\t' {
			continue
		}
		dst[w] = lower(ch)
		w++
	}
	dst = dst[:w]
	type member struct{ from, to, q int }
	var ms [maxLanguages]member
	n := 0
	for i := start; i < len(dst); {
		end := bytes.IndexByte(dst[i:], ',')
		if end < 0 {
			end = len(dst)
		} else {
			end += i
		}
		if n == len(ms) {
			return dst
		}
		q, ok := weight(dst[i:end])
		if !ok {
			return dst
		}
		ms[n] = member{i, end, q}
		n++
		i = end + 1
	}
	// Insertion sort, stable: a handful of members, and no allocation.
	for i := 1; i < n; i++ {
		for j := i; j > 0; j-- {
			a, b := ms[j-1], ms[j]
			if a.q >= b.q { // stable: equal weights keep their order
				break
			}
			ms[j-1], ms[j] = b, a
		}
	}
	end := len(dst)
	for i, m := range ms[:n] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, dst[m.from:m.to]...)
	}
	copy(dst[start:], dst[end:])
	return dst[:start+len(dst)-end]
}

// weight is the qvalue of a lower-cased language member ("de;q=0.5"), in
// thousandths: 1000 without one (RFC 9110 §12.4.2).
func weight(m []byte) (int, bool) {
	i := bytes.Index(m, []byte(";q="))
	if i < 0 {
		return 1000, bytes.IndexByte(m, ';') < 0
	}
	v := m[i+3:]
	if len(v) == 0 || len(v) > 5 || v[0] != '0' && v[0] != '1' {
		return 0, false
	}
	q := int(v[0]-'0') * 1000
	if len(v) > 1 {
		if v[1] != '.' {
			return 0, false
		}
		scale := 100
		for _, c := range v[2:] {
			if c < '0' || c > '9' {
				return 0, false
			}
			q += int(c-'0') * scale
			scale /= 10
		}
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}
