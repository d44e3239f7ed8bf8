package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"

	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// maxRequestIDLen bounds a client-supplied X-Request-Id; a longer or
// non-printable one is replaced, so ids stay safe to log and to echo.
const maxRequestIDLen = 128

// assignRequestID keeps a well-formed X-Request-Id from the client or makes
// one: the server's random prefix (fixed at start) and fasthttp's request
// counter, so ids are unique across restarts and instances without a shared
// counter or an allocation.
func (s *Server) assignRequestID(rq *request) {
	ctx := rq.ctx
	if rq.absent&httpsafe.FieldXRequestID == 0 {
		if v := ctx.Request.Header.Peek(hdrRequestID); validRequestID(v) {
			rq.id = append(rq.id[:0], v...)
			return
		}
	}
	n := ctx.ID()
	if n == 0 {
		s.assignUnparsedID(rq)
		return
	}
	rq.id = strconv.AppendUint(append(rq.id[:0], s.idPrefix...), n, 16)
}

// assignUnparsedID gives a request fasthttp could not parse the client's
// well-formed X-Request-Id, or an id of its own sequence, marked "x" (not a
// hex digit) so it cannot collide with ctx.ID's: fasthttp has not numbered
// it (on a kept-alive connection ctx.ID is still the last request's, whose
// id the refusal carried too).
func (s *Server) assignUnparsedID(rq *request) {
	if v := rq.ctx.Request.Header.Peek(hdrRequestID); validRequestID(v) {
		rq.id = append(rq.id[:0], v...)
		return
	}
	rq.id = strconv.AppendUint(append(append(rq.id[:0], s.idPrefix...), 'x'), s.unparsed.Add(1), 16)
}

func validRequestID(v []byte) bool {
	if len(v) == 0 || len(v) > maxRequestIDLen {
		return false
	}
	for _, c := range v {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// newIDPrefix returns 12 random hex digits and a dash.
func newIDPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:]) + "-"
}
