package gateway

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// handle is the request pipeline of DESIGN.md "The request path". Each step
// is one function that answers the request itself and returns false when the
// request goes no further; handle reads as the list of steps. Wrappers are
// used only for what crosses every request (recover, metrics, access log, in
// finish).
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	rq := s.acquire(ctx)
	defer s.release(rq)
	defer s.finish(rq)

	if !s.check(rq) || !s.takeBody(rq) || !s.route(rq) || !s.limit(rq) || !s.maxForwards(rq) {
		return
	}
	if rq.route.upgrade != nil && s.upgrade(rq) {
		return
	}
	if s.fromCache(rq) {
		s.streamBody(rq)
		return
	}
	s.rewriteRequest(rq)
	if err := s.exchange(rq); err != nil {
		s.answerUpstreamError(rq, err)
		return
	}
	s.invalidateCached(rq)
	s.respond(rq)
	s.writeLimitHeaders(rq)
	s.streamBody(rq)
}

// check refuses what is unsafe before anything else (framing, Host, method,
// path), then records who sent the request.
func (s *Server) check(rq *request) bool {
	status, reason := s.checkHead(rq)
	s.assignRequestID(rq) // before any refusal, which carries the id
	if status != 0 {
		s.refuse(rq, status, reason)
		return false
	}
	rq.identify()
	return true
}

// checkHead is check's verdict on the request head, with no answer yet: a
// status and reason to refuse it with, or 0. expect asks it too, before the
// body is sent.
func (s *Server) checkHead(rq *request) (int, string) {
	ctx, t := rq.ctx, rq.table
	// The trailer section of a chunked body goes nowhere: fasthttp's Peek
	// would read its fields as the head's (a client's X-Request-Id), and
	// forwarding would merge them into the header section.
	httpsafe.DropTrailerSection(&ctx.Request.Header)
	host, seen, status, reason := httpsafe.CheckAppendAuthority(rq.host[:0], &ctx.Request, &t.safe)
	if status != 0 {
		return status, reason
	}
	rq.absent = absentFields(&ctx.Request.Header, seen)
	rq.host = host
	rawPath, query := httpsafe.SplitRequestURI(ctx.Request.Header.RequestURI())
	path, status, reason := httpsafe.AppendPath(rq.path[:0], rawPath, &t.safe)
	rq.path = path
	if status != 0 {
		return status, reason
	}
	rq.query = query
	return 0, ""
}

// absentFields returns the fields of httpsafe.Fields that the request with
// head h, which Check accepted and found with the fields seen, does not have
// anywhere: the fields of a chunked body's trailer section, which fasthttp
// has read with the body, are not in the head Check read.
func absentFields(h *fasthttp.RequestHeader, seen httpsafe.Fields) httpsafe.Fields {
	if h.ContentLength() == -1 {
		return 0
	}
	return ^seen & (httpsafe.FieldXRequestID | httpsafe.FieldXForwardedHost)
}

// route finds the route for the request, or answers 404 (no route) or 405
// (a route for the path, but not for the method).
func (s *Server) route(rq *request) bool {
	ctx, t := rq.ctx, rq.table
	idx, allow := t.matcher.MatchOrAllowed(rq.host, ctx.Method(), rq.path, &ctx.Request.Header, rq.allow[:0])
	rq.allow = allow
	if idx < 0 {
		if len(allow) > 0 {
			ctx.Response.Header.SetBytesV("Allow", allow)
			s.writeError(rq, fasthttp.StatusMethodNotAllowed, "method not allowed")
			return false
		}
		s.writeError(rq, fasthttp.StatusNotFound, "no route")
		return false
	}
	rq.route = t.routes[idx]
	rq.route.m.inFlight.Inc()
	return s.admit(rq) && s.choosePool(rq)
}

// handleParseError answers a request that fasthttp could not parse (bad
// framing, oversized head or body) and counts and logs it like any other.
// A body read that timed out because headerReceived refused the head gets
// the head's refusal, not 408.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	if c := ctx.Conn(); c != nil {
		// fasthttp writes this answer under the last response's deadline.
		_ = s.freshWriteDeadline(c)
	}
	rq := s.acquire(ctx)
	defer s.release(rq)
	defer s.finish(rq)
	s.assignUnparsedID(rq)
	status, reason := httpsafe.ErrorStatus(err)
	if v, ok := s.refusedHeads.Load(&ctx.Request.Header); ok {
		r := v.(refusal)
		status, reason = r.status, r.reason
	}
	s.refuse(rq, status, reason)
}

