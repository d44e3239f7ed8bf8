package balancer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Errors a caller decides on. Every error from Backend.Do wraps exactly one
// of them or is a bad response:
//
//   - ErrConnect: the TCP connect failed, nothing was sent; the request may
//     be retried on another backend whatever its method.
//   - ErrTimeout: the deadline passed (waiting for a connection, connecting,
//     writing or reading); answer 504.
//   - anything else: the backend sent no usable response (closed early,
//     malformed, body too large); answer 502.
var (
	ErrConnect = errors.New("connect to backend failed")
	ErrTimeout = errors.New("backend timed out")
)

// Backend is one server of a pool: its address and weight, its health and
// load as the balancer sees them, counters, and its own connection pool.
// All methods are safe for concurrent use.
type Backend struct {
	// Read-mostly fields first, the counters every request writes after
	// padding, so that writes do not invalidate the cache line Pick reads.
	addr           string
	hc             *fasthttp.HostClient
	settings       clientSettings
	weight         atomic.Int64
	down           atomic.Uint32 // downCheck | downEjected | downDraining; 0 means it may be picked
	connectTimeout atomic.Int64  // time.Duration, read at each dial
	// recoveredAt is when the down bits last went back to 0, in Unix
	// nanoseconds; 0 if they never did (a backend starts up, it does not
	// recover) or once a slow start has run its course (see rampFactor).
	recoveredAt atomic.Int64
	maxInFlight atomic.Int64 // circuit_breaker.max_requests_per_backend; 0: no cap

	_ [64]byte

	inFlight      atomic.Int64  // places reserved by Pool.Acquire, given back by Release
	samples       atomic.Int32  // latency samples so far, counted up to warmSamples
	pickedAt      atomic.Uint64 // p2c_ewma's pick count when it last chose this backend
	requests      atomic.Uint64
	connectErrors atomic.Uint64
	timeoutErrors atomic.Uint64
	otherErrors   atomic.Uint64
	failStreak    atomic.Int64 // exchanges in a row that failed (see Observe)
	ewmaMicros    atomic.Int64 // decaying average of exchange latency, µs

	transport transport

	ej ejection // passive outlier detection's record (outlier.go)
	// pipe carries pipelinable requests when upstream.pipeline is on; nil
	// otherwise.
	pipe *pipeline
}

// Why a backend is out of the pool. Each source of health owns its own bit,
// so one never overwrites another's verdict: the active checker's probes
// passing do not bring back a backend that passive outlier detection ejected,
// and the end of an ejection does not bring back one whose probes fail.
const (
	downCheck    uint32 = 1 << iota // the active health check failed
	downEjected                     // passive outlier detection ejected it
	downDraining                    // an operator is taking it out: no new requests
)

// BackendStats is a snapshot of a backend's state and counters, for the
// admin API and a Prometheus collector. Counters only grow.
type BackendStats struct {
	Addr    string
	Weight  int
	Healthy bool
	// Ejected is true while passive outlier detection keeps the backend
	// out, whatever the active checks say.
	Ejected bool
	// Ejections counts the times passive outlier detection ejected the
	// backend; EjectionPeriod is the length of the current ejection, 0
	// while the backend is in.
	Ejections      uint64
	EjectionPeriod time.Duration
	// InFlight is the number of requests holding a place on the backend
	// (Pool.Acquire to Release); MaxInFlight is its cap, 0 for none.
	InFlight    int64
	MaxInFlight int64
	// Draining is true while the backend takes no new requests because an
	// operator is taking it out (admin API); in-flight ones finish.
	Draining bool
	// OpenConns is the number of upstream connections, busy or idle.
	OpenConns int

	Requests      uint64
	ConnectErrors uint64
	TimeoutErrors uint64
	OtherErrors   uint64
	// FailStreak is the number of exchanges in a row that failed.
	FailStreak int64
	// LatencyEWMA is the decaying average of exchange latency.
	LatencyEWMA time.Duration
	// StrayBytes counts connections closed because the backend sent bytes
	// that no request asked for (a response too many, or garbage). Any value
	// above zero points at a misbehaving backend.
	StrayBytes uint64

	// Pipelining is true while upstream.pipeline is on for the backend and
	// has not been turned off (see Backend.PipelineOff).
	Pipelining bool
	// Pipelined counts requests answered over a pipelined connection;
	// PipelineReplays those sent again on an ordinary connection because
	// their pipelined connection ended before their response began.
	Pipelined       uint64
	PipelineReplays uint64
}

