package httpsafe

import (
	"bytes"
	"encoding/binary"

	"github.com/valyala/fasthttp"
)

// Reasons Check reports. Fixed, JSON-safe strings (see Reject).
const (
	reasonConnect          = "CONNECT is not supported"
	reasonVersion          = "HTTP version not supported"
	reasonURITooLong       = "request-target too long"
	reasonAsteriskForm     = "asterisk-form request-target not supported"
	reasonTargetForm       = "invalid request-target"
	reasonFragment         = "fragment in request-target"
	reasonBareLF           = "bare LF in header section"
	reasonBareCR           = "bare CR in header section"
	reasonObsFold          = "obs-fold in header section"
	reasonHeaderName       = "invalid header field name"
	reasonHeaderValue      = "control character in header field value"
	reasonHeaderUnfinished = "unterminated header section"
	reasonDupHost          = "duplicate Host header"
	reasonDupLength        = "duplicate Content-Length header"
	reasonBadLength        = "invalid Content-Length"
	reasonDupCoding        = "duplicate Transfer-Encoding header"
	reasonBadCoding        = "unsupported Transfer-Encoding"
	reasonLengthAndCoding  = "both Content-Length and Transfer-Encoding"
	reasonHopByHop         = "too many Connection options or hop-by-hop fields"
)

// Fields is a set of fields a request head was seen to have, in any case,
// as CheckAppendAuthority walks it anyway: a caller that knows a field is
// absent need not look it up (fasthttp's Peek and Del copy and normalise the
// name, then scan every field).
type Fields uint8

const (
	FieldXForwardedHost Fields = 1 << iota // X-Forwarded-Host
	FieldXRequestID                        // X-Request-Id
)

// Check inspects a request that fasthttp has parsed and returns status 0
// when it is safe to route and forward, or the status to answer with (400,
// 405, 414 or 505) and a short fixed reason. It allocates nothing.
//
// It re-reads the header section exactly as received
// (RequestHeader.RawHeaders) because fasthttp folds, drops or merges some
// fields before the handler sees them: Transfer-Encoding: identity vanishes,
// obs-fold is joined, "Content Length" with a space is kept as an ordinary
// field, and Content-Length together with Transfer-Encoding reaches the
// handler. The table in doc.go lists what fasthttp refuses by itself.
//
// Checked here: method (CONNECT, 405), version (only HTTP/1.0 and 1.1, 505:
// fasthttp takes any other, HTTP/1.2 too, as HTTP/1.0, and the gateway
// cannot undo that once it sees the request),
// request-target length (414) and form (origin-form or http(s) absolute-form;
// no '*', no fragment), header syntax (bare CR or LF, obs-fold, field names
// that are not tokens, controls in values), framing (duplicate or malformed
// Content-Length, any Transfer-Encoding other than a single "chunked", both
// together) and the authority (missing, duplicate or malformed Host, or
// userinfo in Host or in the absolute URI). The path is checked by
// AppendPath, which the caller runs next.
//
// Any refusal means the connection must be closed after the answer, which
// Reject does.
func Check(req *fasthttp.Request, o *Options) (status int, reason string) {
	return CheckHeader(&req.Header, o)
}

// CheckHeader is Check on a request head alone, for use before the body has
// been read (fasthttp.Server.HeaderReceived): a head Check would refuse
// need not wait for its body.
func CheckHeader(h *fasthttp.RequestHeader, o *Options) (status int, reason string) {
	status, reason, _, _ = checkHeader(h, o)
	return status, reason
}

// CheckAppendAuthority is Check followed by AppendAuthority on the request
// Check accepted, with the authority parsed once instead of twice: on status
// 0, host is dst with the routing host appended; otherwise host is dst
// unchanged and status and reason are Check's. (AppendAuthority cannot
// refuse what Check accepted: Check validates every Host given and the
// absolute-form authority, and requires one of them.) seen is which Fields
// the header section has; it is complete only when status is 0, and it says
// nothing of the trailer section of a chunked body.
func CheckAppendAuthority(dst []byte, req *fasthttp.Request, o *Options) (host []byte, seen Fields, status int, reason string) {
	status, reason, a, seen := checkHeader(&req.Header, o)
	if status != 0 {
		return dst, seen, status, reason
	}
	return appendLower(dst, a.host), seen, 0, ""
}

