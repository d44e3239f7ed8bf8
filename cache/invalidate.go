package cache

import "bytes"

// Safe reports whether a method is safe (RFC 9110 §9.2.1): GET, HEAD,
// OPTIONS or TRACE. Every other method, known or not, invalidates on success.
func Safe(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// Invalidated returns the request targets (path with optional "?query") a
// response to an unsafe request invalidates (RFC 9111 §4.4): nothing unless
// the method is unsafe and the status is 2xx or 3xx; then the request's own
// target, and the Location and Content-Location references that point to
// the same host. Absent members are nil. host is the request's Host (with a
// port, if it had one); target its path and query. References are resolved
// against target (RFC 3986 §5.2); fragments are dropped. Only a relative
// path reference ("b/c") allocates. The gateway normalises each result as
// it does a request path before calling Tiered.Invalidate.
func Invalidated(method []byte, status int, host, target, location, contentLocation []byte) (targets [3][]byte) {
	if Safe(method) || status < 200 || status > 399 {
		return targets
	}
	targets[0] = target
	targets[1] = sameHostTarget(host, target, location)
	targets[2] = sameHostTarget(host, target, contentLocation)
	return targets
}

// sameHostTarget resolves ref against the request and returns its path and
// query when it names the same host, else nil.
func sameHostTarget(host, target, ref []byte) []byte {
	ref = trimOWS(ref)
	if i := bytes.IndexByte(ref, '#'); i >= 0 {
		ref = ref[:i]
	}
	if len(ref) == 0 {
		return nil
	}
	switch {
	case hasScheme(ref):
		i := bytes.IndexByte(ref, ':')
		scheme := ref[:i]
		if !equalFold(scheme, "http") && !equalFold(scheme, "https") {
			return nil
		}
		rest := ref[i+1:]
		if !bytes.HasPrefix(rest, []byte("//")) {
			return nil
		}
		return authorityTarget(host, rest[2:])
	case bytes.HasPrefix(ref, []byte("//")):
		return authorityTarget(host, ref[2:])
	case ref[0] == '/':
		return ref
	}
	path, _, _ := bytes.Cut(target, []byte("?"))
	if ref[0] == '?' {
		return append(append([]byte(nil), path...), ref...)
	}
	// A relative path: merge with the directory of the target's path.
	dir := path[:bytes.LastIndexByte(path, '/')+1]
	if len(dir) == 0 {
		dir = []byte("/")
	}
	return append(append([]byte(nil), dir...), ref...)
}

// authorityTarget splits "host[:port]/path?q" and returns "/path?q" when the
// authority's host equals host (compared without case, userinfo refused).
// The port does not count: RFC 9111 §4.4 compares the host parts, and host,
// the routing host, has none.
func authorityTarget(host, rest []byte) []byte {
	end := len(rest)
	for i, ch := range rest {
		if ch == '/' || ch == '?' {
			end = i
			break
		}
	}
	authority := rest[:end]
	if bytes.IndexByte(authority, '@') >= 0 || !equalFoldBytes(routingHost(authority), host) {
		return nil
	}
	t := rest[end:]
	if len(t) == 0 || t[0] == '?' {
		return append([]byte("/"), t...)
	}
	return t
}

// hasScheme reports whether ref starts with "scheme:" (RFC 3986 §3.1).
func hasScheme(ref []byte) bool {
	for i, ch := range ref {
		switch {
		case ch == ':':
			return i > 0
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z':
		case i > 0 && (ch >= '0' && ch <= '9' || ch == '+' || ch == '-' || ch == '.'):
		default:
			return false
		}
	}
	return false
}
