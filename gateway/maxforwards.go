package gateway

import (
	"bytes"
	"strconv"

	"github.com/valyala/fasthttp"
)

// maxForwards applies Max-Forwards to a TRACE or OPTIONS request (RFC 9110
// §7.6.2): a value of 0 means the gateway is the final recipient and answers
// itself, without a backend; a larger one is decremented on the request
// forwarded. false: the request has been answered. Other methods, and a
// value that is not a number, are left alone (the field is defined for
// these two methods only, and has no meaning otherwise).
func (s *Server) maxForwards(rq *request) bool {
	h := &rq.ctx.Request.Header
	if !h.IsTrace() && !h.IsOptions() {
		return true
	}
	v := h.Peek(hdrMaxForwards)
	if v == nil {
		return true
	}
	n, ok := maxForwardsValue(v)
	if !ok {
		return true
	}
	if n > 0 {
		// Every copy goes: the one forwarded is the lower value.
		h.Del(hdrMaxForwards)
		h.Set(hdrMaxForwards, strconv.FormatUint(n-1, 10))
		return true
	}
	resp := &rq.ctx.Response
	resp.Header.SetBytesV(hdrRequestID, rq.id)
	if h.IsOptions() {
		// No Allow: what the backends support is theirs to say.
		resp.SetStatusCode(fasthttp.StatusOK)
		resp.Header.SetContentLength(0)
		return false
	}
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentType("message/http")
	resp.SetBody(traceBody(h))
	return false
}

const hdrMaxForwards = "Max-Forwards"

// maxMaxForwards is the largest Max-Forwards the gateway forwards (the
// field's value is the lesser of the received one less one and "the
// recipient's maximum supported value", RFC 9110 §7.6.2).
const maxMaxForwards = 1<<31 - 1

// maxForwardsValue parses a Max-Forwards value, 1*DIGIT; a larger number
// than maxMaxForwards counts as that.
func maxForwardsValue(v []byte) (uint64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+uint64(c-'0'), maxMaxForwards)
	}
	return n, true
}

// traceBody is the request TRACE reflects: its request line and header
// section, without the fields likely to carry credentials, which the final
// recipient should leave out (RFC 9110 §9.3.8).
func traceBody(h *fasthttp.RequestHeader) []byte {
	b := append([]byte(nil), h.Method()...)
	b = append(b, ' ')
	b = append(b, h.RequestURI()...)
	b = append(b, ' ')
	b = append(b, h.Protocol()...)
	b = append(b, "\r\n"...)
	for k, v := range h.All() {
		if sensitiveField(k) {
			continue
		}
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// sensitiveField reports a field TRACE does not reflect: Authorization,
// Proxy-Authorization, Cookie, and any whose name says it holds a
// credential (X-Api-Key, X-Auth-Token, X-Session-Id, ...).
func sensitiveField(name []byte) bool {
	lower := bytes.ToLower(name)
	for _, s := range [...]string{"auth", "cookie", "token", "key", "secret", "session", "passw", "credential", "signature"} {
		if bytes.Contains(lower, []byte(s)) {
			return true
		}
	}
	return false
}
