package balancer

import (
	"errors"
	"fmt"
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
	down           atomic.Uint32 // downCheck | downEjected; 0 means it may be picked
	connectTimeout atomic.Int64  // time.Duration, read at each dial

	_ [64]byte

	inFlight      atomic.Int64
	requests      atomic.Uint64
	connectErrors atomic.Uint64
	timeoutErrors atomic.Uint64
	otherErrors   atomic.Uint64
	failStreak    atomic.Int64 // exchanges in a row that failed (see Observe)
	ewmaMicros    atomic.Int64 // decaying average of exchange latency, µs

	transport transport

	// pipe carries pipelinable requests when upstream.pipeline is on; nil
	// otherwise.
	pipe *pipeline
}

// Why a backend is out of the pool. Each source of health owns its own bit,
// so one never overwrites another's verdict: the active checker's probes
// passing do not bring back a backend that passive outlier detection ejected,
// and the end of an ejection does not bring back one whose probes fail.
const (
	downCheck   uint32 = 1 << iota // the active health check failed
	downEjected                    // passive outlier detection ejected it
)

// BackendStats is a snapshot of a backend's state and counters, for the
// admin API and a Prometheus collector. Counters only grow.
type BackendStats struct {
	Addr    string
	Weight  int
	Healthy bool
	// Ejected is true while passive outlier detection keeps the backend
	// out, whatever the active checks say.
	Ejected  bool
	InFlight int64
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
	b.hc = newHostClient(addr, b.settings, o.MaxConnsPerBackend, &b.connectTimeout, &b.transport)
	if o.Upstream.Pipeline.Enabled() {
		b.pipe = newPipeline(addr, o, b.hc, &b.transport, &b.connectTimeout)
	}
	return b
}

// update applies a reload's options to a reused backend: those that can
// change while requests run (weight, connect timeout, connection limit).
func (b *Backend) update(weight int, o Options) {
	b.setWeight(weight)
	b.connectTimeout.Store(int64(o.ConnectTimeout))
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
// (or it has none) and it is not ejected.
func (b *Backend) Healthy() bool { return b.down.Load() == 0 }

// InFlight returns the number of requests the backend is serving now.
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
// policies read. It allocates nothing and takes no lock.
func (b *Backend) Observe(o Outcome) {
	if o.Failed() {
		b.failStreak.Add(1)
	} else if b.failStreak.Load() != 0 {
		b.failStreak.Store(0)
	}
	if o.Err != nil {
		return // a failure's latency says nothing about the backend's speed
	}
	sample := o.Latency.Microseconds()
	for {
		old := b.ewmaMicros.Load()
		next := sample
		if old != 0 {
			next = old + (sample-old)>>ewmaShift
		}
		if b.ewmaMicros.CompareAndSwap(old, next) {
			return
		}
	}
}

// FailStreak returns the number of exchanges in a row that failed.
func (b *Backend) FailStreak() int64 { return b.failStreak.Load() }

// LatencyEWMA returns the decaying average latency of successful exchanges;
// 0 before the first.
func (b *Backend) LatencyEWMA() time.Duration {
	return time.Duration(b.ewmaMicros.Load()) * time.Microsecond
}

// Do sends req to the backend and reads the whole response into resp,
// giving up at deadline. It never retries. req must carry the path and Host
// the backend should see; resp.StreamBody is not supported and is cleared.
// See ErrConnect and ErrTimeout for what an error means.
func (b *Backend) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	b.inFlight.Add(1)
	b.requests.Add(1)
	hc := b.hc
	if b.pipe != nil && b.pipe.eligible(req) { // upstream.pipeline: see pipeline.go
		hc = b.pipe.hc
	}
	err := hc.DoDeadline(req, resp, deadline)
	b.inFlight.Add(-1)
	if err != nil {
		return b.classify(err)
	}
	return nil
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
		Addr:          b.addr,
		Weight:        b.Weight(),
		Healthy:       b.Healthy(),
		Ejected:       b.Ejected(),
		InFlight:      b.InFlight(),
		OpenConns:     b.hc.ConnsCount(),
		Requests:      b.requests.Load(),
		ConnectErrors: b.connectErrors.Load(),
		TimeoutErrors: b.timeoutErrors.Load(),
		OtherErrors:   b.otherErrors.Load(),
		FailStreak:    b.FailStreak(),
		LatencyEWMA:   b.LatencyEWMA(),
		StrayBytes:    b.transport.strayBytes.Load(),
	}
	if b.pipe != nil {
		st.OpenConns += b.pipe.openConns()
		st.Pipelining = b.pipe.off() == nil
		st.Pipelined = b.pipe.pipelined.Load()
		st.PipelineReplays = b.pipe.replayed.Load()
	}
	return st
}

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
