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
	// The client leg keeps its own connection semantics: whether the client
	// asked to close, and its HTTP version, are taken before the hop-by-hop
	// headers go and put back for the server once the exchange is over.
	clientClose := ctx.Request.Header.ConnectionClose()
	http10 := !ctx.Request.Header.IsHTTP11()

	s.rewriteRequest(ctx, t, r, sc, query)
	if http10 {
		ctx.Request.Header.SetProtocol(protoHTTP11)
	}
	s.exchange(ctx, r, sc, ex)
	if http10 {
		ctx.Request.Header.SetProtocol(protoHTTP10)
	}
	if clientClose {
		ctx.SetConnectionClose()
	}
}

// exchange sends the rewritten request to a backend of r's pool, retrying
// once where that is safe, and leaves the answer (or the gateway's error) in
// ctx.Response.
func (s *Server) exchange(ctx *fasthttp.RequestCtx, r *Route, sc *scratch, ex *exchange) {
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
	httpsafe.StripResponseHopByHop(&ctx.Response.Header)
	ctx.Response.Header.SetBytesV(hdrRequestID, sc.id)
}

func retryable(err error, req *fasthttp.Request) bool {
	if errors.Is(err, balancer.ErrConnect) {
		return true
	}
	if errors.Is(err, balancer.ErrTimeout) {
		return false
	}
	return idempotent(req.Header.Method())
}

func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
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
	protoHTTP10  = "HTTP/1.0"
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
	if !trusted || len(h.Peek(hdrXFHost)) == 0 {
		h.SetBytesV(hdrXFHost, h.Host())
	}
	httpsafe.StripRequestHopByHop(h)
	h.Del("Expect") // the body has been read already; a backend must not wait for us

	// Target: exactly the path the router matched, minus strip_prefix.
	path := sc.path
	if len(r.stripPrefix) > 0 && bytes.HasPrefix(path, r.stripPrefix) {
		path = path[len(r.stripPrefix):]
		if len(path) == 0 || path[0] != '/' {
			sc.uri = append(sc.uri[:0], '/')
			sc.uri = append(sc.uri, path...)
		} else {
			sc.uri = append(sc.uri[:0], path...)
		}
	} else {
		sc.uri = append(sc.uri[:0], path...)
	}
	if len(query) > 0 {
		sc.uri = append(sc.uri, '?')
		sc.uri = append(sc.uri, query...)
	}
	req.SetRequestURIBytes(sc.uri)
	// The upstream leg is plain HTTP whatever the client leg was; fasthttp
	// refuses to send a request parsed on a TLS listener to a plain backend
	// unless its scheme says so.
	if ctx.IsTLS() {
		req.URI().SetScheme(schemeHTTP)
	}

	// X-Forwarded-For: append the peer to a trusted chain, else start anew.
	sc.fwd = sc.fwd[:0]
	if trusted {
		if prev := h.Peek(hdrXFF); len(prev) > 0 {
			sc.fwd = append(sc.fwd, prev...)
			sc.fwd = append(sc.fwd, ", "...)
		}
	}
	sc.fwd = peer.AppendTo(sc.fwd)
	h.SetBytesV(hdrXFF, sc.fwd)

	if !trusted || len(h.Peek(hdrXFProto)) == 0 {
		if ctx.IsTLS() {
			h.Set(hdrXFProto, schemeHTTPS)
		} else {
			h.Set(hdrXFProto, schemeHTTP)
		}
	}
	if trusted {
		if prev := h.Peek(hdrVia); len(prev) > 0 {
			sc.fwd = append(sc.fwd[:0], prev...)
			sc.fwd = append(sc.fwd, ", "+viaThisHop...)
			h.SetBytesV(hdrVia, sc.fwd)
		} else {
			h.Set(hdrVia, viaThisHop)
		}
	} else {
		h.Set(hdrVia, viaThisHop)
		h.Del(hdrForwarded) // RFC 7239 header: same trust rule as X-Forwarded-*
	}
	h.SetBytesV(hdrRequestID, sc.id)
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