// NewBackend returns a healthy backend for addr. o must be defaulted and
// valid; weight below 1 is taken as 1.
func NewBackend(addr string, weight int, o Options) *Backend {
	b := &Backend{addr: addr, settings: settingsOf(o)}
	b.setWeight(weight)
	b.connectTimeout.Store(int64(o.ConnectTimeout))
	b.maxInFlight.Store(int64(o.CircuitBreaker.MaxRequestsPerBackend))
	b.transport.bufferResponse, b.transport.streamTimeout = b.settings.bufferResponse, b.settings.streamTimeout
	b.hc = newHostClient(addr, b.settings, o.MaxConnsPerBackend, &b.connectTimeout, &b.transport)
	if o.Upstream.Pipeline.Enabled() {
		b.pipe = newPipeline(addr, o, b.hc, &b.transport, &b.connectTimeout)
	}
	return b
}

// update applies a reload's options to a reused backend: those that can
// change while requests run (weight, connect timeout, connection limit,
// in-flight cap).
func (b *Backend) update(weight int, o Options) {
	b.setWeight(weight)
	b.connectTimeout.Store(int64(o.ConnectTimeout))
	b.maxInFlight.Store(int64(o.CircuitBreaker.MaxRequestsPerBackend))
	b.hc.SetMaxConns(o.MaxConnsPerBackend)
}

func (b *Backend) setWeight(w int) {
	if w < 1 {
		w = 1
	}
	b.weight.Store(int64(w))
}

// Addr returns the backend's host:port.
func (b *Backend) Addr() string { return b.addr }

// Weight returns the backend's weight, at least 1.
func (b *Backend) Weight() int { return int(b.weight.Load()) }

// Healthy reports whether the backend may be picked: its health checks pass
// (or it has none), it is not ejected and it is not draining.
func (b *Backend) Healthy() bool { return b.down.Load() == 0 }

// InFlight returns the number of requests holding a place on the backend:
// acquired from its pool (Pool.Acquire) and not yet released.
func (b *Backend) InFlight() int64 { return b.inFlight.Load() }

// SetHealthy records the active health check's verdict and reports whether
// that verdict changed. It leaves an ejection alone.
func (b *Backend) SetHealthy(healthy bool) (changed bool) {
	return b.setDown(downCheck, !healthy)
}

// PassesChecks reports the active health check's last verdict (true when
// the pool has no checks), whatever passive detection decided.
func (b *Backend) PassesChecks() bool { return b.down.Load()&downCheck == 0 }

// SetEjected takes the backend out of the pool (or lets it back) on behalf
// of passive outlier detection, and reports whether that changed anything.
// It leaves the active check's verdict alone.
func (b *Backend) SetEjected(ejected bool) (changed bool) {
	return b.setDown(downEjected, ejected)
}

// Ejected reports whether passive outlier detection holds the backend out.
func (b *Backend) Ejected() bool { return b.down.Load()&downEjected != 0 }

// SetDraining stops (or resumes) sending new requests to the backend while
// the requests it has finish, and reports whether that changed anything. It
// is the operator's bit: health checks and outlier detection leave it alone,
// and a reload that reuses the backend keeps it.
func (b *Backend) SetDraining(draining bool) (changed bool) {
	return b.setDown(downDraining, draining)
}

// Draining reports whether the backend is being drained.
func (b *Backend) Draining() bool { return b.down.Load()&downDraining != 0 }

func (b *Backend) setDown(bit uint32, down bool) (changed bool) {
	for {
		old := b.down.Load()
		next := old &^ bit
		if down {
			next |= bit
		}
		if next == old {
			return false
		}
		if b.down.CompareAndSwap(old, next) {
			if next == 0 {
				b.recoveredAt.Store(time.Now().UnixNano())
			}
			return true
		}
	}
}

// Outcome is what one exchange with a backend came to, as the caller judges
// it after Do returned.
type Outcome struct {
	// Status is the response's status code; 0 when Err is set.
	Status int
	// Err is Do's error, or nil.
	Err error
	// Latency is the time from sending the request to having the response.
	Latency time.Duration
}

// Failed reports whether the exchange counts against the backend: no usable
// response, or a 5xx.
func (o Outcome) Failed() bool { return o.Err != nil || o.Status >= 500 }

// ewmaShift sets the weight of one sample in the latency average: 1/8, so
// the average follows a change within a few dozen requests and one slow
// request moves it by an eighth of the difference.
const ewmaShift = 3

// Observe tells the backend how an exchange went: it updates the run of
// failures and the latency average that passive health and latency-aware
// policies read. It allocates nothing and takes no lock. Pool.Release calls
// it; call it directly only for an exchange the pool did not place.
func (b *Backend) Observe(o Outcome) { b.observe(o) }

