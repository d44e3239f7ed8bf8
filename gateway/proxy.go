package gateway

import (
	"bytes"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// exchange sends the rewritten request to a backend of the request's pool
// and leaves the backend's answer in ctx.Response, untouched: what the
// response is worth (to a cache, say) can be judged before respond makes it
// the client's. The request is modified in place and the response is read
// straight into ctx.Response: nothing is copied.
//
// Retries follow the route's retries (retry.go): a retry goes to another
// backend than the attempt before, within the route's one deadline, only
// for the conditions the route lists, only when repeating the request is
// harmless, and only while the route's retry budget for the pool allows, so
// that retries cannot multiply an outage. When a retry is not possible the
// last attempt's answer (or error) stands. Every attempt's outcome is
// reported to its pool (passive health, latency average).
func (s *Server) exchange(rq *request) error {
	ctx, r, rp := rq.ctx, rq.route, rq.pool
	// No clock read for the deadline and, most often, the first attempt:
	// the request's start, read once in acquire (clock reads showed up at 4%
	// of the CPU in a profile). The route's timeout counts from then. An
	// attempt counts its deadline, timers and latency from its own start, so
	// the clock is read again where the request may have waited: after the
	// cache lookup (Redis), in the breaker's queue (AcquireAt), before a
	// retry.
	now := rq.start
	routeDeadline := now.Add(r.timeout)
	rp.budget.Request(now)
	if r.cache != nil {
		now = time.Now()
	}
	var (
		last *balancer.Backend
		err  error
		b    *balancer.Backend
		aerr error
	)
	for try := 1; ; try++ {
		b, now, aerr = rp.pool.AcquireAt(rq.hashKey, last, now, routeDeadline)
		if aerr != nil {
			if last != nil {
				break // no other backend to retry on: the last answer stands
			}
			s.noBackend(rq, aerr)
			return aerr
		}
		err = s.attempt(rq, b, now, r.retry.deadline(now, routeDeadline))
		cond := r.retry.condition(err, ctx.Response.StatusCode())
		if try >= r.retry.attempts || !r.retry.mayRetry(cond, &ctx.Request) {
			break
		}
		if now = time.Now(); !now.Before(routeDeadline) {
			break
		}
		if rq.reqBody != nil && cond != retryConnect {
			break // a streamed body has (partly) left and cannot be sent again
		}
		if !rp.budget.TryRetry() {
			r.m.retriesDenied.Inc()
			break
		}
		r.m.retries.Inc()
		s.releaseHeld(rq, nil) // the streamed answer being retried is dropped
		last = b
	}
	if err == nil && ctx.Response.StatusCode() < 200 {
		// 101 to a request whose Upgrade the gateway removed: the backend
		// switched protocols on its own. The gateway does not tunnel.
		err = errUnexpected1xx
	}
	return err
}

// forwardInterim passes a backend's interim response (103 Early Hints, 102
// Processing) on to the client at once, as RFC 9110 §15.2 asks of a proxy,
// cleaned as a final response is (stripResponse). Not to an HTTP/1.0
// client, which knows no 1xx, nor unless the request's head came in a read
// of its own (headFresh): with a request that came pipelined, the response
// before it may still wait in fasthttp's write buffer (fasthttp does not
// flush while the next request is buffered), and the interim one would
// overtake it. Under TLS the same holds of the plaintext (tlsConn). It is
// rq.interim.
func (rq *request) forwardInterim(h *fasthttp.ResponseHeader) {
	ctx := rq.ctx
	c := clientConn(ctx)
	if c == nil || rq.http10 || c.pipelined {
		return
	}
	if !c.headFresh {
		return
	}
	if _, err := stripResponse(h); err != nil {
		return // the final response decides; this one goes nowhere
	}
	speakHTTP11(h)
	rq.interimBuf = h.AppendBytes(rq.interimBuf[:0])
	// ctx.Conn: under TLS, the TLS connection. fasthttp sets the write
	// deadline only for the final response: until then the last one's is
	// in force, or none. write_timeout 0 is none.
	conn := ctx.Conn()
	if rq.srv.freshWriteDeadline(conn) != nil {
		return
	}
	if _, err := conn.Write(rq.interimBuf); err != nil {
		// Perhaps part of a head went out: nothing may follow it.
		ctx.SetConnectionClose()
		_ = conn.Close()
	}
}

// freshWriteDeadline puts write_timeout from now in force on conn before a
// write fasthttp sets no deadline for (an interim response, the answer to
// a request it could not read): the last response's, long past on a
// connection that was idle, would fail it. write_timeout 0 is none.
func (s *Server) freshWriteDeadline(conn interface{ SetWriteDeadline(time.Time) error }) error {
	var deadline time.Time
	if s.writeTimeout > 0 {
		deadline = time.Now().Add(s.writeTimeout)
	}
	return conn.SetWriteDeadline(deadline)
}

// noBackend records why no attempt could even start.
func (s *Server) noBackend(rq *request, err error) {
	rq.errKind = "no_backend"
	if errors.Is(err, balancer.ErrOverloaded) {
		rq.errKind = "overloaded"
	}
	s.upstreamFailures.record(rq.pool.pool.Name(), "", rq.errKind, err)
}

// attempt is one try on backend b, which Acquire reserved; it ends the
// reservation with the outcome.
func (s *Server) attempt(rq *request, b *balancer.Backend, start, deadline time.Time) error {
	rq.backend = b
	// A large or unknown-length body may stream (stream.go). HTTP/1.0
	// clients cannot take chunked framing: theirs is read whole.
	rq.ctx.Response.StreamBody = !rq.noStream
	// start is the attempt's clock reading (the request's start for the
	// first): the exchange counts from it and reads no clock of its own.
	yielded, err := b.DoAtWith(&rq.ctx.Request, &rq.ctx.Response, start, deadline, rq.interim)
	latency := time.Since(start)
	if err == nil { // a failed exchange may not have waited at all: the usual rule then
		upstreamWaited(rq.ctx, yielded)
	}
	if err == nil && rq.ctx.Response.StatusCode() >= 200 {
		// Hop-by-hop fields, a stray request id, odd names: removed here,
		// for the client and the cache alike. A response past the strip's
		// bounds is the backend's failure, like any malformed one (a 502,
		// counted against it, perhaps retried).
		rq.connNamed, err = stripResponse(&rq.ctx.Response.Header)
	}
	if err != nil && rq.reqBody != nil && rq.reqBody.err != nil {
		// The client's streamed body broke (a bad chunk, too large, too
		// slow) on its way up: the client's fault, answered with a 4xx by
		// answerUpstreamError, not the backend's (a few such uploads got
		// a healthy backend ejected).
		rq.pool.pool.Abandon(b)
		return err
	}
	o := balancer.Outcome{Status: rq.ctx.Response.StatusCode(), Err: err, Latency: latency}
	if err == nil && rq.ctx.Response.IsBodyStream() {
		// A streamed answer keeps its place on the backend until the body
		// has been carried (stream.go): least_conn and the circuit breaker
		// count long downloads and event streams, and a body that breaks
		// counts against the backend.
		rq.held, rq.heldOutcome = b, o
	} else {
		rq.pool.pool.Release(b, o)
	}
	if err != nil {
		s.upstreamFailures.record(rq.pool.pool.Name(), b.Addr(), errorKind(err), err)
	} else {
		rq.pool.latency.Observe(latency.Seconds())
	}
	return err
}

// releaseHeld gives back the place a streamed answer held on its backend,
// with the outcome of the exchange, or backendErr when the body broke on
// the backend's side. It does nothing when no place is held.
func (s *Server) releaseHeld(rq *request, backendErr error) {
	b := rq.held
	if b == nil {
		return
	}
	o := rq.heldOutcome
	if backendErr != nil {
		o = balancer.Outcome{Err: backendErr}
		s.upstreamFailures.record(rq.pool.pool.Name(), b.Addr(), "stream", backendErr)
	}
	rq.held, rq.heldOutcome = nil, balancer.Outcome{}
	rq.pool.pool.Release(b, o)
}

var errUnexpected1xx = errors.New("backend answered with 1xx to a request without Upgrade")

// answerUpstreamError replaces whatever the backend left in the response
// with the gateway's 502, 503 or 504.
func (s *Server) answerUpstreamError(rq *request, err error) {
	rq.ctx.Response.Reset()
	switch {
	case rq.reqBody != nil && rq.reqBody.tooLarge():
		// The client's chunked body grew past max_request_body on its way
		// upstream: the backend got a cut body, the client a 413 and a
		// closed connection (the rest of its body is never read).
		rq.errKind = "body_too_large"
		s.refuse(rq, fasthttp.StatusRequestEntityTooLarge, httpsafe.ReasonBodyTooLarge)
		return
	case rq.reqBody != nil && rq.reqBody.err != nil:
		// The client's streamed body broke on its way upstream (a bad
		// chunk: 400; too slow: 408), the client's fault, not the
		// backend's: the backend got a cut body, the client a 4xx and a
		// closed connection.
		rq.errKind = "client_body"
		status, reason := httpsafe.ErrorStatus(rq.reqBody.err)
		s.refuse(rq, status, reason)
		return
	case errors.Is(err, balancer.ErrNoBackend):
		s.writeError(rq, fasthttp.StatusServiceUnavailable, "no healthy backend")
		return
	case errors.Is(err, balancer.ErrOverloaded):
		// The pool's breakers are full and its queue too: tell the client
		// at once when to come back instead of holding it.
		rq.ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		s.writeError(rq, fasthttp.StatusServiceUnavailable, "upstream overloaded")
		return
	case errors.Is(err, balancer.ErrTimeout):
		rq.errKind = "timeout"
		s.writeError(rq, fasthttp.StatusGatewayTimeout, "upstream timeout")
	case errors.Is(err, balancer.ErrConnect):
		rq.errKind = "connect"
		s.writeError(rq, fasthttp.StatusBadGateway, "upstream connect failed")
	default:
		rq.errKind = "bad_response"
		s.writeError(rq, fasthttp.StatusBadGateway, "invalid upstream response")
	}
}

var protoHTTP11b = []byte(protoHTTP11)

// speakHTTP11 gives a backend's response the gateway's own version: it
// speaks HTTP/1.1 to the client whatever the backend spoke (RFC 9110 §2.5).
// An HTTP/1.0 status line over a body the gateway frames as chunked was read
// by clients as a close-delimited body, chunk sizes and all. A reason
// phrase with a control character (RFC 9112 §4 allows HTAB, SP, VCHAR and
// obs-text: an escape sequence for a terminal, a NUL) is replaced by the
// status code's own: it carries no meaning, and the gateway does not send
// what it would refuse in a field value.
func speakHTTP11(h *fasthttp.ResponseHeader) {
	if !h.IsHTTP11() {
		h.SetProtocol(protoHTTP11b)
	}
	for _, c := range h.StatusMessage() {
		if c < ' ' && c != '\t' || c == 0x7f {
			h.SetStatusMessage(nil)
			break
		}
	}
}

// errorKind names the kind of an upstream error for logs and metrics.
func errorKind(err error) string {
	switch {
	case errors.Is(err, balancer.ErrTimeout):
		return "timeout"
	case errors.Is(err, balancer.ErrConnect):
		return "connect"
	}
	return "bad_response"
}

// respond makes the backend's response the client's: hop-by-hop fields
// removed and the gateway's request id in place of any the backend sent.
func (s *Server) respond(rq *request) {
	h := &rq.ctx.Response.Header
	speakHTTP11(h)
	h.SetCanonical([]byte(hdrRequestID), rq.id) // SetBytesV, without normalising a canonical name
	if rq.route.cache != nil {
		// A cache-enabled route says so on every answer (RFC 9211): this
		// one went around the cache (method, Range or a precondition).
		h.Set(hdrCacheStatus, cacheName+"; fwd=bypass")
	}
}

const (
	// hdrRequestID is spelled as fasthttp normalises it, so the gateway's
	// own answers, proxied answers and upstream requests all carry the same
	// spelling.
	hdrRequestID = "X-Request-Id"
	hdrXFF       = "X-Forwarded-For"
	hdrXFProto   = "X-Forwarded-Proto"
	hdrXFHost    = "X-Forwarded-Host"
	hdrVia       = "Via"
	hdrForwarded = "Forwarded"
	viaThisHop   = "1.1 sluice"
	protoHTTP11  = "HTTP/1.1"
	schemeHTTP   = "http"
	schemeHTTPS  = "https"
)

// rewriteRequest turns the client's request into the upstream request:
// origin-form target with the path the router matched (after strip_prefix),
// Host from the routing authority, hop-by-hop headers removed, and the
// X-Forwarded-* / Via headers set by this hop.
func (s *Server) rewriteRequest(rq *request) {
	rq.rewritten = true
	ctx, t, r := rq.ctx, rq.table, rq.route
	req := &ctx.Request
	h := &req.Header
	// A body without a Content-Type goes on without one: its recipient may
	// assume a type (RFC 9110 §8.3), a proxy does not add one.
	h.SetNoDefaultContentType(true)

	// For absolute-form requests the authority decides (RFC 9112 §3.2.2):
	// it is the Host sent upstream, and the host the client asked for.
	abs := absoluteAuthority(h.RequestURI())
	if abs != nil {
		h.SetHostBytes(abs)
	}
	// Forwarded-for information is taken from the client only when the peer
	// is a trusted proxy; otherwise the client's values are replaced. Every
	// field the gateway owns is deleted (all copies) before it is set, after
	// the hop-by-hop strip: a client's Connection may name an owned field,
	// and what that removes is the client's copy, never the gateway's.
	f := scanRequestFields(h)
	if f.general() {
		httpsafe.StripRequestHopByHop(h)
	} else {
		h.ResetConnectionClose() // all StripRequestHopByHop has to do
	}
	// A request check found without X-Forwarded-Host has nothing to delete,
	// which saves a Peek and a Del (the strip cannot add one).
	if rq.absent&httpsafe.FieldXForwardedHost != 0 {
		h.SetCanonical([]byte(hdrXFHost), h.Host())
	} else if !rq.trusted || len(h.Peek(hdrXFHost)) == 0 {
		h.Del(hdrXFHost)
		h.SetCanonical([]byte(hdrXFHost), h.Host())
	}
	f.del(h, fieldExpect, hdrExpect) // the body has been read already; a backend must not wait for us
	// Upstream is always HTTP/1.1. The client leg is unaffected: fasthttp
	// took the client's version and Connection: close before the handler
	// ran (TestClientConnectionSemanticsAreKept).
	if !h.IsHTTP11() {
		h.SetProtocol(protoHTTP11)
		rq.noStream = true // an HTTP/1.0 client cannot take a chunked stream
		rq.http10 = true
	}
	if !t.allowUnderscores && f.has&fieldUnderscore != 0 {
		httpsafe.DropUnderscoreFields(h)
	}

	// Target: exactly the path the router matched, minus strip_prefix.
	path := rq.path
	if len(r.stripPrefix) > 0 && bytes.HasPrefix(path, r.stripPrefix) {
		path = path[len(r.stripPrefix):]
	}
	// A target must start with exactly one "/": "//host/x" would be read
	// upstream as an authority (fasthttp turns it into the Host header).
	for len(path) > 1 && path[0] == '/' && path[1] == '/' {
		path = path[1:]
	}
	rq.uri = rq.uri[:0]
	if len(path) == 0 || path[0] != '/' {
		rq.uri = append(rq.uri, '/')
	}
	rq.uri = append(rq.uri, path...)
	if len(rq.query) > 0 {
		rq.uri = append(rq.uri, '?')
		rq.uri = append(rq.uri, rq.query...)
	}
	// The client's target is kept when it is already the one to send (no
	// strip_prefix, a path that needed no normalising): setting it again
	// makes fasthttp parse it a second time for the upstream leg. Kept, the
	// server's parse is written as it was sent (path and query as received:
	// DisablePathNormalizing, which the HostClient sets anyway; the upgrade
	// handshake and the pipelined transport write the request themselves).
	// Not on a cache-enabled route, whose key may have parsed the query
	// arguments (Write would re-encode them), nor for a TLS client, whose
	// scheme is rewritten below on a fresh parse as before.
	if r.cache != nil || rq.tls || !bytes.Equal(rq.uri, h.RequestURI()) {
		req.SetRequestURIBytes(rq.uri)
	} else {
		req.URI().DisablePathNormalizing = true
	}
	// Host is the one set above, never one fasthttp derives from the target.
	req.UseHostHeader = true
	// The upstream leg is plain HTTP whatever the client leg was; fasthttp
	// refuses to send a request parsed on a TLS listener to a plain backend
	// unless its scheme says so.
	// That fresh parse must not normalise the path either: the upgrade
	// handshake and the pipelined transport write the request themselves,
	// and "/a%2Bb" would go upstream as "/a+b".
	if rq.tls {
		u := req.URI()
		u.SetScheme(schemeHTTP)
		u.DisablePathNormalizing = true
	}

	// X-Forwarded-For: extend a trusted chain (every copy, in order), else
	// start anew.
	rq.fwd = rq.fwd[:0]
	if rq.trusted && len(rq.chain) > 0 { // the chain identify read
		rq.fwd = append(append(rq.fwd, rq.chain...), ", "...)
	}
	rq.fwd = rq.peer.AppendTo(rq.fwd)
	f.replace(h, fieldXFFor, hdrXFF, rq.fwd)

	if !rq.trusted || !f.firstNotEmpty(h, fieldXFProto, hdrXFProto) {
		if rq.tls {
			f.replace(h, fieldXFProto, hdrXFProto, []byte(schemeHTTPS))
		} else {
			f.replace(h, fieldXFProto, hdrXFProto, []byte(schemeHTTP))
		}
	}
	rq.fwd = rq.fwd[:0]
	if rq.trusted {
		if f.has&fieldVia != 0 {
			rq.fwd, _ = appendFieldValues(rq.fwd, h, []byte("via"))
		}
		if len(rq.fwd) > 0 {
			rq.fwd = append(rq.fwd, ", "...)
		}
	} else {
		f.del(h, fieldForwarded, hdrForwarded) // RFC 7239 header: same trust rule as X-Forwarded-*
		f.delProxyOwned(h)
	}
	rq.fwd = append(rq.fwd, viaThisHop...)
	f.replace(h, fieldVia, hdrVia, rq.fwd)
	f.replace(h, fieldRequestID, hdrRequestID, rq.id)
}

// absoluteAuthority returns the authority of an absolute-form target, or nil.
func absoluteAuthority(uri []byte) []byte {
	if len(uri) == 0 || uri[0] == '/' {
		return nil
	}
	i := bytes.Index(uri, []byte("://"))
	if i < 0 {
		return nil
	}
	rest := uri[i+3:]
	if j := bytes.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
