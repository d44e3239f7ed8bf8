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
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || len(v) == 0 || v[0] < '0' || v[0] > '9' {
		return true
	}
	if n > 0 {
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

// traceBody is the request TRACE reflects: its request line and header
// section as received, without the fields that carry credentials, which the
// final recipient should leave out (RFC 9110 §9.3.8).
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

// sensitiveField reports a field TRACE does not reflect.
func sensitiveField(name []byte) bool {
	for _, s := range [...]string{"authorization", "proxy-authorization", "cookie"} {
		if bytes.EqualFold(name, []byte(s)) {
			return true
		}
	}
	return false
}
