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
	rq.id = append(rq.id[:0], s.idPrefix...)
	n := ctx.ID()
	if n == 0 {
		// fasthttp has not numbered requests it could not parse; they get
		// their own sequence, marked "e" so it cannot collide with ctx.ID.
		rq.id = append(rq.id, 'e')
		n = s.unparsed.Add(1)
	}
	rq.id = strconv.AppendUint(rq.id, n, 16)
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
