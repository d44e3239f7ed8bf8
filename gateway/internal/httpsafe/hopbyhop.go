package httpsafe

import (
	"bytes"
	"errors"
	"iter"

	"github.com/valyala/fasthttp"
)

// maxStripRounds bounds the delete loops below. Each round removes at least
// one field (the request strip: maxHopByHopFields spellings), so a header
// with more fields to remove than this keeps the rest; fasthttp's read
// buffer caps a real header far below it.
const maxStripRounds = 512

// maxConnectionOptions is how many field names the Connection fields of one
// message may list, and maxHopByHopFields how many fields of one message
// the strips may have to remove. A real message has a handful; each
// removal rescans the header (fasthttp's Del), so a request with more is
// refused by Check (400) and a response by StripResponseHopByHop (the
// gateway answers 502), rather than stripped at a quadratic cost (a 16 KiB
// head naming 540 fields took seconds of CPU) or forwarded with some left.
// Within them a strip costs a pass to find the names and a rescan per
// distinct spelling (victims).
const (
	maxConnectionOptions = 32
	maxHopByHopFields    = 64
)

// ErrTooManyHopByHop is StripResponseHopByHop's error for a response with
// more Connection options or hop-by-hop fields than it removes.
var ErrTooManyHopByHop = errors.New("too many hop-by-hop fields or Connection options")

// connOptions holds the field names a message's Connection fields list
// (tokens other than close and keep-alive), as views into their values.
type connOptions struct {
	n     int
	names [maxConnectionOptions][]byte
}

// add records the options of one Connection value; false when that makes
// more than maxConnectionOptions.
func (o *connOptions) add(v []byte) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextToken(v)
		if len(tok) == 0 || EqualFold(tok, "close") || EqualFold(tok, "keep-alive") {
			continue
		}
		if o.n == len(o.names) {
			return false
		}
		o.names[o.n] = tok
		o.n++
	}
	return true
}

// strips reports whether the field name k is removed: a fixed hop-by-hop
// field, or one an option names (never Host or Content-Length).
func (o *connOptions) strips(k []byte) bool {
	if isHopByHop(k) {
		return true
	}
	if o.n == 0 || isProtected(k) {
		return false
	}
	for _, n := range o.names[:o.n] {
		if len(n) == len(k) && equalFoldBytes(n, k) {
			return true
		}
	}
	return false
}

// StripRequestHopByHop removes from h, before it is forwarded, every field
// that describes only the client's connection: Connection, Keep-Alive,
// Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding, Upgrade, and every field named by a token of a
// Connection header (RFC 9110 section 7.6.1). Names match in any case, which
// fasthttp's own Del does not do when DisableHeaderNamesNormalizing is set.
// Check has refused a request with more options or such fields than it
// removes (maxConnectionOptions, maxHopByHopFields).
//
// Host and Content-Length are never removed because a Connection token names
// them: they carry routing and framing, and fasthttp re-frames the body on
// write anyway. Removing Transfer-Encoding is safe for the same reason:
// Request.Write sets Content-Length from the buffered body.
//
// Call it before setting the gateway's own fields (X-Forwarded-*, Via,
// X-Request-Id): a client's "Connection: X-Request-Id" then removes only the
// client's copy. The server decided whether to keep the client connection
// alive before the handler ran, so clearing Connection: close here does not
// change that. It allocates nothing unless the request announced trailers.
func StripRequestHopByHop(h *fasthttp.RequestHeader) {
	DropTrailerSection(h)
	var o connOptions
	hops := false
	for k, v := range h.All() {
		if isHopByHop(k) {
			hops = true
			if EqualFold(k, "connection") {
				o.add(v) // beyond the bound, Check refused the request
			}
		}
	}
	for round := 0; hops && round < maxStripRounds; round++ {
		var vs victims
		for k := range h.All() {
			if o.strips(k) {
				vs.add(k)
			}
		}
		for _, k := range vs.names[:vs.n] {
			if !vs.more || !EqualFold(k, "connection") { // o views its value: last
				h.DelBytes(k)
			}
		}
		hops = vs.more
	}
	// DelBytes clears the close flag only for the exact name "Connection";
	// with the fields gone this no longer allocates.
	h.ResetConnectionClose()
}

// victims collects the spellings of the field names a strip removes, each
// once, in one pass over the header: deleting a name removes every field
// spelled so, and leaves the other fields' bytes where they are (fasthttp
// moves the deleted field's slot to the end), so the views stay valid
// through the deletes. The cost is one pass plus one delete per spelling,
// where deleting the first field left to go and starting over cost a pass
// per field (2 ms for the most the bounds allow among 1,400 other fields).
// more: there were more spellings than fit, for another round (a request
// Check did not look at; a response past the bound is refused first).
type victims struct {
	n     int
	more  bool
	names [maxHopByHopFields][]byte
}

