package gateway

import "github.com/valyala/fasthttp"

// appendFieldValues appends the non-empty values of every copy of the
// request field lower (a lower-case name), joined by ", " as RFC 9110 §5.3
// allows for list fields, and reports whether the field is present at all.
// It allocates only when dst is too small.
func appendFieldValues(dst []byte, h *fasthttp.RequestHeader, lower []byte) ([]byte, bool) {
	start, found := len(dst), false
	for k, v := range h.All() {
		if !equalFoldBytes(k, lower) {
			continue
		}
		found = true
		if len(v) == 0 {
			continue
		}
		if len(dst) > start {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
	}
	return dst, found
}

// equalFoldBytes reports whether b equals lower (ASCII lower case) without
// regard to case.
func equalFoldBytes(b, lower []byte) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
