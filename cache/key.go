package cache

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// KeyPartKind says where a key part's value comes from.
type KeyPartKind uint8

// Kinds of key parts.
const (
	KeyHeader KeyPartKind = iota + 1 // a request header field (all lines, normalised like Vary)
	KeyCookie                        // a cookie of the request
	KeyQuery                         // a query argument of the request
)

// KeyPart names one request value a route adds to its keys, written in the
// configuration as "header:Accept-Language", "cookie:currency" or
// "query:lang".
type KeyPart struct {
	Kind KeyPartKind
	Name []byte // header names are lower-cased
}

// ParseKeyPart parses "header:Name", "cookie:name" or "query:name".
func ParseKeyPart(s string) (KeyPart, error) {
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return KeyPart{}, fmt.Errorf("key part %q: want header:<name>, cookie:<name> or query:<name>", s)
	}
	switch kind {
	case "header":
		for i := 0; i < len(name); i++ {
			if !isTokenChar(name[i]) {
				return KeyPart{}, fmt.Errorf("key part %q: invalid header name", s)
			}
		}
		return KeyPart{Kind: KeyHeader, Name: []byte(strings.ToLower(name))}, nil
	case "cookie":
		return KeyPart{Kind: KeyCookie, Name: []byte(name)}, nil
	case "query":
		return KeyPart{Kind: KeyQuery, Name: []byte(name)}, nil
	}
	return KeyPart{}, fmt.Errorf("key part %q: unknown kind %q (want header, cookie or query)", s, kind)
}

// String is the configuration form of p.
func (p KeyPart) String() string {
	switch p.Kind {
	case KeyHeader:
		return "header:" + string(p.Name)
	case KeyCookie:
		return "cookie:" + string(p.Name)
	case KeyQuery:
		return "query:" + string(p.Name)
	}
	return "?:" + string(p.Name)
}

// Fields gives the cache a request's header fields, cookies and query
// arguments by name, for key parts and Vary. The gateway implements it over
// its request (on its per-request state, so that passing it does not
// allocate). Each method appends the value to dst and reports whether the
// request had it at all: an absent field and an empty one make different
// keys. The cache keeps nothing it is given.
type Fields interface {
	// AppendHeader appends the values of every line of the named header
	// field (name is lower case; match without regard to case), joined by
	// ", ".
	AppendHeader(dst, name []byte) ([]byte, bool)
	// AppendCookie appends the value of the named cookie.
	AppendCookie(dst, name []byte) ([]byte, bool)
	// AppendQueryArg appends the value of the first query argument of that
	// name, as it appears in the query string.
	AppendQueryArg(dst, name []byte) ([]byte, bool)
}

// Policy is a route's cache settings, compiled once with the routing table
// (see NewPolicy). It is read-only and shared by the route's requests.
type Policy struct {
	// Heuristic gives freshness to responses without explicit expiry.
	Heuristic Heuristic
	// StaleIfError is the route's own stale-if-error window (see
	// RouteOptions.StaleIfError); 0: none.
	StaleIfError time.Duration
	// MaxEntry is the largest body stored, in bytes. The gateway can mark
	// a response with a larger Content-Length as Streamed without buffering
	// it.
	MaxEntry int64
	// Key lists request values added to every key of the route.
	Key []KeyPart
}

// Request is what the cache needs to know about a client request. The
// gateway fills one per request (pooled with its state); slices alias the
// gateway's buffers and are never kept by the cache past the call they are
// passed to.
type Request struct {
	Method []byte // GET and HEAD share keys; only GET responses are stored
	Scheme []byte // "http" or "https"
	Host   []byte // the routed host, as the key and purge URLs see it
	// Authority is the Host the backend is sent when it differs from Host
	// (a port, a trailing dot): part of the key, so an answer built for one
	// authority never reaches another, but not of the URL purges go by, so
	// a purge reaches every authority. Nil when it is Host.
	Authority []byte
	Path      []byte // normalised path
	Query     []byte // query string without "?", as received

	// Fields reads key part and Vary values; nil reads every one as absent.
	Fields Fields
	// Policy is the route's cache policy. Tiered.Get sets a nil one to the
	// cache's defaults (no default_ttl, no key parts, Options.MaxEntry).
	Policy *Policy

	// CacheControl holds the request's Cache-Control (all lines, see
	// CacheControl.Add). Per RFC 9111 §5.4 the gateway may set NoCache for
	// "Pragma: no-cache" when the request has no Cache-Control.
	CacheControl CacheControl
	// Authorization reports an Authorization field (RFC 9111 §3.5).
	Authorization bool
	// IfNoneMatch and IfModifiedSince are the client's own conditional
	// fields (nil when absent), answered with 304 from a fresh entry. The
	// gateway must not forward them on a fill: it sends the stored entry's
	// validators instead (Entry.Validators).
	IfNoneMatch, IfModifiedSince []byte
	// Range is a GET's Range field (nil: none, or not a GET). A partial
	// entry (a stored 206) answers only a range within it; a complete one
	// answers any request, and the gateway cuts the range from it.
	Range []byte
}

// keyVersion changes whenever the key layout does, so old entries miss.
const keyVersion = 2

