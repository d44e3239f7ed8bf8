package gateway

import (
	"bytes"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// Upgrade requests (RFC 9110 §7.8), WebSocket above all, on routes that opt
// in with upgrade: [protocols]:
//
//  1. A GET without a body whose Connection has "upgrade" and whose Upgrade
//     lists a protocol of the route asks to switch (upgradeRule.asked). Any
//     other request, and every request of a route without the opt-in, goes
//     the ordinary way, Connection and Upgrade removed as hop-by-hop.
//  2. The request is rewritten as usual, then Connection: Upgrade and
//     Upgrade: <that one protocol> are put back; other protocols the client
//     listed are not passed on.
//  3. A backend is acquired from the pool (breakers, in-flight counts and
//     outlier detection see the handshake) and a connection of its own is
//     opened (Backend.Dial): a tunnel never takes a pooled keep-alive one.
//  4. The backend's answer decides. Only a 101 whose Upgrade is the protocol
//     asked for (and, for websocket, whose Sec-WebSocket-Accept matches the
//     client's key) starts a tunnel (tunnel.go). Any other answer is passed
//     to the client as an ordinary response, a 101 that fails the checks
//     becomes a 502, and both connections close: a client that asked to
//     switch cannot be trusted to read the next response on it correctly.

// upgradeRule is a route's opt-in, compiled once per table.
type upgradeRule struct {
	protocols [][]byte // lower case, as configured
	idle      time.Duration
	maxLife   time.Duration // 0: no limit
	m         tunnelMetrics
}

// newUpgradeRule compiles the opt-in of rc, which lists protocols.
func newUpgradeRule(rc *config.Route, m tunnelMetrics) *upgradeRule {
	tc := rc.Tunnel.WithDefaults()
	u := &upgradeRule{idle: tc.IdleTimeout, maxLife: tc.MaxDuration, m: m}
	for _, p := range rc.Upgrade {
		u.protocols = append(u.protocols, []byte(strings.ToLower(p)))
	}
	return u
}

// asked returns the route's protocol the request asks to switch to (the
// first of the route's that the client's Upgrade lists), or nil when the
// request is not a handshake the route tunnels.
func (u *upgradeRule) asked(req *fasthttp.Request) []byte {
	h := &req.Header
	// RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored (a 1.0
	// intermediary may have passed it on without understanding it).
	if !h.IsGet() || !h.IsHTTP11() || !h.ConnectionUpgrade() {
		return nil
	}
	if cl := h.ContentLength(); cl != 0 && cl != -2 {
		return nil // a handshake has no body: RFC 6455 §4.1
	}
	v := h.Peek(fasthttp.HeaderUpgrade)
	for _, p := range u.protocols {
		if httpsafe.HasToken(v, p) {
			return p
		}
	}
	return nil
}

// upgrade answers a request that asks to switch to one of the route's
// protocols and reports whether it did; for any other request it does
// nothing and returns false.
func (s *Server) upgrade(rq *request) bool {
	u := rq.route.upgrade
	proto := u.asked(&rq.ctx.Request)
	if proto == nil {
		return false
	}
	ctx := rq.ctx
	// The key is read before the rewrite, which may move header values.
	key := bytes.Clone(ctx.Request.Header.Peek("Sec-WebSocket-Key"))
	s.rewriteRequest(rq)
	h := &ctx.Request.Header
	h.Set(fasthttp.HeaderConnection, "Upgrade")
	h.SetBytesV(fasthttp.HeaderUpgrade, proto)

	if s.draining.Load() {
		s.noSwitch(rq, u.m.upstreamError, fasthttp.StatusServiceUnavailable, "shutting down")
		return true
	}
	conn, pending, err := s.handshake(rq, proto, key)
	rh := &ctx.Response.Header
	var upgradeValue []byte
	if err == nil {
		// Before the strip, which removes it with the other hop-by-hop
		// fields; the 101 gets it back.
		upgradeValue = bytes.Clone(rh.Peek(fasthttp.HeaderUpgrade))
		if _, err = stripResponse(rh); err != nil && conn != nil {
			_ = conn.Close()
			conn = nil
		}
	}
	switch {
	case errors.Is(err, errBadUpgrade):
		rq.errKind = "bad_upgrade"
		s.noSwitch(rq, u.m.badHandshake, fasthttp.StatusBadGateway, "invalid upgrade response")
		return true
	case err != nil:
		u.m.upstreamError.Inc()
		s.answerUpstreamError(rq, err)
		ctx.SetConnectionClose()
		return true
	case conn == nil: // an ordinary answer: the backend did not switch
		u.m.refused.Inc()
		s.respond(rq)
		s.writeLimitHeaders(rq)
		ctx.SetConnectionClose()
		return true
	}
	t := newTunnel(s, rq, conn, pending)
	if !s.tunnels.add(t) { // the drain has closed every tunnel already
		t.close(resultShutdown)
		s.noSwitch(rq, u.m.upstreamError, fasthttp.StatusServiceUnavailable, "shutting down")
		return true
	}
	s.respond(rq) // hop-by-hop fields went above; the two that make the switch come back
	rh.Set(fasthttp.HeaderConnection, "Upgrade")
	rh.SetBytesV(fasthttp.HeaderUpgrade, upgradeValue)
	s.writeLimitHeaders(rq)
	// fasthttp writes the 101, then hands the connection over, with the
	// bytes the client sent after its handshake still readable from it.
	ctx.Hijack(t.run)
	return true
}

// noSwitch answers a handshake that gets no tunnel with the gateway's own
// error, counted under c, and closes the client's connection: a client that
// asked to switch cannot be trusted to read a next response on it.
func (s *Server) noSwitch(rq *request, c prometheus.Counter, status int, reason string) {
	c.Inc()
	rq.ctx.Response.Reset()
	s.writeError(rq, status, reason)
	rq.ctx.SetConnectionClose()
}