// checkHeader is CheckHeader, also returning the authority that routes the
// request (the absolute-form URI's, else Host's) when it accepts.
func checkHeader(h *fasthttp.RequestHeader, o *Options) (status int, reason string, routing authority, seen Fields) {
	if h.IsConnect() {
		return 405, reasonConnect, routing, seen
	}
	if p := h.Protocol(); string(p) != "HTTP/1.1" && string(p) != "HTTP/1.0" {
		return 505, reasonVersion, routing, seen
	}
	target := h.RequestURI()
	if len(target) > o.maxURILength() {
		return 414, reasonURITooLong, routing, seen
	}
	if len(target) == 1 && target[0] == '*' {
		return 400, reasonAsteriskForm, routing, seen
	}
	for _, c := range target {
		if c == '#' {
			return 400, reasonFragment, routing, seen
		}
	}
	st, why, seen := checkRawHeaders(h.RawHeaders())
	if st != 0 {
		return st, why, routing, seen
	}

	// Authority: every Host header given must be valid, and the one that
	// routes (absolute URI, else Host) must exist.
	host := h.Host()
	if len(host) > 0 {
		if routing, why = parseAuthority(host); why != "" {
			return 400, why, routing, seen
		}
	}
	auth, absolute, why := absoluteAuthority(target)
	switch {
	case why != "":
		return 400, why, routing, seen
	case absolute:
		if routing, why = parseAuthority(auth); why != "" {
			return 400, why, routing, seen
		}
	case target[0] != '/':
		return 400, reasonTargetForm, routing, seen
	case len(host) == 0:
		return 400, reasonHostMissing, routing, seen
	}
	return 0, "", routing, seen
}

// checkRawHeaders validates the header section as received, up to and
// including its empty last line, and reports which Fields it has.
func checkRawHeaders(raw []byte) (status int, reason string, seen Fields) {
	var hosts, lengths, codings, hops int
	var opts connOptions   // views into raw
	ended := len(raw) == 0 // fasthttp leaves RawHeaders empty for no fields
	for pos := 0; pos < len(raw); {
		lf := bytes.IndexByte(raw[pos:], '\n')
		if lf < 0 {
			return 400, reasonHeaderUnfinished, seen
		}
		lf += pos
		if lf == pos || raw[lf-1] != '\r' {
			return 400, reasonBareLF, seen
		}
		line := raw[pos : lf-1]
		pos = lf + 1
		if len(line) == 0 {
			ended = true
			break // end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			return 400, reasonObsFold, seen
		}
		colon := 0
		for colon < len(line) && tokenTable[line[colon]] != 0 {
			colon++
		}
		if colon < len(line) && line[colon] != ':' {
			return 400, reasonHeaderName, seen
		}
		if colon == 0 || colon == len(line) {
			return 400, reasonHeaderName, seen
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if why := valueFault(value); why != "" {
			return 400, why, seen
		}
		if isHopByHop(name) {
			hops++
			if EqualFold(name, "connection") && !opts.add(value) {
				return 400, reasonHopByHop, seen
			}
		}
		switch {
		case len(name) != 4 && len(name) != 12 && len(name) != 14 && len(name) != 16 && len(name) != 17:
			// Not a field Check counts or reports.
		case EqualFold(name, "x-request-id"):
			seen |= FieldXRequestID
		case EqualFold(name, "x-forwarded-host"):
			seen |= FieldXForwardedHost
		case EqualFold(name, "host"):
			if hosts++; hosts > 1 {
				return 400, reasonDupHost, seen
			}
		case EqualFold(name, "content-length"):
			if lengths++; lengths > 1 {
				return 400, reasonDupLength, seen
			}
			if !allDigits(value) {
				return 400, reasonBadLength, seen
			}
		case EqualFold(name, "transfer-encoding"):
			if codings++; codings > 1 {
				return 400, reasonDupCoding, seen
			}
			if !EqualFold(value, "chunked") {
				return 400, reasonBadCoding, seen
			}
		}
	}
	if !ended {
		return 400, reasonHeaderUnfinished, seen
	}
	if lengths > 0 && codings > 0 {
		return 400, reasonLengthAndCoding, seen
	}
	if opts.n > 0 {
		hops = countStripped(raw, &opts)
	}
	if hops > maxHopByHopFields {
		return 400, reasonHopByHop, seen
	}
	return 0, "", seen
}

// countStripped counts the fields of a header section checkRawHeaders
// accepted that the strip removes, given its Connection options.
func countStripped(raw []byte, opts *connOptions) int {
	n := 0
	for len(raw) > 0 {
		lf := bytes.IndexByte(raw, '\n')
		line := raw[:lf-1]
		raw = raw[lf+1:]
		if len(line) == 0 {
			break
		}
		if opts.strips(line[:bytes.IndexByte(line, ':')]) {
			n++
		}
	}
	return n
}

// valueFault returns why the field value v is refused (a CR, or a control
// character other than HTAB), or "" when it is not. Words of eight bytes
// without a byte below 0x20 or a DEL are skipped whole; the first word that
// has one, and the tail, are read byte by byte, so the first fault is the one
// reported.
func valueFault(v []byte) string {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(v) >= 8 {
		w := binary.LittleEndian.Uint64(v)
		// Exact for "is there any such byte": a false flag can only appear
		// in a byte above a true one.
		below := (w - 0x20*ones) &^ w & highs
		del := (w ^ 0x7f*ones - ones) &^ (w ^ 0x7f*ones) & highs
		if below|del != 0 {
			break
		}
		v = v[8:]
	}
	for _, c := range v {
		if c == '\r' {
			return reasonBareCR
		}
		if c < 0x20 && c != '\t' || c == 0x7f {
			return reasonHeaderValue
		}
	}
	return ""
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualFold reports whether b equals the lower-case ASCII string lower,
// ignoring ASCII case.
func EqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