// AppendKey appends r's primary cache key to dst and returns it: the method
// class (GET and HEAD are one class), scheme and host (lower case), path,
// query and the route's key parts with their values. Every element is
// length-prefixed and the parts are counted, so two requests that differ in
// any of them never share a key, whatever bytes they hold. Header values are
// normalised as Vary values are (see Tiered). It allocates only if dst is
// too small.
func AppendKey(dst []byte, r *Request) []byte {
	dst = append(dst, 'K', keyVersion)
	if string(r.Method) == "HEAD" {
		dst = appendField(dst, []byte("GET"))
	} else {
		dst = appendField(dst, r.Method)
	}
	dst = appendLowerField(dst, r.Scheme)
	dst = appendLowerField(dst, r.Host)
	dst = appendField(dst, r.Authority)
	dst = appendField(dst, r.Path)
	dst = appendField(dst, r.Query)
	var parts []KeyPart
	if r.Policy != nil {
		parts = r.Policy.Key
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(parts)))
	for _, p := range parts {
		dst = append(dst, byte(p.Kind))
		dst = appendField(dst, p.Name)
		dst = appendValue(dst, r.Fields, p.Kind, p.Name)
	}
	return dst
}

// appendVaryKey appends to dst the secondary key of a response that varies
// on names (lower case, comma-separated, as Entry keeps them): the primary
// key, then each name with the request's normalised value.
func appendVaryKey(dst, primary, names []byte, f Fields) []byte {
	dst = append(dst, primary...)
	dst = append(dst, 'V')
	n := 0
	forEachName(names, func([]byte) { n++ })
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	forEachName(names, func(name []byte) {
		dst = appendField(dst, name)
		dst = appendValue(dst, f, KeyHeader, name)
	})
	return dst
}

// forEachName calls fn for each name of a comma-separated list without
// spaces, as normaliseVary builds.
func forEachName(names []byte, fn func([]byte)) {
	start := 0
	for i := 0; i <= len(names); i++ {
		if i == len(names) || names[i] == ',' {
			if i > start {
				fn(names[start:i])
			}
			start = i + 1
		}
	}
}

func appendField(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendLowerField(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	for _, ch := range b {
		dst = append(dst, lower(ch))
	}
	return dst
}

// appendValue appends a presence byte and, when present, the length-prefixed
// value of a key part or Vary field.
func appendValue(dst []byte, f Fields, kind KeyPartKind, name []byte) []byte {
	if f == nil {
		return append(dst, 0)
	}
	at := len(dst)
	dst = append(dst, 1, 0, 0, 0, 0)
	start := len(dst)
	var ok bool
	switch kind {
	case KeyHeader:
		dst, ok = f.AppendHeader(dst, name)
		if ok {
			dst = dst[:start+normaliseList(dst[start:])]
			if string(name) == "accept-language" { // Vary names are lower case
				dst = normaliseLanguages(dst, start)
			}
		}
	case KeyCookie:
		dst, ok = f.AppendCookie(dst, name)
	case KeyQuery:
		dst, ok = f.AppendQueryArg(dst, name)
	}
	if !ok {
		dst[at] = 0
		return dst[:at+1]
	}
	binary.BigEndian.PutUint32(dst[at+1:], uint32(len(dst)-start))
	return dst
}

// normaliseList rewrites a combined field value in place so that
// semantically equal lists compare equal: members are trimmed of whitespace
// and joined by ","; quoted-strings are kept as they are. Empty members are
// kept: a key or Vary value may be a field that is not a list, read by its
// first copy or as a whole, where "X:" with "X: a", or "a,", is not "a".
// It returns the new length.
func normaliseList(b []byte) int {
	w, first := 0, true
	forEachListMember(b, true, func(m []byte) {
		if !first {
			b[w] = ','
			w++
		}
		first = false
		w += copy(b[w:], m)
	})
	return w
}

// normaliseVary returns the field names of Vary lines, lower-cased, sorted,
// without duplicates and joined by ",": the form entries keep and secondary
// keys are built from. It allocates.
func normaliseVary(header []Field) []byte {
	var names []string
	for _, f := range header {
		if !equalFold(f.Name, "vary") {
			continue
		}
		forEachMember(f.Value, func(m []byte) {
			names = append(names, strings.ToLower(string(m)))
		})
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	var out []byte
	for i, n := range names {
		if i > 0 && n == names[i-1] {
			continue
		}
		if len(out) > 0 {
			out = append(out, ',')
		}
		out = append(out, n...)
	}
	return out
}

// AppendURL appends the URL a purge names an entry by: the lower-case host,
// the path and, when the query is not empty, "?" and the query. The scheme
// is left out, so a purge reaches the http and https entries alike.
func AppendURL(dst, host, path, query []byte) []byte {
	for _, ch := range host {
		dst = append(dst, lower(ch))
	}
	dst = append(dst, path...)
	if len(query) > 0 {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return dst
}

// Hash is the 64-bit hash of a key that names it in L1 and in Redis
// (xxhash). Keys are always compared in full after a hash lookup.
func Hash(key []byte) uint64 { return xxhash.Sum64(key) }
