package gateway

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// forward rewrites the request once, sends it to a backend of the route's
// pool and copies the answer back. The request is modified in place and the
// backend's response is read straight into ctx.Response: nothing is copied.
//
// Retries: a request whose connection could not even be opened was never
// sent, so it is retried once on another backend whatever its method. Other
// failures are retried once only for idempotent methods, and never after a
// timeout (the deadline is spent; a retry would double the wait).
func (s *Server) forward(ctx *fasthttp.RequestCtx, t *Table, r *Route, sc *scratch, query []byte, ex *exchange) {
	s.rewriteRequest(ctx, t, r, sc, query)
	s.roundTrip(ctx, r, sc, ex)
}

// roundTrip sends the rewritten request to a backend of r's pool, retrying
// once where that is safe, and leaves the answer (or the gateway's error) in
// ctx.Response.
func (s *Server) roundTrip(ctx *fasthttp.RequestCtx, r *Route, sc *scratch, ex *exchange) {
	deadline := time.Now().Add(r.timeout)
	b := r.pool.Pick(nil)
	if b == nil {
		s.writeError(ctx, sc, fasthttp.StatusServiceUnavailable, "no healthy backend")
		return
	}
	ex.backend = b
	err := b.Do(&ctx.Request, &ctx.Response, deadline)
	if err != nil && retryable(err, &ctx.Request) {
		if next := r.pool.PickExcept(nil, b); next != nil {
			ex.backend = next
			err = next.Do(&ctx.Request, &ctx.Response, deadline)
		}
	}
	if err != nil {
		ctx.Response.Reset()
		switch {
		case errors.Is(err, balancer.ErrTimeout):
			ex.errKind = "timeout"
			s.writeError(ctx, sc, fasthttp.StatusGatewayTimeout, "upstream timeout")
		case errors.Is(err, balancer.ErrConnect):
			ex.errKind = "connect"
			s.writeError(ctx, sc, fasthttp.StatusBadGateway, "upstream connect failed")
		default:
			ex.errKind = "bad_response"
			s.writeError(ctx, sc, fasthttp.StatusBadGateway, "invalid upstream response")
		}
		s.log.Debug("upstream exchange failed", "route", r.name, "backend", ex.backend.Addr(), "error", err)
		return
	}
	if ctx.Response.StatusCode() < 200 {
		// 101 to a request whose Upgrade the gateway removed: the backend
		// switched protocols on its own. The gateway does not tunnel.
		ctx.Response.Reset()
		ex.errKind = "bad_response"
		s.writeError(ctx, sc, fasthttp.StatusBadGateway, "invalid upstream response")
		return
	}
	httpsafe.StripResponseHopByHop(&ctx.Response.Header)
	// One id, ours, whatever the backend sent. Response names are not
	// normalised upstream, so fasthttp's Del would miss "x-request-id".
	httpsafe.DelResponseField(&ctx.Response.Header, "x-request-id")
	ctx.Response.Header.SetBytesV(hdrRequestID, sc.id)
}

func retryable(err error, req *fasthttp.Request) bool {
	if errors.Is(err, balancer.ErrConnect) {
		return true
	}
	if errors.Is(err, balancer.ErrTimeout) {
		return false
	}
	return balancer.Idempotent(req)
}

