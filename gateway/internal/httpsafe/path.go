package httpsafe

import "bytes"

// Reasons AppendPath reports with status 400. They are fixed strings so that
// refusing a request allocates nothing, and JSON-safe (no quotes or
// backslashes) because Reject writes them into a JSON body verbatim.
const (
	reasonPathNotAbsolute  = "path must start with /"
	reasonPathBackslash    = "backslash in path"
	reasonPathNonASCII     = "non-ASCII byte in path must be percent-encoded"
	reasonPathCTL          = "control character in path"
	reasonPathInvalidChar  = "invalid character in path"
	reasonPathBadEscape    = "invalid percent-encoding in path"
	reasonPathNUL          = "encoded NUL in path"
	reasonPathEncodedSlash = "encoded slash or backslash in path"
	reasonPathMatrixParam  = "semicolon in path"
	reasonPathEscapesRoot  = "dot segments escape the root"
)

// pathByte classifies each byte of a raw path.
const (
	pbInvalid    = iota // refused
	pbPlain             // copied as is (pchar other than '%', and '/')
	pbUnreserved        // like pbPlain; also decoded from %XX
)

// pathClass classifies one byte of a raw path.
func pathClass(c byte) uint8 { return pathTable[c] }

const upperHex = "0123456789ABCDEF"

// AppendPath appends the normalised form of rawPath (the path of a request
// target, without query) to dst. On success status is 0; otherwise status is
// 400, reason says why, and the returned slice is dst unchanged in length.
//
// Normalisation, done once, in this order per segment:
//   - %XX of an unreserved character (ALPHA DIGIT - . _ ~) is decoded; any
//     other escape is kept with upper-case hex digits.
//   - "." and ".." segments are removed as in RFC 3986 section 5.2.4 (after
//     decoding, so %2e%2e counts). A ".." with nothing left to remove, which
//     RFC 3986 would clamp at the root, is refused instead, as nginx does:
//     no client has a reason to send one, and a backend that resolves it
//     differently would see another path than the router did.
//   - empty segments are merged when o.MergeSlashes; a leading run of
//     slashes always becomes one.
//
// Refused (400): dot segments escaping the root, a raw byte outside RFC 3986 pchar (space, quotes, <, >, \,
// ^, `, {, |, }, #, controls, non-ASCII), ';' unless o.AllowMatrixParams,
// a '%' not followed by two hex digits, %00, and %2F or %5C unless
// o.AllowEncodedSlash. An empty rawPath (absolute-form "http://h?q") is "/".
// Case is kept: /ADMIN and /admin are different paths.
//
// The result is a fixed point: AppendPath of its own output returns the same
// bytes. It allocates only when dst has too little capacity.
func AppendPath(dst, rawPath []byte, o *Options) ([]byte, int, string) {
	if len(rawPath) == 0 {
		return append(dst, '/'), 0, ""
	}
	if rawPath[0] != '/' {
		return dst, 400, reasonPathNotAbsolute
	}
	keepEmpty, encodedSlash, matrix := true, false, false
	if o != nil {
		keepEmpty, encodedSlash, matrix = !o.MergeSlashes, o.AllowEncodedSlash, o.AllowMatrixParams
	}
	orig := len(dst)
	out := append(dst, '/')
	root := orig // out[root] is the leading '/'
	i := 1
	for {
		segStart := len(out)
		for i < len(rawPath) && rawPath[i] != '/' {
			// Copy the run of bytes that need no work in one append.
			j := i
			for j < len(rawPath) && pathTable[rawPath[j]] != pbInvalid && (rawPath[j] != ';' || matrix) {
				j++
			}
			if j > i {
				out = append(out, rawPath[i:j]...)
				i = j
				continue
			}
			c := rawPath[i]
			if c == ';' {
				return out[:orig], 400, reasonPathMatrixParam
			}
			if c == '/' {
				break
			}
			if c != '%' {
				return out[:orig], 400, invalidPathByteReason(c)
			}
			if i+2 >= len(rawPath) {
				return out[:orig], 400, reasonPathBadEscape
			}
			hi, lo := unhex(rawPath[i+1]), unhex(rawPath[i+2])
			if hi < 0 || lo < 0 {
				return out[:orig], 400, reasonPathBadEscape
			}
			v := byte(hi<<4 | lo)
			switch {
			case v == 0:
				return out[:orig], 400, reasonPathNUL
			case pathClass(v) == pbUnreserved:
				out = append(out, v)
			case (v == '/' || v == '\\') && !encodedSlash:
				return out[:orig], 400, reasonPathEncodedSlash
			default:
				out = append(out, '%', upperHex[v>>4], upperHex[v&15])
			}
			i += 3
		}
		atEnd := i >= len(rawPath)
		seg := out[segStart:]
		switch {
		case len(seg) == 1 && seg[0] == '.':
			out = out[:segStart]
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			sep := segStart - 1
			if sep <= root {
				return out[:orig], 400, reasonPathEscapesRoot
			}
			// Drop the previous segment, keeping its leading '/'.
			out = out[:root+bytes.LastIndexByte(out[root:sep], '/')+1]
		case len(seg) == 0 && !atEnd && (!keepEmpty || segStart == root+1):
			// An empty segment in the middle: merged, or the leading run.
		case !atEnd:
			out = append(out, '/')
		}
		if atEnd {
			return out, 0, ""
		}
		i++ // the '/'
	}
}

func invalidPathByteReason(c byte) string {
	switch {
	case c == '\\':
		return reasonPathBackslash
	case c >= 0x80:
		return reasonPathNonASCII
	case c < 0x20 || c == 0x7f:
		return reasonPathCTL
	}
	return reasonPathInvalidChar
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// SplitRequestURI splits a request-target as the client sent it
// (RequestHeader.RequestURI(), not Request.RequestURI() or URI(), which
// fasthttp has already decoded and normalised) into its path and query.
// For absolute-form ("http://host/p?q") the scheme and authority are
// skipped; the path is then empty when the authority is followed directly by
// '?' or by nothing. query excludes the '?'; it is nil when there is none.
// Both alias target. Check refuses '#' in the target, so no fragment is
// expected.
func SplitRequestURI(target []byte) (path, query []byte) {
	if len(target) > 0 && target[0] != '/' {
		if i := indexSchemeSep(target); i >= 0 {
			rest := target[i+3:]
			j := 0
			for j < len(rest) && rest[j] != '/' && rest[j] != '?' {
				j++
			}
			target = rest[j:]
		}
	}
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		return target[:q], target[q+1:]
	}
	return target, nil
}

// indexSchemeSep returns the index of the first "://" in b, or -1.
func indexSchemeSep(b []byte) int {
	for i := 0; i+2 < len(b); i++ {
		if b[i] == ':' && b[i+1] == '/' && b[i+2] == '/' {
			return i
		}
	}
	return -1
}