// observe is Observe, returning the run of failures this outcome made (0
// after a success): each count is returned to exactly one caller, so
// outlier detection sees the threshold crossed once however many requests
// fail together.
func (b *Backend) observe(o Outcome) (streak int64) {
	if o.Failed() {
		streak = b.failStreak.Add(1)
	} else if b.failStreak.Load() != 0 {
		b.failStreak.Store(0)
	}
	if o.Err != nil {
		return streak // a failure's latency says nothing about the backend's speed
	}
	sample := o.Latency.Microseconds()
	// The first samples are averaged plainly (sample n weighs 1/n) rather
	// than at the EWMA's fixed 1/8: the very first one includes the TCP
	// connect, and at 1/8 it would make a new backend look slow for dozens
	// of samples.
	n := int64(b.samples.Load())
	if n < warmSamples {
		n = int64(b.samples.Add(1))
	}
	for {
		old := b.ewmaMicros.Load()
		next := sample
		switch {
		case old == 0:
		case n < warmSamples:
			next = old + (sample-old)/n
		default:
			next = old + (sample-old)>>ewmaShift
		}
		if b.ewmaMicros.CompareAndSwap(old, next) {
			return streak
		}
	}
}

// warmSamples is how many latency samples a backend needs before its
// average is trusted (LatencyKnown): 1<<ewmaShift, the EWMA's own memory.
const warmSamples = 1 << ewmaShift

// LatencyKnown reports whether the latency average rests on enough samples
// to compare backends by; until then latency-aware policies weigh the
// backend by its load alone.
func (b *Backend) LatencyKnown() bool { return b.samples.Load() >= warmSamples }

// FailStreak returns the number of exchanges in a row that failed.
func (b *Backend) FailStreak() int64 { return b.failStreak.Load() }

// LatencyEWMA returns the decaying average latency of successful exchanges;
// 0 before the first.
func (b *Backend) LatencyEWMA() time.Duration {
	return time.Duration(b.ewmaMicros.Load()) * time.Microsecond
}

// Do sends req to the backend and reads the response into resp, giving up
// at deadline. It never sends a request twice, but for the one more try
// on a new connection of an idempotent request whose reused connection the
// backend closed before answering (RFC 9112 §9.3.1); a pooled connection
// found unfit before anything was sent on it is replaced for any request.
// req must carry the path and Host the backend should see. See ErrConnect
// and ErrTimeout for what an error means. Do counts the request but not its
// place in flight: that is Pool.Acquire's and Release's, which bracket the
// whole attempt.
//
// Without resp.StreamBody the whole body is read (up to max_response_body).
// With it, a body larger than the pool's buffer_response or of unknown
// length is left unread: resp.BodyStream() is then a *Stream, which holds
// the upstream connection until it is closed (fasthttp closes it when resp
// is written out or reset). Requests sent over a pipelined connection
// always have their whole body read: responses queue behind each other
// there, so none can be left half read. Do clears resp.StreamBody.
//
// resp is reset before the request is sent (not when the deadline has
// passed already); it never gets a default Content-Type (a proxied
// response says what its backend said).
func (b *Backend) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	_, err := b.DoAt(req, resp, time.Now(), deadline)
	return err
}

// DoAt is Do for a caller that has just read the clock: now is that
// reading, and the exchange reads none of its own. It must be taken just
// before, at the start of the attempt, with no wait in between: the time
// left is counted from it, so a pipelined request's timer, say, would fire
// late by the age of now.
//
// The caller's goroutine lets the others run while the backend works: it
// waits for the response in the runtime's poller, or for a pipelined
// connection's reader, or (a request sent as it is written: a body stream,
// one too large to hold, a connection not dialled by the balancer) yields
// (runtime.Gosched) before it reads one. yielded reports the last (the
// gateway's client connection then does not yield again before it reads
// the next request; gateway/conn.go); it is false for a request that
// failed before it went out.
//
// It does what fasthttp's HostClient.Do would do around the transport
// (reset resp, one more try for errStaleConn, another connection for an
// unfit one) without the six clock reads HostClient.Do and the transport
// made between them to turn the deadline into a timeout and back: each a
// vDSO call, together 1.5-2% of a proxied request's CPU time in a profile.
func (b *Backend) DoAt(req *fasthttp.Request, resp *fasthttp.Response, now, deadline time.Time) (yielded bool, err error) {
	return b.DoAtWith(req, resp, now, deadline, nil)
}

// Interim receives the head of each interim (1xx) response a backend sends
// before its final one, other than 100 (Continue: the gateway's own
// business) and 101 (the final answer to an upgrade), for a proxy to
// forward (RFC 9110 §15.2). h is the response's header, valid only during
// the call, which may change it (remove hop-by-hop fields).
type Interim func(h *fasthttp.ResponseHeader)

