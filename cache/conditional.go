package cache

import "time"

// NotModified evaluates a client's own conditional GET or HEAD against a
// stored response that is about to answer it, and reports whether the
// answer is 304 Not Modified (RFC 9110 §13.2.2, RFC 9111 §4.3.2).
//
// If-None-Match, when present, decides alone: it matches when one of its
// entity-tags equals etag by the weak comparison, or when it is "*". Only
// without it does If-Modified-Since count: a valid date at or after the
// response's Last-Modified (else its Date, else when it was received) is
// not modified. Invalid values never match. The other preconditions
// (If-Match, If-Unmodified-Since, If-Range) are for the origin: a cache must
// not evaluate them (§4.3.2), so the gateway forwards such requests.
func NotModified(ifNoneMatch, ifModifiedSince, etag []byte, lastModified, date, received, now time.Time) bool {
	if ifNoneMatch != nil {
		return etagListMatches(ifNoneMatch, etag)
	}
	if ifModifiedSince == nil {
		return false
	}
	since, ok := ParseHTTPDate(ifModifiedSince, now)
	if !ok {
		return false
	}
	last := lastModified
	if last.IsZero() {
		last = date
	}
	if last.IsZero() {
		last = received
	}
	return !last.After(since)
}

// etagListMatches reports whether If-None-Match list matches etag by the
// weak comparison (RFC 9110 §8.8.3.2).
func etagListMatches(list, etag []byte) bool {
	list = trimOWS(list)
	if len(list) == 1 && list[0] == '*' {
		return true
	}
	opaque, _, ok := parseETag(etag)
	if !ok {
		return false
	}
	match := false
	forEachMember(list, func(member []byte) {
		if o, _, ok := parseETag(member); ok && string(o) == string(opaque) {
			match = true
		}
	})
	return match
}

// parseETag splits an entity-tag into its opaque-tag (with the quotes) and
// whether it is weak. ok is false unless the whole of b is one entity-tag.
func parseETag(b []byte) (opaque []byte, weak, ok bool) {
	b = trimOWS(b)
	if len(b) >= 2 && b[0] == 'W' && b[1] == '/' {
		weak = true
		b = b[2:]
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false, false
	}
	for _, ch := range b[1 : len(b)-1] {
		// etagc = %x21 / %x23-7E / obs-text
		if ch == '"' || ch < 0x21 || ch == 0x7f {
			return nil, false, false
		}
	}
	return b, weak, true
}

// strongMatch is the strong comparison of two entity-tags (RFC 9110 §8.8.3.2).
func strongMatch(a, b []byte) bool {
	oa, wa, ok1 := parseETag(a)
	ob, wb, ok2 := parseETag(b)
	return ok1 && ok2 && !wa && !wb && string(oa) == string(ob)
}

// weakMatch is the weak comparison of two entity-tags.
func weakMatch(a, b []byte) bool {
	oa, _, ok1 := parseETag(a)
	ob, _, ok2 := parseETag(b)
	return ok1 && ok2 && string(oa) == string(ob)
}

// Selects304 reports whether a 304 response to a conditional request the
// cache sent for a stored response may update that response (RFC 9111
// §4.3.4). A strong ETag in the 304 must equal the stored one; a weak one
// must match it weakly; without an ETag, a Last-Modified must equal the
// stored one. A 304 with no validator at all is taken to answer the
// request that was sent, which carried this response's validators: many
// origins omit them from 304s although RFC 9110 §15.4.5 asks for them.
func Selects304(storedETag []byte, storedLastModified time.Time, m *Meta) bool {
	switch {
	case len(m.ETag) > 0:
		if _, weak, ok := parseETag(m.ETag); ok && !weak {
			return strongMatch(m.ETag, storedETag)
		}
		return weakMatch(m.ETag, storedETag)
	case !m.LastModified.IsZero():
		return m.LastModified.Equal(storedLastModified)
	}
	return true
}

// UpdateHeader appends to dst the stored header fields updated by those of
// a 304 response (RFC 9111 §3.2, §4.3.4): every field the 304 carries
// replaces all stored lines of that name, except the fields a cache keeps
// from the stored response: those describing the stored content itself,
// whose bytes a 304 does not replace (Content-Length, Content-Encoding,
// Content-Range, Content-MD5, Content-Digest: updating them would break the
// integrity of the stored response, §3.2), hop-by-hop and framing fields,
// Age (recomputed) and Set-Cookie (never stored). The result aliases stored
// and update.
func UpdateHeader(dst, stored, update []Field) []Field {
	for _, f := range stored {
		replaced := false
		if updatable(f.Name) {
			for _, u := range update {
				if equalFoldBytes(f.Name, u.Name) {
					replaced = true
					break
				}
			}
		}
		if !replaced {
			dst = append(dst, f)
		}
	}
	for _, u := range update {
		if updatable(u.Name) && !excludedFromStorage(u.Name) {
			dst = append(dst, u)
		}
	}
	return dst
}

func updatable(name []byte) bool {
	return !describesContent(name) && !hopByHop(name)
}

// describesContent reports the fields that describe the stored content's
// bytes (its length, coding, range and digest) rather than the
// representation's metadata: a 304 carries no content, so it cannot change
// them (RFC 9111 §3.2).
func describesContent(name []byte) bool {
	switch {
	case equalFold(name, "content-length"), equalFold(name, "content-encoding"),
		equalFold(name, "content-range"), equalFold(name, "content-md5"),
		equalFold(name, "content-digest"):
		return true
	}
	return false
}

// hopByHop reports the connection-specific fields (RFC 9110 §7.6.1) and
// framing fields a stored response must not keep.
func hopByHop(name []byte) bool {
	switch {
	case equalFold(name, "connection"), equalFold(name, "keep-alive"),
		equalFold(name, "proxy-connection"), equalFold(name, "te"),
		equalFold(name, "trailer"), equalFold(name, "transfer-encoding"),
		equalFold(name, "upgrade"):
		return true
	}
	return false
}

// excludedFromStorage reports the fields an Entry never keeps: hop-by-hop
// and framing fields, Content-Length (len(Body) is authoritative), Age
// (recomputed on every hit), Set-Cookie (policy) and Surrogate-Key (read
// into the entry's tags, not sent to clients).
func excludedFromStorage(name []byte) bool {
	return hopByHop(name) || equalFold(name, "content-length") || equalFold(name, "age") ||
		equalFold(name, "set-cookie") || equalFold(name, "surrogate-key")
}

// NotModifiedField reports whether a stored header field belongs in a 304
// answer to a client's conditional request (RFC 9110 §15.4.5): the fields a
// 200 would carry that describe the representation's caching and identity.
func NotModifiedField(name []byte) bool {
	switch {
	case equalFold(name, "cache-control"), equalFold(name, "content-location"),
		equalFold(name, "date"), equalFold(name, "etag"), equalFold(name, "expires"),
		equalFold(name, "vary"), equalFold(name, "last-modified"):
		return true
	}
	return false
}
