package ratelimit

import (
	"fmt"
	"strings"
)

// KeySource says where one part of a client key comes from.
type KeySource uint8

const (
	// KeyIP is the client address (the peer, or the client a trusted
	// proxy speaks for), IPv6 cut to a prefix.
	KeyIP KeySource = iota + 1
	// KeyHeader is the value of a request header field.
	KeyHeader
	// KeyQuery is the value of a query parameter.
	KeyQuery
	// KeyCookie is the value of a cookie.
	KeyCookie
)

// KeyPart is one part of a limit's client key.
type KeyPart struct {
	Source KeySource
	// Name is the header, query parameter or cookie; empty for KeyIP.
	// Header names are kept as written (the gateway compares them without
	// regard to case); query and cookie names are case-sensitive.
	Name string
}

// ParseKey reads a key specification: "ip", "header:NAME", "query:NAME",
// "cookie:NAME", or several of them joined with "+", which count each
// combination of values apart ("ip+header:X-API-Key"). It is the one place
// the syntax is checked, for the config file and for the gateway alike.
func ParseKey(spec string) ([]KeyPart, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("empty key: want ip, header:NAME, query:NAME, cookie:NAME or several joined with +")
	}
	var parts []KeyPart
	seen := map[KeyPart]bool{}
	for _, s := range strings.Split(spec, "+") {
		s = strings.TrimSpace(s)
		var p KeyPart
		kind, name, hasName := strings.Cut(s, ":")
		switch {
		case s == "ip":
			p = KeyPart{Source: KeyIP}
		case !hasName:
			return nil, fmt.Errorf("key %q: unknown part %q: want ip, header:NAME, query:NAME or cookie:NAME", spec, s)
		case name == "":
			return nil, fmt.Errorf("key %q: %q needs a name after the colon", spec, s)
		case kind == "header":
			if !isToken(name) {
				return nil, fmt.Errorf("key %q: %q is not a valid header field name", spec, name)
			}
			p = KeyPart{Source: KeyHeader, Name: name}
		case kind == "query":
			p = KeyPart{Source: KeyQuery, Name: name}
		case kind == "cookie":
			if !isToken(name) {
				return nil, fmt.Errorf("key %q: %q is not a valid cookie name", spec, name)
			}
			p = KeyPart{Source: KeyCookie, Name: name}
		default:
			return nil, fmt.Errorf("key %q: unknown source %q: want header, query or cookie", spec, kind)
		}
		if seen[p] {
			return nil, fmt.Errorf("key %q: %q is given twice", spec, s)
		}
		seen[p] = true
		parts = append(parts, p)
	}
	return parts, nil
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}
