package gateway

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// appendFieldValues appends the non-empty values of every copy of the
// request field lower (a lower-case name), joined by ", " as RFC 9110 §5.3
// allows for list fields, and reports whether the field is present at all.
// It allocates only when dst is too small.
func appendFieldValues(dst []byte, h *fasthttp.RequestHeader, lower []byte) ([]byte, bool) {
	return appendFieldLines(dst, h, lower, false)
}

// appendFieldLines is appendFieldValues, with each empty copy kept as an
// empty member when keepEmpty is set: "X:" and "X: a" then read ", a", not
// "a", as a backend that takes the first copy tells them apart.
func appendFieldLines(dst []byte, h *fasthttp.RequestHeader, lower []byte, keepEmpty bool) ([]byte, bool) {
	start, found := len(dst), false
	for k, v := range h.All() {
		if !equalFoldBytes(k, lower) {
			continue
		}
		if len(v) == 0 && !keepEmpty {
			found = true
			continue
		}
		if found && (keepEmpty || len(dst) > start) {
			dst = append(dst, ", "...)
		}
		found = true
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

// requestFields is what one pass over a request's header found of the
// fields rewriteRequest acts on. With it the rewrite deletes only fields
// that are there: fasthttp's Del copies and normalises the name and scans
// every field each time, and the rewrite used to call it seven times per
// request for fields a client rarely sends (with the Set calls, 4,500
// instructions of a proxied GET's 33,000).
//
// Names are compared exactly with their canonical spelling, which is what
// fasthttp's Del and Peek do: the server normalises names, and Check has
// refused a name it could not normalise (one with a space) before this runs.
type requestFields struct {
	has fieldSet
}

// fieldSet is a set of the fields requestFields looks for.
type fieldSet uint16

const (
	// fieldHopByHop: a hop-by-hop field (Connection, Trailer, ...; an
	// HTTP/1.0 client's implied Connection: close too). Stripping it may
	// remove fields its Connection value names, and a Trailer announcement
	// keeps announced fields where All does not show them, so such a request
	// takes the general path: every field counts as present, Peek decides.
	fieldHopByHop   fieldSet = 1 << iota
	fieldUnderscore          // a name with "_" (DropUnderscoreFields)
	fieldExpect
	fieldXFFor
	fieldXFProto
	fieldVia
	fieldForwarded
	fieldRequestID
	fieldProxyOwned // one of proxyOwned: set by proxies, never by clients

	everyField = 1<<iota - 1
)

const hdrExpect = "Expect"

// scanRequestFields makes the one pass over h.
func scanRequestFields(h *fasthttp.RequestHeader) requestFields {
	var f requestFields
	for k := range h.All() {
		has := scanRequestFields1(k)
		if has == fieldHopByHop {
			return requestFields{has: everyField}
		}
		f.has |= has
	}
	return f
}

// scanRequestFields1 is what the field named k (canonical spelling) adds to
// a scan.
func scanRequestFields1(k []byte) fieldSet {
	switch string(k) {
	case hdrXFF:
		return fieldXFFor
	case hdrXFProto:
		return fieldXFProto
	case hdrVia:
		return fieldVia
	case hdrForwarded:
		return fieldForwarded
	case hdrRequestID:
		return fieldRequestID
	case hdrExpect:
		return fieldExpect
	case "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Scheme", "X-Forwarded-Server",
		"X-Forwarded-Ssl", "X-Forwarded-Uri", "X-Real-Ip", "X-Original-Url", "X-Rewrite-Url",
		"Front-End-Https", "X-Url-Scheme": // proxyOwned; a test keeps the two in step
		return fieldProxyOwned
	}
	if httpsafe.IsHopByHop(k) {
		return fieldHopByHop
	}
	if bytes.IndexByte(k, '_') >= 0 {
		return fieldUnderscore
	}
	return 0
}

// cacheDecisionFields are the response fields the cache decides by, lower
// case: a response whose Connection names one is not stored (its decision
// would be made without it). Other named fields are removed and the
// response stored without them (RFC 9111 §3.1).
var cacheDecisionFields = []string{
	"cache-control", "surrogate-control", "vary", "expires", "pragma", "set-cookie",
	"age", "date", "etag", "last-modified", "surrogate-key",
}

// proxyOwned are the fields, beyond the X-Forwarded-* the gateway sets and
// Forwarded, by which proxies tell a backend about the client's request:
// its port, scheme, path prefix, original URL, address. Frameworks believe
// them (Spring, Symfony, Rails, IIS's URL Rewrite), and from a client they
// are a forgery: a path that bypasses the backend's access rules, or links
// and redirects to another site, stored in the cache under a key that does
// not hold them. Like X-Forwarded-For, they are kept only from a trusted
// proxy (canonical spellings, as scanRequestFields compares them).
var proxyOwned = [...]string{
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Scheme", "X-Forwarded-Server",
	"X-Forwarded-Ssl", "X-Forwarded-Uri", "X-Real-Ip", "X-Original-Url", "X-Rewrite-Url",
	"Front-End-Https", "X-Url-Scheme",
}

// delProxyOwned deletes every field of proxyOwned when the scan saw one.
// On the general path, where every field counts as seen (a browser's
// "Connection: keep-alive" is enough), it first looks whether one is there:
// eleven Dels cost more than the pass.
func (f *requestFields) delProxyOwned(h *fasthttp.RequestHeader) {
	if f.has&fieldProxyOwned == 0 || f.general() && !hasProxyOwned(h) {
		return
	}
	for _, name := range proxyOwned {
		h.Del(name)
	}
}

// hasProxyOwned reports whether h holds a field of proxyOwned.
func hasProxyOwned(h *fasthttp.RequestHeader) bool {
	for k := range h.All() {
		if scanRequestFields1(k)&fieldProxyOwned != 0 {
			return true
		}
	}
	return false
}

// gatewaySets are the request fields the gateway sets or removes for the
// backend, lower case: the forwarding fields, whose client values it keeps
// only from a trusted proxy (trusted), and X-Request-Id, always its own.
var gatewaySets = func() map[string]bool {
	m := map[string]bool{
		"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true,
		"forwarded": true, "via": true, "x-request-id": false,
	}
	for _, name := range proxyOwned {
		m[strings.ToLower(name)] = true
	}
	return m
}()

// replacedForBackend reports whether the backend gets something else than
// the client's value of the field lower (lower case), from a peer trusted
// or not: a field the gateway sets or removes.
func replacedForBackend(lower []byte, trusted bool) bool {
	keptWhenTrusted, ok := gatewaySets[string(lower)]
	return ok && !(trusted && keptWhenTrusted)
}

// general reports whether the request takes the general path (see
// fieldHopByHop).
func (f *requestFields) general() bool { return f.has&fieldHopByHop != 0 }

// del deletes every copy of the field name (canonical spelling) when the
// scan saw it.
func (f *requestFields) del(h *fasthttp.RequestHeader, field fieldSet, name string) {
	if f.has&field != 0 {
		h.Del(name)
	}
}

// replace sets name (canonical spelling) to value, removing every other copy
// of it. fasthttp's Set replaces only the first copy of a field, so a client
// that sends X-Forwarded-For twice must not get its second copy through.
// SetCanonical is SetBytesV without normalising a name that is canonical
// already.
func (f *requestFields) replace(h *fasthttp.RequestHeader, field fieldSet, name string, value []byte) {
	f.del(h, field, name)
	h.SetCanonical([]byte(name), value)
}

// firstNotEmpty reports whether the first copy of the field name is there
// and not empty, as Peek sees it now: deleting a field moves the last one
// into its place, so which copy comes first can change after the scan.
func (f *requestFields) firstNotEmpty(h *fasthttp.RequestHeader, field fieldSet, name string) bool {
	return f.has&field != 0 && len(h.Peek(name)) > 0
}

// stripResponse removes the hop-by-hop fields of a backend's response, any
// X-Request-Id it sent (the client gets one id, the gateway's) and any field
// whose name is not a token. Response names are not normalised upstream, so
// fasthttp's Del would miss "x-request-id". A response with none of them
// (most) costs one pass over its fields instead of the three the removals
// each begin with. It fails, for a 502, on a response with more Connection
// options or hop-by-hop fields than it removes. named reports that its
// Connection named a field the cache decides by (cacheDecisionFields),
// which the strip removed.
func stripResponse(h *fasthttp.ResponseHeader) (named bool, err error) {
	for k := range h.All() {
		// fasthttp refuses every byte of a response field name that is not
		// a token character but an inner space (TestFasthttpRefusesNonTokenResponseNamesButSpace),
		// so a space is all the walk needs to look for.
		if httpsafe.IsHopByHop(k) || httpsafe.EqualFold(k, "x-request-id") || bytes.IndexByte(k, ' ') >= 0 {
			named = httpsafe.ConnectionNamesAny(h, cacheDecisionFields)
			if err := httpsafe.StripResponseHopByHop(h); err != nil {
				return named, err
			}
			httpsafe.DelResponseField(h, "x-request-id")
			httpsafe.DropInvalidResponseFields(h)
			return named, nil
		}
	}
	h.ResetConnectionClose() // all StripResponseHopByHop has to do then
	return false, nil
}