func (v *victims) add(k []byte) {
	for _, n := range v.names[:v.n] {
		if bytes.Equal(n, k) {
			return
		}
	}
	if v.n == len(v.names) {
		v.more = true
		return
	}
	v.names[v.n] = k
	v.n++
}

// trailerHeader is what DropTrailerSection needs of a fasthttp request or
// response header.
type trailerHeader interface {
	All() iter.Seq2[[]byte, []byte] // the header section, without the trailer fields
	PeekTrailerKeys() [][]byte
	DelBytes(key []byte)
	AddBytesKV(key, value []byte)
}

// DropTrailerSection discards the trailer fields of a chunked message read
// whole, and its Trailer announcement, keeping its header section as it
// was. The gateway forwards such a message with a Content-Length, and a
// trailer field must not be merged into the header section (RFC 9110
// §6.5.1): it arrived after the head was checked and routed, and would come
// out as a header field the client or backend never sent as one
// ("X-User: alice" in the head, "X-User: admin" in the trailer).
//
// fasthttp keeps trailer fields apart, but removing the Trailer field (a
// hop-by-hop field) moves them into the header section; so does deleting a
// name from one section only, which Del cannot do. The header section's
// fields of the trailer names are set aside and added back after every
// field of those names is gone. It allocates, only for a message that has
// trailer names. One field cannot be added back: fasthttp manages a
// response's Date itself, so a response whose trailer names Date loses
// the head's Date too (it goes out with the time of sending, and the cache
// counts its age from when it arrived).
func DropTrailerSection(h trailerHeader) {
	names := h.PeekTrailerKeys()
	if len(names) == 0 {
		return
	}
	var kept [][2][]byte // header-section fields of a trailer name
	for k, v := range h.All() {
		if !EqualFold(k, "trailer") && isNamed(names, k) {
			kept = append(kept, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		}
	}
	dead := make([][]byte, 0, len(names)+len(kept)+1)
	for _, n := range names {
		dead = append(dead, bytes.Clone(n))
	}
	for _, kv := range kept {
		dead = append(dead, kv[0]) // as spelled: Del matches exactly when names are not normalised
	}
	for _, n := range dead {
		h.DelBytes(n)
	}
	h.DelBytes([]byte("Trailer")) // the trailer fields are gone: nothing moves
	for _, kv := range kept {
		h.AddBytesKV(kv[0], kv[1])
	}
}

// isNamed reports whether name is one of names, in any case.
func isNamed(names [][]byte, name []byte) bool {
	for _, n := range names {
		if bytes.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// StripResponseHopByHop is StripRequestHopByHop for a backend's response,
// before it is written to the client, with the bounds checked here: a
// response with more options or such fields than it removes gets
// ErrTooManyHopByHop before anything is removed (answer 502). It
// also clears the backend's Connection: close, which concerns the backend
// connection only (HostClient has acted on it already); call
// ctx.SetConnectionClose after stripping when the gateway wants the client
// connection closed.
//
// It repeats StripRequestHopByHop's passes on purpose: a generic version
// over both header types makes fasthttp's All() iterators escape through the
// generic dictionary, 8 to 12 allocations per request (TestStripAllocatesNothing).
func StripResponseHopByHop(h *fasthttp.ResponseHeader) error {
	DropTrailerSection(h)
	var o connOptions
	fields := 0
	for k, v := range h.All() {
		if isHopByHop(k) {
			fields++
			if EqualFold(k, "connection") && !o.add(v) {
				return ErrTooManyHopByHop
			}
		}
	}
	if fields == 0 {
		h.ResetConnectionClose()
		return nil
	}
	var vs victims
	fields = 0
	for k := range h.All() {
		if o.strips(k) {
			fields++
			vs.add(k)
		}
	}
	if fields > maxHopByHopFields {
		return ErrTooManyHopByHop
	}
	for _, k := range vs.names[:vs.n] {
		h.DelBytes(k)
	}
	h.ResetConnectionClose()
	return nil
}

// ConnectionNamesAny reports whether the Connection fields of h name one of
// names (lower case): a field the strip removes though it would otherwise
// be end to end (a backend's "Connection: Vary"). The gateway is that
// field's only recipient; a cache that decides on the stripped response
// would decide without it.
func ConnectionNamesAny(h *fasthttp.ResponseHeader, names []string) bool {
	for k, v := range h.All() {
		if !EqualFold(k, "connection") {
			continue
		}
		var o connOptions
		o.add(v) // past its bound the strip refuses the response anyway
		for _, n := range o.names[:o.n] {
			for _, name := range names {
				if EqualFold(n, name) {
					return true
				}
			}
		}
	}
	return false
}

// DropUnderscoreFields removes every request field whose name contains "_".
// CGI-style backends (PHP-FPM, WSGI, anything reading HTTP_* variables) turn
// "-" into "_", so X_Forwarded_For would reach them as X-Forwarded-For, past
// the gateway's replacement of that field; nginx drops such fields by
// default for the same reason.
func DropUnderscoreFields(h *fasthttp.RequestHeader) {
	for range maxStripRounds {
		var victim []byte
		for k := range h.All() {
			if bytes.IndexByte(k, '_') >= 0 {
				victim = k
				break
			}
		}
		if victim == nil {
			return
		}
		h.DelBytes(victim) // a delete reorders the fields: start over
	}
}

// IsToken reports whether b is a token (RFC 9110 §5.6.2), which every field
// name must be.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if tokenTable[c] == 0 {
			return false
		}
	}
	return true
}

