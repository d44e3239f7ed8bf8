package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha1" //nolint:gosec // RFC 6455 §4.2.2 fixes SHA-1 for Sec-WebSocket-Accept
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
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

func newUpgradeRule(rc *config.Route, m tunnelMetrics) *upgradeRule {
	if len(rc.Upgrade) == 0 {
		return nil
	}
	tc := rc.Tunnel.WithDefaults()
	u := &upgradeRule{idle: tc.IdleTimeout, maxLife: tc.MaxDuration, m: m}
	for _, p := range rc.Upgrade {
		u.protocols = append(u.protocols, []byte(strings.ToLower(p)))
	}
	return u
}

// asked returns the route's protocol the request asks to switch to (the
// first the client lists that the route has), or nil when the request is
// not a handshake the route tunnels.
func (u *upgradeRule) asked(req *fasthttp.Request) []byte {
	h := &req.Header
	if !h.IsGet() || !h.ConnectionUpgrade() {
		return nil
	}
	if cl := h.ContentLength(); cl != 0 && cl != -2 {
		return nil // a handshake has no body: RFC 6455 §4.1
	}
	v := h.Peek(fasthttp.HeaderUpgrade)
	for len(v) > 0 {
		var tok []byte
		tok, v = nextListItem(v)
		for _, p := range u.protocols {
			if bytes.EqualFold(tok, p) {
				return p
			}
		}
	}
	return nil
}

// nextListItem splits the first item off a comma-separated field value.
func nextListItem(v []byte) (item, rest []byte) {
	i := bytes.IndexByte(v, ',')
	if i < 0 {
		return bytes.TrimSpace(v), nil
	}
	return bytes.TrimSpace(v[:i]), v[i+1:]
}

var (
	errBadUpgrade   = errors.New("backend switched protocols without a valid handshake")
	errNoUpstreamRW = errors.New("upgrade handshake with backend failed")
)

// handshakeBufSize is the read buffer for the backend's answer to a
// handshake: its head must fit, as for ordinary responses (balancer's
// readBufferSize). It is dropped once the tunnel starts.
const handshakeBufSize = 16<<10 + 1<<10

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
	rh := &ctx.Response.Header
	upgradeValue := bytes.Clone(rh.Peek(fasthttp.HeaderUpgrade))
	s.respond(rq) // hop-by-hop fields go, the two that make the switch come back
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

// handshake sends the rewritten request to a backend of the route's pool on
// a connection of its own and reads the answer's head into ctx.Response.
// For a 101 that passes checkSwitch it returns the connection and what the
// backend sent after the head; for an answer that does not switch, the
// whole response (body included), a nil connection and no error; a 101 that
// fails the checks is an error wrapping errBadUpgrade, which the pool counts
// against the backend. A failed connect is tried on another backend like an
// ordinary request's; nothing else is retried.
func (s *Server) handshake(rq *request, proto, key []byte) (net.Conn, []byte, error) {
	r, rp := rq.route, rq.pool
	start := time.Now()
	deadline := start.Add(r.timeout)
	rp.budget.Request(start)
	var (
		last    *balancer.Backend
		lastErr error
	)
	for try := 1; ; try++ {
		b, err := rp.pool.Acquire(rq.hashKey, last, deadline)
		if err != nil {
			if last != nil {
				return nil, nil, lastErr // no other backend: the failed connect stands
			}
			s.noBackend(rq, err)
			return nil, nil, err
		}
		rq.backend = b
		conn, pending, err := s.handshakeWith(rq, b, deadline, proto, key)
		rp.pool.Release(b, balancer.Outcome{Status: rq.ctx.Response.StatusCode(), Err: err, Latency: time.Since(start)})
		if err == nil {
			return conn, pending, nil
		}
		s.upstreamFailures.record(rp.pool.Name(), b.Addr(), errorKind(err), err)
		if !errors.Is(err, balancer.ErrConnect) || try >= r.retry.attempts || !rp.budget.TryRetry() {
			return nil, nil, err
		}
		r.m.retries.Inc()
		last, lastErr = b, err
	}
}

// handshakeWith is handshake on backend b.
func (s *Server) handshakeWith(rq *request, b *balancer.Backend, deadline time.Time, proto, key []byte) (net.Conn, []byte, error) {
	conn, err := b.Dial(deadline)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Conn, []byte, error) {
		conn.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, nil, fmt.Errorf("backend %s: %w: %w", b.Addr(), balancer.ErrTimeout, err)
		}
		return nil, nil, fmt.Errorf("backend %s: %w: %w", b.Addr(), errNoUpstreamRW, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return fail(err)
	}
	bw := bufio.NewWriterSize(conn, 4<<10)
	if err := rq.ctx.Request.Write(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(conn, handshakeBufSize)
	resp := &rq.ctx.Response
	// ReadLimitBody stops after the head of a 101 and skips other 1xx.
	if err := resp.ReadLimitBody(br, int(rq.pool.pool.Options().MaxResponseBody)); err != nil {
		return fail(err)
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		conn.Close()
		return nil, nil, nil
	}
	if err := checkSwitch(&resp.Header, proto, key); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("backend %s: %w", b.Addr(), err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return fail(err)
	}
	var pending []byte
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		pending = bytes.Clone(p) // the first bytes of the new protocol
	}
	return conn, pending, nil
}

// websocketGUID is the constant of RFC 6455 §1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// checkSwitch checks a backend's 101 against the request: it must switch to
// the protocol asked for, and for websocket answer the client's key (RFC
// 6455 §4.2.2 and §4.1, the client's checks, done here so that a backend
// that did not understand the handshake never gets a tunnel).
func checkSwitch(h *fasthttp.ResponseHeader, proto, key []byte) error {
	if !httpsafe.HasToken(h.Peek(fasthttp.HeaderUpgrade), proto) {
		return fmt.Errorf("%w: Upgrade %q, want %q", errBadUpgrade, h.Peek(fasthttp.HeaderUpgrade), proto)
	}
	if !hasConnectionUpgrade(h) {
		return fmt.Errorf("%w: Connection %q has no upgrade", errBadUpgrade, h.Peek(fasthttp.HeaderConnection))
	}
	if !bytes.Equal(proto, []byte("websocket")) {
		return nil
	}
	want := websocketAccept(key)
	if got := h.Peek("Sec-WebSocket-Accept"); !bytes.Equal(bytes.TrimSpace(got), want) {
		return fmt.Errorf("%w: Sec-WebSocket-Accept %q, want %q", errBadUpgrade, got, want)
	}
	return nil
}

// hasConnectionUpgrade reports whether some Connection field of h lists
// "upgrade".
func hasConnectionUpgrade(h *fasthttp.ResponseHeader) bool {
	for k, v := range h.All() {
		if httpsafe.EqualFold(k, "connection") && httpsafe.HasToken(v, []byte("upgrade")) {
			return true
		}
	}
	return false
}

// websocketAccept is the Sec-WebSocket-Accept that answers key.
func websocketAccept(key []byte) []byte {
	sum := sha1.Sum(append(bytes.TrimSpace(key), websocketGUID...)) //nolint:gosec // fixed by RFC 6455
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum[:])
	return out
}
