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
	healthy        atomic.Bool
	connectTimeout atomic.Int64 // time.Duration, read at each dial

	_ [64]byte

	inFlight      atomic.Int64
	requests      atomic.Uint64
	connectErrors atomic.Uint64
	timeoutErrors atomic.Uint64
	otherErrors   atomic.Uint64

	transport transport
}

// BackendStats is a snapshot of a backend's state and counters, for the
// admin API and a Prometheus collector. Counters only grow.
type BackendStats struct {
	Addr     string
	Weight   int
	Healthy  bool
	InFlight int64
	// OpenConns is the number of upstream connections, busy or idle.
	OpenConns int

	Requests      uint64
	ConnectErrors uint64
	TimeoutErrors uint64
	OtherErrors   uint64
	// StrayBytes counts connections closed because the backend sent bytes
	// that no request asked for (a response too many, or garbage). Any value
	// above zero points at a misbehaving backend.
	StrayBytes uint64
}

// NewBackend returns a healthy backend for addr. o must be defaulted and
// valid; weight below 1 is taken as 1.
func NewBackend(addr string, weight int, o Options) *Backend {
	b := &Backend{addr: addr, settings: settingsOf(o)}
	b.setWeight(weight)
	b.healthy.Store(true)
	b.connectTimeout.Store(int64(o.ConnectTimeout))
	b.hc = newHostClient(addr, b.settings, o.MaxConnsPerBackend, &b.connectTimeout, &b.transport)
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

// Healthy reports whether the backend may be picked.
func (b *Backend) Healthy() bool { return b.healthy.Load() }

// InFlight returns the number of requests the backend is serving now.
func (b *Backend) InFlight() int64 { return b.inFlight.Load() }

// SetHealthy records the backend's health and reports whether it changed.
func (b *Backend) SetHealthy(healthy bool) (changed bool) {
	return b.healthy.Swap(healthy) != healthy
}

// Do sends req to the backend and reads the whole response into resp,
// giving up at deadline. It never retries. req must carry the path and Host
// the backend should see; resp.StreamBody is not supported and is cleared.
// See ErrConnect and ErrTimeout for what an error means.
func (b *Backend) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	b.inFlight.Add(1)
	b.requests.Add(1)
	err := b.hc.DoDeadline(req, resp, deadline)
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
	return BackendStats{
		Addr:          b.addr,
		Weight:        b.Weight(),
		Healthy:       b.Healthy(),
		InFlight:      b.InFlight(),
		OpenConns:     b.hc.ConnsCount(),
		Requests:      b.requests.Load(),
		ConnectErrors: b.connectErrors.Load(),
		TimeoutErrors: b.timeoutErrors.Load(),
		OtherErrors:   b.otherErrors.Load(),
		StrayBytes:    b.transport.strayBytes.Load(),
	}
}

// Close closes the backend's idle connections, and makes requests still in
// flight close theirs when they end instead of pooling them. Used when a
// reload removes the backend; Do still works afterwards (it dials), so a
// request that picked the backend just before the swap is not failed.
func (b *Backend) Close() {
	b.transport.closed.Store(true)
	b.hc.CloseIdleConnections()
}