// DoAtWith is DoAt that hands interim responses to interim (nil: they are
// skipped), on the caller's goroutine. A request that goes out pipelined
// has its skipped: its connection's reader reads them on another.
func (b *Backend) DoAtWith(req *fasthttp.Request, resp *fasthttp.Response, now, deadline time.Time, interim Interim) (yielded bool, err error) {
	b.requests.Add(1)
	if !now.Before(deadline) {
		return false, b.classify(fasthttp.ErrTimeout)
	}
	prepareExchange(req, resp)
	if b.pipe != nil && b.pipe.eligible(req) { // upstream.pipeline: see pipeline.go
		yielded, err = b.pipe.do(req, resp, now, deadline, interim)
	} else {
		yielded, err = b.transport.do(b.hc, req, resp, now, deadline, interim)
	}
	if err == io.EOF { //nolint:errorlint // fasthttp's own sentinel, returned as is
		err = fasthttp.ErrConnectionClosed // closed before the first response byte
	}
	if err != nil {
		return yielded, b.classify(err)
	}
	return yielded, nil
}

// prepareExchange readies resp for a response, as HostClient.Do does: reset,
// keeping the caller's SkipBody and StreamBody, and with no default
// Content-Type. req's path goes out as it is (DisablePathNormalizing).
func prepareExchange(req *fasthttp.Request, resp *fasthttp.Response) {
	skipBody, streamBody := resp.SkipBody, resp.StreamBody
	resp.Reset()
	resp.SkipBody, resp.StreamBody = skipBody, streamBody
	resp.Header.SetNoDefaultContentType(true)
	req.URI().DisablePathNormalizing = true
}

// classify counts err and wraps it so that errors.Is finds its kind.
func (b *Backend) classify(err error) error {
	switch {
	case errors.Is(err, ErrConnect):
		b.connectErrors.Add(1)
		return fmt.Errorf("backend %s: %w", b.addr, err)
	case errors.Is(err, ErrTimeout):
		b.timeoutErrors.Add(1)
		return fmt.Errorf("backend %s: %w", b.addr, err)
	case isTimeout(err):
		b.timeoutErrors.Add(1)
		return fmt.Errorf("backend %s: %w: %w", b.addr, ErrTimeout, err)
	default:
		b.otherErrors.Add(1)
		return fmt.Errorf("backend %s: %w", b.addr, err)
	}
}

// isTimeout reports the ways fasthttp and the network say "out of time".
// ErrNoFreeConns means every connection stayed busy for the whole
// MaxConnWaitTimeout, which is the pool's Timeout: the request ran out of
// time waiting.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Stats returns a snapshot of the backend's state and counters.
func (b *Backend) Stats() BackendStats {
	st := BackendStats{
		Addr:           b.addr,
		Weight:         b.Weight(),
		Healthy:        b.Healthy(),
		Ejected:        b.Ejected(),
		Draining:       b.Draining(),
		Ejections:      b.ej.seq.Load(),
		EjectionPeriod: time.Duration(b.ej.period.Load()),
		InFlight:       b.InFlight(),
		MaxInFlight:    b.maxInFlight.Load(),
		OpenConns:      b.hc.ConnsCount(),
		Requests:       b.requests.Load(),
		ConnectErrors:  b.connectErrors.Load(),
		TimeoutErrors:  b.timeoutErrors.Load(),
		OtherErrors:    b.otherErrors.Load(),
		FailStreak:     b.FailStreak(),
		LatencyEWMA:    b.LatencyEWMA(),
		StrayBytes:     b.transport.strayBytes.Load(),
	}
	if b.pipe != nil {
		st.OpenConns += b.pipe.openConns()
		st.Pipelining = b.Pipelining()
		st.Pipelined = b.pipe.pipelined.Load()
		st.PipelineReplays = b.pipe.replayed.Load()
	}
	return st
}

// Pipelining reports whether b's pipelinable requests go over pipelined
// connections: upstream.pipeline is on and has not been turned off.
func (b *Backend) Pipelining() bool { return b.pipe != nil && b.pipe.off() == nil }

// PipelineOff returns why pipelining to the backend was turned off (it
// closed pipelined connections with requests unanswered, or answered out of
// framing), or nil while it is on or was never configured.
func (b *Backend) PipelineOff() error {
	if b.pipe == nil {
		return nil
	}
	return b.pipe.off()
}

// OnPipelineOff sets fn to be called once, from the connection's own
// goroutine, when pipelining to the backend is turned off: the gateway logs
// it. fn must not block. A backend turned off before fn was set does not
// call it; read PipelineOff.
func (b *Backend) OnPipelineOff(fn func(addr string, reason error)) {
	if b.pipe != nil {
		b.pipe.onOff.Store(&fn)
	}
}

// Close closes the backend's idle connections, and makes requests still in
// flight close theirs when they end instead of pooling them. Used when a
// reload removes the backend; Do still works afterwards (it dials), so a
// request that picked the backend just before the swap is not failed.
func (b *Backend) Close() {
	b.transport.closed.Store(true)
	b.hc.CloseIdleConnections()
	if b.pipe != nil {
		b.pipe.close()
	}
}
