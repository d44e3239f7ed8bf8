package gateway

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// writeError answers with status and a small JSON body naming the reason and
// the request id, e.g. {"error":"no healthy backend","status":503,"request_id":"…"}.
// reason is a fixed string of the gateway's, never client input, so it needs
// no escaping; the request id is checked to be printable ASCII without quotes
// or backslashes when it is assigned.
func (s *Server) writeError(ctx *fasthttp.RequestCtx, sc *scratch, status int, reason string) {
	ctx.Response.Header.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.SetBytesV(hdrRequestID, sc.id)
	b := append(sc.errBuf[:0], `{"error":"`...)
	b = append(b, reason...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"request_id":"`...)
	b = append(b, sc.id...)
	b = append(b, "\"}\n"...)
	sc.errBuf = b
	ctx.Response.SetBody(b)
}