// headerReceived runs when a request head has been parsed, before fasthttp
// reads the body. A head the pipeline would refuse (both Content-Length and
// Transfer-Encoding, say) must be answered at once, not after the client has
// sent a body or read_timeout has passed: its body read is given a deadline
// that has already passed, and handleParseError answers with the refusal.
// Requests without a body have nothing to wait for and are left alone, so a
// GET pays nothing here.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	// 0: an empty body; -2: no Content-Length and no Transfer-Encoding,
	// which in a request means no body either. -1 (chunked) and a positive
	// length have a body to wait for.
	cl := h.ContentLength()
	if cl == 0 || cl == -2 {
		return fasthttp.RequestConfig{}
	}
	if cl > s.maxRequestBody {
		// With request streaming on, fasthttp leaves a long body to the
		// handler rather than refusing it: answer 413 now, unread.
		s.refusedHeads.Store(h, refusal{fasthttp.StatusRequestEntityTooLarge, httpsafe.ReasonBodyTooLarge})
		return fasthttp.RequestConfig{ReadTimeout: time.Nanosecond}
	}
	if st, why := httpsafe.CheckHeader(h, &s.table.Load().safe); st != 0 {
		// fasthttp resets parts of the head when the body read fails, so
		// the verdict is kept aside for handleParseError; refuse removes it.
		s.refusedHeads.Store(h, refusal{st, why})
		return fasthttp.RequestConfig{ReadTimeout: time.Nanosecond}
	}
	return fasthttp.RequestConfig{}
}

// refusal is a verdict headerReceived reached before the body was read.
type refusal struct {
	status int
	reason string
}

// expect decides on "Expect: 100-continue" before fasthttp sends the 100: a
// body that is too large by its Content-Length, a head headerReceived
// refused (both Content-Length and Transfer-Encoding, a folded line), or
// one check would refuse (a bad Host, an encoded slash in the path) gets its
// answer at once, so the client never sends the body, as RFC 9110 §10.1.1
// asks. Everything else (the route, the limits) is decided once the body
// has arrived.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	rq := s.acquire(ctx)
	defer s.release(rq)
	status, reason := 0, ""
	if v, ok := s.refusedHeads.Load(&ctx.Request.Header); ok {
		r := v.(refusal)
		status, reason = r.status, r.reason
	} else if cl := ctx.Request.Header.ContentLength(); cl > s.maxRequestBody {
		status, reason = fasthttp.StatusRequestEntityTooLarge, httpsafe.ReasonBodyTooLarge
	} else {
		status, reason = s.checkHead(rq)
	}
	if status == 0 {
		return fasthttp.StatusContinue
	}
	defer s.finish(rq)
	s.assignRequestID(rq)
	s.refuse(rq, status, reason)
	return status
}

// allowButConnect is the Allow of a refused CONNECT: the methods of RFC
// 9110 §9 other than CONNECT, all of which the gateway forwards (a route
// may also take extension methods; no route is looked up for CONNECT).
const allowButConnect = "GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH"

// refuse answers a request that must not reach a backend and closes the
// connection: after a framing error the rest of the stream cannot be trusted.
func (s *Server) refuse(rq *request, status int, reason string) {
	s.refusedHeads.Delete(&rq.ctx.Request.Header)
	if status == fasthttp.StatusMethodNotAllowed {
		// CONNECT, the one method refused before routing: a 405 must
		// say what the resource does allow (RFC 9110 §15.5.6), and with
		// no route looked up for an authority-form target that is the
		// standard methods.
		rq.ctx.Response.Header.Set("Allow", allowButConnect)
	}
	s.writeError(rq, status, reason)
	rq.ctx.SetConnectionClose()
	if c := clientConn(rq.ctx); c != nil {
		c.linger.Store(true) // what the client sent after may be unread
	}
}

// finish runs last for every request, handled or refused: it turns a panic
// into a 500, counts the request and writes its access-log line (for a
// streamed response, the stream does that once it ends: stream.go). It must be
// deferred directly so that its recover sees the panic.
func (s *Server) finish(rq *request) {
	ctx := rq.ctx
	if p := recover(); p != nil {
		s.log.Error("panic while handling request", "panic", p, "uri", string(ctx.Request.Header.RequestURI()))
		rq.stream = nil // the reset below ends it; this request is finished here
		ctx.Response.Reset()
		s.writeError(rq, fasthttp.StatusInternalServerError, "internal error")
		ctx.SetConnectionClose()
	}
	if rq.stream != nil {
		return // the stream finishes the request when it ends
	}
	s.releaseHeld(rq, nil) // a stream the request did not send on (a retry, an error)
	s.finishRequest(rq)
}

// finishRequest counts a request and writes its access-log line.
func (s *Server) finishRequest(rq *request) {
	ctx := rq.ctx
	if rq.admitted {
		s.active.Add(-1)
	}
	rm := &s.metrics.unmatched
	if rq.route != nil {
		rm = &rq.route.m
		rm.inFlight.Dec()
	}
	rm.count(ctx.Response.StatusCode())
	elapsed := time.Since(rq.start)
	rm.duration.Observe(elapsed.Seconds())
	if s.access != nil {
		s.access.log(rq, elapsed)
	}
}
