package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha1" //nolint:gosec // RFC 6455 §4.2.2 fixes SHA-1 for Sec-WebSocket-Accept
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// Why a handshake did not become a tunnel.
var (
	errBadUpgrade  = errors.New("backend switched protocols without a valid handshake")
	errHandshakeIO = errors.New("upgrade handshake with backend failed")
)

// handshakeBufSize is the read buffer for the backend's answer to a
// handshake: its head must fit, as for ordinary responses (balancer's
// readBufferSize). It is dropped once the tunnel starts.
const handshakeBufSize = 16<<10 + 1<<10

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
		return nil, nil, fmt.Errorf("backend %s: %w: %w", b.Addr(), errHandshakeIO, err)
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
	// It stops after the head of a 101 and skips other 1xx; a backend
	// that declines gets its answer checked as on any other exchange.
	if err := balancer.ReadResponse(resp, br, int(rq.pool.pool.Options().MaxResponseBody)); err != nil {
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
