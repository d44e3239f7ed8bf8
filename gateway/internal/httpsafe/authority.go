package httpsafe

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

const (
	reasonHostMissing    = "missing Host header"
	reasonHostUserinfo   = "userinfo in authority"
	reasonHostInvalid    = "invalid host"
	reasonHostBadPort    = "invalid port"
	reasonHostBadIPv6    = "invalid IPv6 literal"
	reasonURIBadScheme   = "absolute URI scheme must be http or https"
	reasonURIEmptyAuthor = "absolute URI without authority"
)

// authority is a parsed host[:port], indexes into the bytes it came from.
type authority struct {
	host []byte // without port or trailing dot; IPv6 keeps its brackets
	port int    // 0 when absent
}

// parseAuthority validates b as RFC 3986 host [ ":" port ] with no userinfo.
// Accepted hosts: reg-name limited to DNS characters (ALPHA DIGIT - . _ ~),
// which also covers IPv4 dotted quads, and bracketed IPv6 literals without
// zone. Percent-encoded or sub-delim reg-names are refused: no DNS name
// needs them, and each would be one more spelling of a routed host.
func parseAuthority(b []byte) (authority, string) {
	var a authority
	if len(b) == 0 {
		return a, reasonHostMissing
	}
	if bytes.IndexByte(b, '@') >= 0 {
		return a, reasonHostUserinfo
	}
	var rest []byte
	if b[0] == '[' {
		end := -1
		for i, c := range b {
			if c == ']' {
				end = i
				break
			}
		}
		if end < 0 || !validIPv6(b[1:end]) {
			return a, reasonHostBadIPv6
		}
		a.host, rest = b[:end+1], b[end+1:]
	} else {
		i := 0
		for i < len(b) && b[i] != ':' {
			// DNS characters: ALPHA DIGIT - . _ ~, the unreserved class.
			if pathClass(b[i]) != pbUnreserved {
				return a, reasonHostInvalid
			}
			i++
		}
		a.host, rest = b[:i], b[i:]
		if n := len(a.host); n > 0 && a.host[n-1] == '.' {
			a.host = a.host[:n-1] // "example.com." is example.com
		}
		if len(a.host) == 0 || a.host[0] == '.' || a.host[len(a.host)-1] == '.' {
			return a, reasonHostInvalid
		}
	}
	if len(rest) == 0 {
		return a, ""
	}
	if rest[0] != ':' || len(rest) < 2 || len(rest) > 6 {
		return a, reasonHostBadPort
	}
	port := 0
	for _, c := range rest[1:] {
		if c < '0' || c > '9' {
			return a, reasonHostBadPort
		}
		port = port*10 + int(c-'0')
	}
	if port == 0 || port > 65535 {
		return a, reasonHostBadPort
	}
	a.port = port
	return a, ""
}

// validIPv6 reports whether b (between the brackets) is an RFC 4291 text
// address: up to eight 1-4 digit hex groups, at most one "::", optionally
// ending in a dotted IPv4 address. Zone identifiers are not accepted.
func validIPv6(b []byte) bool {
	if len(b) < 2 || len(b) > 45 {
		return false
	}
	groups, doubleColon := 0, false
	i := 0
	if b[0] == ':' {
		if b[1] != ':' {
			return false
		}
		doubleColon, i = true, 2
		if i == len(b) {
			return true // "::"
		}
	}
	for i < len(b) {
		// One group, or a trailing IPv4 address.
		j := i
		for j < len(b) && j-i < 5 && isHex(b[j]) {
			j++
		}
		if j < len(b) && b[j] == '.' {
			if !validIPv4(b[i:]) {
				return false
			}
			groups += 2
			i = len(b)
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		i = j
		if i == len(b) {
			break
		}
		if b[i] != ':' {
			return false
		}
		i++
		if i < len(b) && b[i] == ':' {
			if doubleColon {
				return false
			}
			doubleColon = true
			i++
			if i == len(b) {
				break
			}
		} else if i == len(b) {
			return false // trailing single ':'
		}
	}
	if doubleColon {
		return groups <= 7
	}
	return groups == 8
}

func validIPv4(b []byte) bool {
	parts, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || n > 255 {
				return false
			}
			parts++
			n, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || digits == 3 {
			return false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return parts == 4
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// absoluteAuthority returns the authority of an absolute-form target
// ("http://host:port/p"), ok=false when target is not absolute-form, and a
// reason when it is but the scheme or authority is unusable.
func absoluteAuthority(target []byte) (auth []byte, ok bool, reason string) {
	if len(target) == 0 || target[0] == '/' {
		return nil, false, ""
	}
	i := indexSchemeSep(target)
	if i < 0 {
		return nil, false, ""
	}
	if !schemeIs(target[:i], "http") && !schemeIs(target[:i], "https") {
		return nil, true, reasonURIBadScheme
	}
	rest := target[i+3:]
	j := 0
	for j < len(rest) && rest[j] != '/' && rest[j] != '?' && rest[j] != '#' {
		j++
	}
	if j == 0 {
		return nil, true, reasonURIEmptyAuthor
	}
	return rest[:j], true, ""
}

func schemeIs(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// AppendAuthority appends the host that decides routing to dst, lower-cased,
// without port and without a trailing dot ("A.Example.:8080" gives
// "a.example"; IPv6 literals keep their brackets, "[::1]"). It comes from
// the absolute-form URI authority when the request-target has one (RFC 9112
// section 3.2.2: the Host header is then ignored), else from the single Host
// header. The port, when given, is validated (1-65535) and left out: routing
// is by host name. On a missing or invalid authority, or userinfo in it,
// status is 400 and host is dst unchanged.
//
// It reads RequestHeader.Host() and RequestURI() as received, never
// req.URI(), which would trigger fasthttp's own parse. It allocates only when
// dst has too little capacity.
func AppendAuthority(dst []byte, req *fasthttp.Request) (host []byte, status int) {
	raw := req.Header.Host()
	if auth, ok, reason := absoluteAuthority(req.Header.RequestURI()); ok {
		if reason != "" {
			return dst, 400
		}
		raw = auth
	}
	a, reason := parseAuthority(raw)
	if reason != "" {
		return dst, 400
	}
	return appendLower(dst, a.host), 0
}

// appendLower appends b to dst in ASCII lower case.
func appendLower(dst, b []byte) []byte {
	n := len(dst)
	dst = append(dst, b...)
	for i := n; i < len(dst); i++ {
		if c := dst[i]; 'A' <= c && c <= 'Z' {
			dst[i] = c + ('a' - 'A')
		}
	}
	return dst
}
