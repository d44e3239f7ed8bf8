package cache

import "time"

// Field is one header field line. Name compares without regard to case.
type Field struct {
	Name, Value []byte
}

// Meta is what the caching rules read from a response, parsed once from its
// header fields by ParseMeta. Byte slices alias the parsed fields.
type Meta struct {
	Status       int
	CacheControl CacheControl

	// Date is the Date field; zero when absent or invalid.
	Date time.Time
	// Expires is the Expires field; HasExpires reports its presence. An
	// invalid value (such as "0") is zero time with HasExpires set: already
	// expired (RFC 9111 §5.3).
	Expires    time.Time
	HasExpires bool
	// Age is the Age field (RFC 9111 §5.1): the first member of its first
	// line; unset when that is not a non-negative integer (the field is
	// ignored); 2^31 when it is larger.
	Age Delta
	// LastModified is the Last-Modified field; zero when absent or invalid.
	LastModified time.Time
	// ETag is the ETag field value as sent, with quotes and any W/ prefix.
	ETag []byte
	// Vary reports a non-empty Vary field; VaryStar a member "*".
	Vary, VaryStar bool
	// SetCookie reports a Set-Cookie field.
	SetCookie bool
	// Range is the byte range a 206 carries (its one Content-Range field);
	// Range.OK is false for any other status, and for a 206 without one
	// valid single range of a known length (a multipart/byteranges body,
	// "bytes 0-4/*", two Content-Range lines).
	Range ContentRange

	// RequestTime and ResponseTime are when the request that produced the
	// response was sent and when the response arrived (RFC 9111 §4.2.3).
	RequestTime, ResponseTime time.Time
}

// ParseMeta reads the fields the caching rules need from a response's
// header. Several Cache-Control lines are combined; for the single-valued
// fields the first line counts, except Expires, where the earliest of
// several wins. now resolves two-digit years (see ParseHTTPDate). It does
// not allocate.
func ParseMeta(status int, header []Field, requestTime, responseTime, now time.Time) Meta {
	m := Meta{Status: status, RequestTime: requestTime, ResponseTime: responseTime}
	var seenDate, seenAge, seenLM bool
	ranges := 0
	var surrogate CacheControl
	hasSurrogate := false
	for i := range header {
		f := &header[i]
		n := f.Name
		switch {
		case equalFold(n, "cache-control"):
			m.CacheControl.Add(f.Value)
		case equalFold(n, "surrogate-control"):
			if surrogate.AddSurrogate(f.Value) {
				hasSurrogate = true
			}
		case equalFold(n, "date"):
			if !seenDate {
				seenDate = true
				if t, ok := ParseHTTPDate(f.Value, now); ok {
					m.Date = t
				}
			}
		case equalFold(n, "expires"):
			t, ok := ParseHTTPDate(f.Value, now)
			switch {
			case !ok:
				m.Expires = time.Time{}
			case !m.HasExpires || (!m.Expires.IsZero() && t.Before(m.Expires)):
				m.Expires = t
			}
			m.HasExpires = true
		case equalFold(n, "age"):
			if !seenAge {
				seenAge = true
				m.Age = parseAge(f.Value)
			} else {
				m.Age = untrustedAge // a second line: which one is right?
			}
		case equalFold(n, "last-modified"):
			if !seenLM {
				seenLM = true
				if t, ok := ParseHTTPDate(f.Value, now); ok {
					m.LastModified = t
				}
			}
		case equalFold(n, "etag"):
			if m.ETag == nil {
				m.ETag = trimOWS(f.Value)
			}
		case equalFold(n, "vary"):
			forEachMember(f.Value, func(member []byte) {
				m.Vary = true
				if len(member) == 1 && member[0] == '*' {
					m.VaryStar = true
				}
			})
		case equalFold(n, "set-cookie"):
			m.SetCookie = true
		case status == 206 && equalFold(n, "content-range"):
			ranges++
			m.Range = ParseContentRange(f.Value)
		}
	}
	if ranges != 1 {
		m.Range = ContentRange{}
	}
	if hasSurrogate {
		// Surrogate-Control (W3C Edge Architecture) is addressed to
		// gateway caches like this one: when it carries a directive for
		// this cache (untargeted, or targeted at SurrogateDevice) it
		// replaces Cache-Control for storing and freshness here, and the
		// gateway removes it before the response goes on
		// (SurrogateField). Directives for other devices never count: a
		// "max-age=3600;cdn" must not make a private response shared here.
		m.CacheControl = surrogate
	}
	return m
}

// SurrogateField reports a field this cache consumes and never forwards:
// Surrogate-Control is for the surrogate alone.
func SurrogateField(name []byte) bool { return equalFold(name, "surrogate-control") }

// parseAge reads an Age field value (RFC 9111 §5.1). Only one
// non-negative integer is an age; anything else ("abc", "-1", "7.0",
// "7;x=1", a list such as "0, 7200", or a second Age line, see ParseMeta)
// says that some cache on the way mangled it, and the response's real age
// is unknown. §5.1 lets a cache take a list's first member and ignore an
// invalid value; both can make a response look younger than it is, so this
// cache takes the safe reading instead: such a response counts as stale
// (untrustedAge) and is revalidated before it is served, which costs one
// exchange and can never serve an answer past its lifetime. A value too
// large to represent is 2^31 (§1.2.2).
func parseAge(v []byte) Delta {
	v = trimOWS(v)
	if len(v) == 0 || !allDigits(v) {
		return untrustedAge
	}
	return Delta{Seconds: parseDelta(v, true), Set: true}
}

// untrustedAge is the age of a response whose Age field cannot be read as
// one age: the largest there is, so that the response is stale.
var untrustedAge = Delta{Seconds: maxDelta, Set: true}

func allDigits(b []byte) bool {
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return true
}

// forEachMember calls fn with each non-empty member of a comma-separated
// list (RFC 9110 §5.6.1), trimmed of whitespace; commas inside
// quoted-strings do not separate.
func forEachMember(b []byte, fn func(member []byte)) { forEachListMember(b, false, fn) }

// forEachListMember is forEachMember, with empty members passed to fn too
// when keepEmpty is set.
func forEachListMember(b []byte, keepEmpty bool, fn func(member []byte)) {
	start := 0
	for i := 0; i <= len(b); i++ {
		if i < len(b) && b[i] == '"' {
			end, _ := quotedEnd(b, i)
			i = end - 1
			continue
		}
		if i == len(b) || b[i] == ',' {
			if m := trimOWS(b[start:i]); len(m) > 0 || keepEmpty {
				fn(m)
			}
			start = i + 1
		}
	}
}
