package gateway

import (
	"strconv"
)

// writeError answers with status and a small JSON body naming the reason and
// the request id, e.g. {"error":"no healthy backend","status":503,"request_id":"…"}.
// reason is a fixed string of the gateway's, never client input, so it needs
// no escaping; the request id is checked to be printable ASCII without quotes
// or backslashes when it is assigned.
func (s *Server) writeError(rq *request, status int, reason string) {
	ctx := rq.ctx
	ctx.Response.Header.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.SetBytesV(hdrRequestID, rq.id)
	b := append(rq.errBuf[:0], `{"error":"`...)
	b = append(b, reason...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"request_id":"`...)
	b = append(b, rq.id...)
	b = append(b, "\"}\n"...)
	rq.errBuf = b
	ctx.Response.SetBody(b)
}