// DropInvalidResponseFields removes the fields of a backend's response whose
// name is not a token. fasthttp refuses control characters in a name and
// removes whitespace before the colon (as RFC 9112 §5.1 tells a proxy to),
// but it takes "X A: b" as a field named "X A" and would pass it on, and
// how a client reads such a line is anybody's guess.
func DropInvalidResponseFields(h *fasthttp.ResponseHeader) {
	dropResponseFields(h, func(k []byte) bool { return !IsToken(k) })
}

// DelResponseField removes every copy of the field lower (a lower-case name)
// from h, in any case. A backend's response header is not normalised, and
// fasthttp's Del then matches names case-sensitively.
func DelResponseField(h *fasthttp.ResponseHeader, lower string) {
	dropResponseFields(h, func(k []byte) bool { return EqualFold(k, lower) })
}

// dropResponseFields removes every field of h whose name drop is true for.
func dropResponseFields(h *fasthttp.ResponseHeader, drop func(name []byte) bool) {
	for range maxStripRounds {
		var victim []byte
		for k := range h.All() {
			if drop(k) {
				victim = k
				break
			}
		}
		if victim == nil {
			return
		}
		h.DelBytes(victim) // a delete reorders the fields: start over
	}
}

// IsHopByHop reports whether name is one of the fields StripRequestHopByHop
// and StripResponseHopByHop always remove, in any case: a header without
// any has nothing for them to do but clear the close flag.
func IsHopByHop(name []byte) bool { return isHopByHop(name) }

// RequestStrips reports whether StripRequestHopByHop would remove the field
// name from h: a hop-by-hop field, or one a Connection line names (not one
// the gateway protects). A cache key built before the strip must not hold
// such a field: the backend never sees it. It allocates nothing.
func RequestStrips(h *fasthttp.RequestHeader, name []byte) bool {
	var o connOptions
	for k, v := range h.All() {
		if EqualFold(k, "connection") {
			o.add(v)
		}
	}
	return o.strips(name)
}

// isHopByHop reports whether name is one of the fixed hop-by-hop fields.
// Proxy-Authenticate and Proxy-Authorization are in the list as in Go's
// httputil.ReverseProxy: they are credentials for the gateway, not the
// backend.
func isHopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return EqualFold(name, "te")
	case 7:
		return EqualFold(name, "trailer") || EqualFold(name, "upgrade")
	case 10:
		return EqualFold(name, "connection") || EqualFold(name, "keep-alive")
	case 16:
		return EqualFold(name, "proxy-connection")
	case 17:
		return EqualFold(name, "transfer-encoding")
	case 18:
		return EqualFold(name, "proxy-authenticate")
	case 19:
		return EqualFold(name, "proxy-authorization")
	}
	return false
}

// isProtected reports whether name must survive a Connection token that
// names it: Host routes the request, Content-Length frames it.
func isProtected(name []byte) bool {
	return EqualFold(name, "host") || EqualFold(name, "content-length")
}

// HasToken reports whether the comma-separated list v contains name,
// ignoring ASCII case and optional whitespace (Connection, Upgrade).
func HasToken(v, name []byte) bool { return hasToken(v, name) }

// hasToken reports whether the comma-separated list v contains name,
// ignoring ASCII case and optional whitespace.
func hasToken(v, name []byte) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextToken(v)
		if len(tok) == len(name) && equalFoldBytes(tok, name) {
			return true
		}
	}
	return false
}

func nextToken(v []byte) (tok, rest []byte) {
	i := 0
	for i < len(v) && v[i] != ',' {
		i++
	}
	tok = trimOWS(v[:i])
	if i < len(v) {
		i++
	}
	return tok, v[i:]
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
