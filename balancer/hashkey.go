package balancer

import (
	"fmt"
	"strconv"
	"strings"
)

// KeyKind is where a hash key comes from in a request.
type KeyKind uint8

// Kinds of KeySource.
const (
	KeyClient KeyKind = iota + 1 // the client's identity, as rate limiting sees it
	KeyHeader                    // a request header field, named without regard to case
	KeyCookie                    // a cookie of the request
	KeyQuery                     // a query argument of the request
	KeyPath                      // one segment of the request path
)

// KeySource says which request value a consistent_hash pool (hash_key) or a
// route's shard map hashes. The gateway extracts the bytes; an absent value
// is an empty key, which consistent_hash places by load instead.
type KeySource struct {
	Kind KeyKind
	// Name is the header, cookie or query argument name; empty otherwise.
	Name string
	// Segment is the 1-based path segment of KeyPath ("/v1/tenants/42" has
	// segment 3 "42"); 0 otherwise.
	Segment int
}

// ParseKeySource parses the configuration form of a key source: "client",
// "header:NAME", "cookie:NAME", "query:NAME" or "path:N" with N ≥ 1.
func ParseKeySource(s string) (KeySource, error) {
	if s == "client" {
		return KeySource{Kind: KeyClient}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return KeySource{}, fmt.Errorf("key %q: want client, header:<name>, cookie:<name>, query:<name> or path:<n>", s)
	}
	switch kind {
	case "header", "cookie":
		// Header and cookie names are both HTTP tokens (RFC 9110 §5.1,
		// RFC 6265 §4.1.1).
		if i := strings.IndexFunc(name, func(r rune) bool { return !isToken(r) }); i >= 0 {
			return KeySource{}, fmt.Errorf("key %q: invalid %s name (character %q)", s, kind, name[i])
		}
		if kind == "header" {
			return KeySource{Kind: KeyHeader, Name: name}, nil
		}
		return KeySource{Kind: KeyCookie, Name: name}, nil
	case "query":
		return KeySource{Kind: KeyQuery, Name: name}, nil
	case "path":
		n, err := strconv.Atoi(name)
		if err != nil || n < 1 {
			return KeySource{}, fmt.Errorf("key %q: the path segment must be a number from 1 up", s)
		}
		return KeySource{Kind: KeyPath, Segment: n}, nil
	}
	return KeySource{}, fmt.Errorf("key %q: unknown kind %q (want client, header, cookie, query or path)", s, kind)
}

// String is the configuration form of k.
func (k KeySource) String() string {
	switch k.Kind {
	case KeyClient:
		return "client"
	case KeyHeader:
		return "header:" + k.Name
	case KeyCookie:
		return "cookie:" + k.Name
	case KeyQuery:
		return "query:" + k.Name
	case KeyPath:
		return "path:" + strconv.Itoa(k.Segment)
	}
	return "?"
}

// isToken reports whether r may appear in an HTTP token (RFC 9110 §5.6.2).
func isToken(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return r < 0x80 && strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}
