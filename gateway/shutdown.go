package gateway

import (
	"context"
	"time"

	"github.com/valyala/fasthttp"
)

// A graceful shutdown for rolling deploys, in the order Terminate runs it:
//
//  1. BeginShutdown: /readyz fails at once, so that load balancers stop
//     sending, and every response carries Connection: close, so that
//     keep-alive clients move to another instance one request at a time.
//     Serving goes on for server.shutdown_delay.
//  2. Shutdown: the listener closes. A connection that sends its next request
//     gets it answered (with Connection: close) and is closed after it.
//  3. The idle connections left are closed once they have gone quiet (see
//     moveOff), busy ones finish their request; all before the deadline.
//
// Closing an idle keep-alive connection at once is what fails requests: a
// client may be writing its next request on it while the server closes it
// (RFC 9112 §9.6), and the request dies with a reset or an EOF. nginx closes
// idle keep-alive connections at once when a worker shuts down; HAProxy
// spreads the closes over close-spread-time; Envoy answers with
// Connection: close through its drain time and closes what is left at its
// end. Sluice answers with Connection: close through the delay, then gives
// the connections still in use the moment they need to send once more.

// Idle connections are closed when none has moved off for drainQuiet, or
// after drainIdleMax, whichever comes first. An active client sends within
// its gap between requests; at 3,000 req/s over 600 connections that is
// 200ms, and all of them move off within the first few hundred ms, one close
// after another, never quiet for 100ms. A connection still open once closes
// have stopped for drainQuiet belongs to a client that is not sending: the
// race is then unlikely, and waiting longer only delays the exit.
const (
	drainQuiet   = 100 * time.Millisecond
	drainIdleMax = time.Second
)

// BeginShutdown starts a graceful shutdown without stopping anything:
// /readyz answers 503 from now on and every response carries
// Connection: close, while the gateway goes on accepting and serving. Call
// Shutdown after server.shutdown_delay (Terminate does both). Calling it
// again does nothing.
func (s *Server) BeginShutdown() {
	if s.closing.CompareAndSwap(false, true) {
		s.log.Info("shutting down: not ready, responses carry Connection: close")
	}
}

// Terminate is what SIGTERM does: BeginShutdown, serving on for
// server.shutdown_delay (cut short when skipDelay is closed, which a second
// signal does), then Shutdown. It returns within server.drain_timeout,
// counted from the call, which the delay is part of.
func (s *Server) Terminate(skipDelay <-chan struct{}) error {
	s.mu.Lock()
	delay, drain := s.cfg.Server.ShutdownDelay, s.cfg.Server.DrainTimeout
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	s.BeginShutdown()
	if delay > 0 {
		s.log.Info("serving on before draining", "shutdown_delay", delay.String(), "drain_timeout", drain.String())
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-skipDelay:
			t.Stop()
			s.log.Info("shutdown delay cut short")
		}
	}
	return s.Shutdown(ctx)
}

// serveFront is the front listener's handler: the request pipeline, then
// Connection: close on every response once the shutdown has begun.
func (s *Server) serveFront(ctx *fasthttp.RequestCtx) {
	s.handle(ctx)
	// A 101 keeps its Connection: Upgrade; the tunnel ends with the drain.
	if s.closing.Load() && !ctx.Hijacked() {
		ctx.SetConnectionClose()
	}
	if holdResponse(ctx) {
		// fasthttp keeps a response in its writer while another request
		// is buffered behind it, and reads that request's body before it
		// flushes: a client that sends the rest of that body only once it
		// has this answer would wait read_timeout for it. A write
		// deadline set by the handler makes fasthttp flush.
		_ = s.freshWriteDeadline(ctx)
	}
}

// countConn keeps s.conns, the number of open front connections, from
// fasthttp's connection states: once per connection, not per request.
func (s *Server) countConn(state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		s.conns.Add(1)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.conns.Add(-1)
	}
}

// moveOff waits, after the listener has closed and while every response
// carries Connection: close, for the clients still using their connections
// to send once more and be answered, so that the idle connections left for
// fasthttp to close are ones no request is about to arrive on. It returns
// when every connection is gone, when none has closed for s.drainQuiet, after
// s.drainIdleMax, or when ctx is done.
func (s *Server) moveOff(ctx context.Context) {
	tick := time.NewTicker(max(s.drainQuiet/10, time.Millisecond))
	defer tick.Stop()
	start := time.Now()
	lastClose, open := start, s.conns.Load()
	for open > 0 {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if n := s.conns.Load(); n < open {
				lastClose, open = now, n
			}
			if now.Sub(lastClose) >= s.drainQuiet || now.Sub(start) >= s.drainIdleMax {
				return
			}
		}
	}
}
