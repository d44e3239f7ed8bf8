package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// Request bodies (README "Streaming"). fasthttp runs with StreamRequestBody
// when server.buffer_request is below server.max_request_body (by default
// they are equal, and every body is read whole by fasthttp as before): the
// handler then starts once the head is read, with at most 8 KiB of the
// body, and takeBody decides before anything else looks at the request:
//
//   - a Content-Length over max_request_body: 413, the body unread
//     (headerReceived usually answers it first);
//   - a body that fits buffer_request (by its Content-Length, or a chunked
//     one that ends within it): read whole, as without streaming, so that
//     small requests keep the buffered path (retries, one write upstream)
//     and a malformed chunked body is refused before it reaches a backend;
//   - anything larger streams to the backend as it arrives, through
//     requestBody, which enforces max_request_body as it goes. Such a
//     request is never retried once its first byte has left.
//
// One difference from reading whole: fasthttp's stream decodes chunks
// without a limit, so a chunk declared over max_request_body is refused
// when its data runs past the limit (or stops: 400), not at its size line.

// errRequestTooLarge is a streamed request body growing past
// max_request_body.
var errRequestTooLarge = errors.New("request body larger than server.max_request_body")

// takeBody readies the request body for the upstream exchange (see above);
// it returns false when it answered the request itself.
func (s *Server) takeBody(rq *request) bool {
	req := &rq.ctx.Request
	if !req.IsBodyStream() {
		return true // StreamRequestBody is off, or there is no body
	}
	cl := req.Header.ContentLength()
	switch {
	case cl > s.maxRequestBody:
		s.refuse(rq, fasthttp.StatusRequestEntityTooLarge, httpsafe.ReasonBodyTooLarge)
		return false
	case cl >= 0 && cl <= s.bufferRequest:
		return s.readBody(rq, cl)
	}
	src := req.BodyStream()
	if cl < 0 {
		// Chunked: read ahead up to buffer_request; a body that ends
		// there goes on buffered, with a Content-Length.
		buf, ended, err := readUpTo(src, rq.body[:0], s.bufferRequest)
		rq.body = buf
		if err != nil {
			s.refuseBody(rq, err)
			return false
		}
		if ended {
			req.SetBody(buf)
			s.dropLargeBody(rq)
			// Its trailer section was read with the body, after check.
			httpsafe.DropTrailerSection(&req.Header)
			return true
		}
		src = io.MultiReader(bytes.NewReader(buf), src)
	}
	rb := &requestBody{src: src, max: int64(s.maxRequestBody), conn: rq.ctx.Conn(), idle: s.readTimeout, header: &req.Header}
	rq.reqBody = rb
	// SetBodyStream drops fasthttp's stream without closing it: the server
	// owns it (and drains what is left unread before the next request).
	req.SetBodyStream(rb, cl)
	return true
}

// readBody reads a body of cl bytes whole, so that the request goes on as
// a buffered one.
func (s *Server) readBody(rq *request, cl int) bool {
	req := &rq.ctx.Request
	if cap(rq.body) < cl {
		rq.body = make([]byte, cl)
	}
	buf := rq.body[:cl]
	if _, err := io.ReadFull(req.BodyStream(), buf); err != nil {
		s.refuseBody(rq, err)
		return false
	}
	req.SetBody(buf)
	s.dropLargeBody(rq)
	return true
}

// refuseBody answers a request whose body could not be read, as fasthttp's
// error handler would have (400 malformed, 408 too slow, 413), or with the
// verdict headerReceived reached on its head.
func (s *Server) refuseBody(rq *request, err error) {
	status, reason := httpsafe.ErrorStatus(err)
	if v, ok := s.refusedHeads.Load(&rq.ctx.Request.Header); ok {
		r := v.(refusal)
		status, reason = r.status, r.reason
	}
	s.refuse(rq, status, reason)
}

// readUpTo appends from r to dst until r ends (ended) or dst holds more than
// limit bytes.
func readUpTo(r io.Reader, dst []byte, limit int) (buf []byte, ended bool, err error) {
	for len(dst) <= limit {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit+1)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, true, nil
		}
		if err != nil {
			return dst, false, err
		}
	}
	return dst, false, nil
}

// dropLargeBody forgets a body buffer too large to keep in the pool: one
// large upload must not pin its memory in every pooled request.
func (s *Server) dropLargeBody(rq *request) {
	if cap(rq.body) > maxKeptBody {
		rq.body = nil
	}
}

// maxKeptBody is the largest body buffer a pooled request keeps.
const maxKeptBody = 64 << 10

// requestBody is a request body streaming to the backend: fasthttp's stream
// of it, bounded by max_request_body, with server.read_timeout applied to
// each wait for the client instead of to the whole upload.
type requestBody struct {
	src       io.Reader
	max       int64
	read      int64
	conn      net.Conn
	idle      time.Duration
	lastReset time.Time
	err       error
	// header is the request's: a chunked body's trailer section, read
	// into it as the body ends, is dropped there (DropTrailerSection)
	// before fasthttp, writing the request upstream, would send it on.
	header *fasthttp.RequestHeader
}

func (rb *requestBody) Read(p []byte) (int, error) {
	if rb.err != nil {
		return 0, rb.err
	}
	if rb.idle > 0 && rb.conn != nil {
		if now := time.Now(); now.Sub(rb.lastReset) >= rb.idle/100 {
			rb.lastReset = now
			_ = rb.conn.SetReadDeadline(now.Add(rb.idle))
		}
	}
	n, err := rb.src.Read(p)
	rb.read += int64(n)
	if rb.read > rb.max {
		n -= int(rb.read - rb.max)
		rb.read = rb.max
		err = fmt.Errorf("%w (%d bytes)", errRequestTooLarge, rb.max)
	}
	if err != nil && err != io.EOF {
		rb.err = err
	}
	if err == io.EOF && rb.header != nil {
		httpsafe.DropTrailerSection(rb.header)
	}
	return n, err
}

// tooLarge reports whether the stream ended because it grew past the limit.
func (rb *requestBody) tooLarge() bool { return errors.Is(rb.err, errRequestTooLarge) }
