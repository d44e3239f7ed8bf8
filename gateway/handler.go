package gateway

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// scratch holds the per-request buffers of the pipeline. It is pooled; no
// field may be used after the request that took it has been answered.
type scratch struct {
	host   []byte // routing host: lower case, no port
	path   []byte // normalised path the router matched
	uri    []byte // request-target sent upstream
	id     []byte // request id
	fwd    []byte // X-Forwarded-For / Via being built
	allow  []byte // Allow header for 405
	errBuf []byte
}

// exchange is what one request's handling learned, for metrics and the
// access log.
type exchange struct {
	route   *Route
	backend *balancer.Backend
	errKind string
}

// handle is the request pipeline (DESIGN.md "The request path"): refuse what
// is unsafe, route, forward, answer. It reads top to bottom; ServeHTTP-style
// wrappers are only used for what crosses every route (recover, access log).
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	var ex exchange
	t := s.table.Load()

	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic while handling request", "panic", p, "uri", string(ctx.Request.Header.RequestURI()))
			ctx.Response.Reset()
			s.writeError(ctx, sc, fasthttp.StatusInternalServerError, "internal error")
			ctx.SetConnectionClose()
		}
		s.finish(ctx, sc, &ex)
	}()

	s.assignRequestID(ctx, sc)

	// 1. Refuse what is unsafe before anything else.
	if status, reason := httpsafe.Check(&ctx.Request, &t.safe); status != 0 {
		s.refuse(ctx, sc, status, reason)
		return
	}
	host, status := httpsafe.AppendAuthority(sc.host[:0], &ctx.Request)
	sc.host = host
	if status != 0 {
		s.refuse(ctx, sc, status, "invalid host")
		return
	}
	rawPath, query := httpsafe.SplitRequestURI(ctx.Request.Header.RequestURI())
	path, status, reason := httpsafe.AppendPath(sc.path[:0], rawPath, &t.safe)
	sc.path = path
	if status != 0 {
		s.refuse(ctx, sc, status, reason)
		return
	}

	// 2. Route.
	idx, allow := t.matcher.MatchOrAllowed(sc.host, ctx.Method(), sc.path, &ctx.Request.Header, sc.allow[:0])
	sc.allow = allow
	if idx < 0 {
		if len(allow) > 0 {
			ctx.Response.Header.SetBytesV("Allow", allow)
			s.writeError(ctx, sc, fasthttp.StatusMethodNotAllowed, "method not allowed")
			return
		}
		s.writeError(ctx, sc, fasthttp.StatusNotFound, "no route")
		return
	}
	r := t.routes[idx]
	ex.route = r
	r.m.inFlight.Inc()
	defer r.m.inFlight.Dec()

	// 3. Forward.
	s.forward(ctx, t, r, sc, query, &ex)
}

// handleParseError answers a request that fasthttp could not parse (bad
// framing, oversized head or body) and counts and logs it like any other.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	s.assignRequestID(ctx, sc)
	httpsafe.ErrorHandler(ctx, err)
	ctx.Response.Header.SetBytesV(hdrRequestID, sc.id)
	s.finish(ctx, sc, &exchange{})
}

// refuse answers a request that must not reach a backend and closes the
// connection: after a framing error the rest of the stream cannot be trusted.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, sc *scratch, status int, reason string) {
	s.writeError(ctx, sc, status, reason)
	ctx.SetConnectionClose()
}

// finish counts the request and writes its access-log line.
func (s *Server) finish(ctx *fasthttp.RequestCtx, sc *scratch, ex *exchange) {
	status := ctx.Response.StatusCode()
	rm := &s.metrics.unmatched
	if ex.route != nil {
		rm = &ex.route.m
	}
	rm.count(status)
	elapsed := time.Since(ctx.Time())
	rm.duration.Observe(elapsed.Seconds())
	if s.access != nil {
		s.access.log(ctx, sc, ex, elapsed)
	}
}

func newScratch() any {
	return &scratch{
		host: make([]byte, 0, 64), path: make([]byte, 0, 256), uri: make([]byte, 0, 512),
		id: make([]byte, 0, 64), fwd: make([]byte, 0, 128), allow: make([]byte, 0, 64), errBuf: make([]byte, 0, 256),
	}
}