const (
	hdrRequestID = "X-Request-ID"
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
func (s *Server) rewriteRequest(ctx *fasthttp.RequestCtx, t *Table, r *Route, sc *scratch, query []byte) {
	req := &ctx.Request
	h := &req.Header

	// Forwarded-for information is taken from the client only when the peer
	// is a trusted proxy; otherwise the client's values are replaced.
	peer := peerAddr(ctx.RemoteAddr())
	trusted := t.trustedPeer(peer)

	// For absolute-form requests the authority decides (RFC 9112 §3.2.2):
	// it is the Host sent upstream, and the host the client asked for.
	abs := absoluteAuthority(h.RequestURI())
	if abs != nil {
		h.SetHostBytes(abs)
	}
	// fasthttp's Set replaces only the first copy of a field, so every field
	// the gateway owns is deleted (all copies) before it is set: a client
	// that sends X-Forwarded-For twice must not get its second copy through.
	if !trusted || len(h.Peek(hdrXFHost)) == 0 {
		replaceHeader(h, hdrXFHost, h.Host())
	}
	httpsafe.StripRequestHopByHop(h)
	h.Del("Expect") // the body has been read already; a backend must not wait for us
	// Upstream is always HTTP/1.1. The client leg is unaffected: fasthttp
	// took the client's version and Connection: close before the handler
	// ran (TestClientConnectionSemanticsAreKept).
	if !h.IsHTTP11() {
		h.SetProtocol(protoHTTP11)
	}
	if !t.allowUnderscores {
		httpsafe.DropUnderscoreFields(h)
	}

	// Target: exactly the path the router matched, minus strip_prefix.
	path := sc.path
	if len(r.stripPrefix) > 0 && bytes.HasPrefix(path, r.stripPrefix) {
		path = path[len(r.stripPrefix):]
	}
	// A target must start with exactly one "/": "//host/x" would be read
	// upstream as an authority (fasthttp turns it into the Host header).
	for len(path) > 1 && path[0] == '/' && path[1] == '/' {
		path = path[1:]
	}
	sc.uri = sc.uri[:0]
	if len(path) == 0 || path[0] != '/' {
		sc.uri = append(sc.uri, '/')
	}
	sc.uri = append(sc.uri, path...)
	if len(query) > 0 {
		sc.uri = append(sc.uri, '?')
		sc.uri = append(sc.uri, query...)
	}
	req.SetRequestURIBytes(sc.uri)
	// Host is the one set above, never one fasthttp derives from the target.
	req.UseHostHeader = true
	// The upstream leg is plain HTTP whatever the client leg was; fasthttp
	// refuses to send a request parsed on a TLS listener to a plain backend
	// unless its scheme says so.
	if ctx.IsTLS() {
		req.URI().SetScheme(schemeHTTP)
	}

	// X-Forwarded-For: extend a trusted chain (every copy, in order), else
	// start anew.
	sc.fwd = sc.fwd[:0]
	if trusted {
		sc.fwd = appendJoined(sc.fwd, h, "x-forwarded-for")
		if len(sc.fwd) > 0 {
			sc.fwd = append(sc.fwd, ", "...)
		}
	}
	sc.fwd = peer.AppendTo(sc.fwd)
	replaceHeader(h, hdrXFF, sc.fwd)

	if !trusted || len(h.Peek(hdrXFProto)) == 0 {
		h.Del(hdrXFProto)
		if ctx.IsTLS() {
			h.Set(hdrXFProto, schemeHTTPS)
		} else {
			h.Set(hdrXFProto, schemeHTTP)
		}
	}
	sc.fwd = sc.fwd[:0]
	if trusted {
		sc.fwd = appendJoined(sc.fwd, h, "via")
		if len(sc.fwd) > 0 {
			sc.fwd = append(sc.fwd, ", "...)
		}
	} else {
		h.Del(hdrForwarded) // RFC 7239 header: same trust rule as X-Forwarded-*
	}
	sc.fwd = append(sc.fwd, viaThisHop...)
	replaceHeader(h, hdrVia, sc.fwd)
	replaceHeader(h, hdrRequestID, sc.id)
}

// replaceHeader sets name to value, removing every other copy of it.
func replaceHeader(h *fasthttp.RequestHeader, name string, value []byte) {
	h.Del(name)
	h.SetBytesV(name, value)
}

// appendJoined appends the values of every copy of the field lower (a
// lower-case name), joined by ", " as RFC 9110 §5.3 allows for list fields.
func appendJoined(dst []byte, h *fasthttp.RequestHeader, lower string) []byte {
	for k, v := range h.All() {
		if len(v) == 0 || !httpsafe.EqualFold(k, lower) {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
	}
	return dst
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

// peerAddr returns the IP of the connection's peer without allocating.
func peerAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
