package httpsafe

import (
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// Reasons ErrorHandler reports for requests fasthttp refused to parse.
const (
	reasonMalformed      = "malformed request"
	reasonHeaderTooLarge = "request header section too large"
	reasonLineTooLong    = "request line too long"
	// ReasonBodyTooLarge is also what the gateway answers an
	// "Expect: 100-continue" request whose Content-Length is over the limit.
	ReasonBodyTooLarge = "request body too large"
	reasonTimeout      = "request timeout"
)

// Reject answers the request with status and a small JSON body
// {"error":"<reason>","status":N} and marks the connection to be closed
// after the answer: a request refused for its framing leaves the rest of the
// stream unreadable, and for other refusals closing costs little and denies a
// probing client a cheap retry. reason must be JSON-safe (every reason this
// package returns is). It allocates nothing once the response's body buffer
// has grown.
func Reject(ctx *fasthttp.RequestCtx, status int, reason string) {
	resp := &ctx.Response
	resp.ResetBody()
	resp.Header.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	var num [20]byte
	resp.AppendBodyString(`{"error":"`)
	resp.AppendBodyString(reason)
	resp.AppendBodyString(`","status":`)
	resp.AppendBody(strconv.AppendInt(num[:0], int64(status), 10))
	resp.AppendBodyString("}")
	ctx.SetConnectionClose()
}

// ErrorHandler is meant for fasthttp.Server.ErrorHandler. fasthttp calls it
// for requests it could not read or parse, before any handler runs, and
// closes the connection after writing the answer. It maps:
//
//   - *fasthttp.ErrSmallBuffer (request line plus header section larger than
//     Server.ReadBufferSize) to 431, or to 414 when the request line alone
//     filled the buffer. fasthttp resets the request before calling this, so
//     the only evidence is the buffer snippet in the error text: no line
//     feed in it means the request line never ended. With
//     Server.SecureErrorLogMessage the snippet is absent and the answer is
//     always 431. Check's MaxURILength gives an exact 414 for any URI that
//     fits in the buffer.
//   - fasthttp.ErrBodyTooLarge (Content-Length or chunked body above
//     Server.MaxRequestBodySize) to 413.
//   - a read timeout to 408.
//   - ErrBareLFHead (a head ended by a bare LF blank line, which fasthttp
//     would wait on) and ErrBareLFTrailer (a bare LF in a chunked body's
//     trailer section, which fasthttp would take) to 400, as Check answers
//     a bare LF.
//   - everything else (bad request line, framing, duplicate Host, bare CR,
//     NUL, broken chunks, invalid Host syntax) to 400.
func ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	status, reason := ErrorStatus(err)
	Reject(ctx, status, reason)
}

// ErrorStatus maps an error of fasthttp's request parsing to the status and
// reason ErrorHandler answers with, for callers that write their own body.
func ErrorStatus(err error) (int, string) {
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) {
		if requestLineOverflowed(small.Error()) {
			return 414, reasonLineTooLong
		}
		return 431, reasonHeaderTooLarge
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return 413, ReasonBodyTooLarge
	}
	if errors.Is(err, ErrBareLFHead) || errors.Is(err, ErrBareLFTrailer) {
		return 400, reasonBareLF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 408, reasonTimeout
	}
	return 400, reasonMalformed
}

// requestLineOverflowed reads fasthttp's ErrSmallBuffer text, which ends in
// `contents: "<first 200 bytes>"..."<last 200 bytes>"` (%q-quoted, so a line
// feed shows as the two bytes \n).
func requestLineOverflowed(msg string) bool {
	i := strings.LastIndex(msg, "contents: ")
	if i < 0 {
		return false
	}
	return !strings.Contains(msg[i:], `\n`)
}
