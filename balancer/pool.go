package balancer

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrNoBackend is Pool.Acquire's answer when no backend (other than the one
// a retry avoids) is healthy: waiting would not help, the gateway answers
// 503 at once.
var ErrNoBackend = errors.New("no healthy backend")

// Pool is a named set of backends and the policy that chooses among them,
// with the circuit breaker that caps their load and the passive outlier
// detection that ejects failing ones. Its configuration is immutable once
// built (a reload builds a new one), so choosing a backend needs no lock;
// the backends' health and load change underneath, atomically.
type Pool struct {
	name     string
	opts     Options
	backends []*Backend
	policy   Policy
	// except rotates the fallback scan of PickExcept.
	except  atomic.Uint64
	br      breaker
	outlier *outlier
}

// NewPool builds the pool name from o, which must already be defaulted and
// valid. A backend whose address was in prev is reused: the same *Backend,
// so its connections, health and counters carry over a reload (its weight,
// connect timeout, connection limit and in-flight cap are updated in
// place). prev may be nil. Only when max_idle_conn_duration,
// max_response_body or upstream.pipeline changed, which fasthttp cannot
// change under running requests, is a new Backend built; it inherits the old one's health and
// ejection, so a reload does not send traffic to a backend known dead. The
// pool-wide in-flight count and the breaker's counters are prev's too.
// When prev had health checks and o has none every backend starts healthy,
// since nothing would ever bring one back.
func NewPool(name string, o Options, prev *Pool) (*Pool, error) {
	policy, err := NewPolicy(o)
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", name, err)
	}
	if len(o.Backends) == 0 {
		return nil, fmt.Errorf("pool %q: no backends", name)
	}
	var old map[string]*Backend
	if prev != nil {
		old = make(map[string]*Backend, len(prev.backends))
		for _, b := range prev.backends {
			old[b.addr] = b
		}
	}
	settings := settingsOf(o)
	p := &Pool{name: name, opts: o, policy: policy, backends: make([]*Backend, 0, len(o.Backends))}
	p.br.init(o.CircuitBreaker, prev)
	for _, bo := range o.Backends {
		b, ok := old[bo.Addr]
		switch {
		case ok && b.settings == settings:
			b.update(bo.Weight, o)
		case ok:
			old := b
			b = NewBackend(bo.Addr, bo.Weight, o)
			b.ej.copyFrom(&old.ej)
			b.down.Store(old.down.Load())
		default:
			b = NewBackend(bo.Addr, bo.Weight, o)
		}
		if checksTurnedOff(prev, o) {
			// Without checks nothing would ever bring back a backend the
			// previous configuration's checker took out.
			b.SetHealthy(true)
		}
		p.backends = append(p.backends, b)
	}
	// Ejections in progress keep prev's timers until Retire hands them
	// over: a pool built for a reload that then fails must not take them.
	p.outlier = newOutlier(o.Outlier, p.backends, p.serve)
	return p, nil
}

// OnEjection installs fn, told of every ejection (ejected true, with its
// period) and every return (false, 0) that passive outlier detection makes,
// for logs and metrics. fn runs on the request that tipped the backend over
// or on a timer's goroutine, with no lock held; it must be quick. Set it
// before the pool serves requests.
func (p *Pool) OnEjection(fn func(addr string, ejected bool, period time.Duration)) {
	p.outlier.setHook(fn)
}

// Acquire picks a backend other than not (nil: any) for a request with this
// hash key and reserves a place on it: in flight +1, on the backend and,
// when circuit_breaker.max_requests is set, on the pool. Every Acquire that
// returns a backend must be matched by one Release.
//
// It fails with ErrNoBackend when no backend (other than not) is healthy,
// and with ErrOverloaded when the caps leave no room and the request cannot
// wait for one (circuit_breaker.max_queue full) or waited in vain until
// queue_timeout or deadline, whichever comes first (a zero deadline: no
// deadline). Below the caps, with nobody waiting, it takes no lock and
// allocates nothing.
func (p *Pool) Acquire(key []byte, not *Backend, deadline time.Time) (*Backend, error) {
	b, _, err := p.AcquireAt(key, not, time.Time{}, deadline)
	return b, err
}

// AcquireAt is Acquire for a caller that carries a reading of the clock,
// now: it returns now when the place was free at once, and a fresh reading
// when the request waited in the queue for one.
func (p *Pool) AcquireAt(key []byte, not *Backend, now, deadline time.Time) (*Backend, time.Time, error) {
	if p.br.waiting.Load() == 0 { // nobody ahead: try the fast path
		b, err := p.reserve(key, not)
		if !full(err) {
			if err != nil && p.br.waiting.Load() != 0 {
				p.serve() // reserve may have held a place a waiter needed
			}
			return b, now, err
		}
	}
	b, err := p.wait(key, not, deadline)
	return b, time.Now(), err
}

// Release gives back the place Acquire reserved on b and reports how the
// exchange went: b.Observe (latency average, run of failures) and outlier
// detection, which may eject b. A request waiting for a place gets it.
func (p *Pool) Release(b *Backend, o Outcome) {
	p.outlier.observe(b, b.observe(o))
	p.unreserve(b)
	if p.br.waiting.Load() != 0 {
		p.serve()
	}
}

// Abandon ends b's reservation without an outcome, for an exchange that
// failed on the client's side (its streamed body broke or grew too large):
// that says nothing of the backend's health or speed.
func (p *Pool) Abandon(b *Backend) {
	p.unreserve(b)
	if p.br.waiting.Load() != 0 {
		p.serve()
	}
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Backends returns the pool's backends in configuration order. The slice is
// shared: do not modify it.
func (p *Pool) Backends() []*Backend { return p.backends }

// Options returns the options the pool was built from.
func (p *Pool) Options() Options { return p.opts }

// Pick chooses a backend for a request, or returns nil when none is healthy
// (the caller answers 503 at once).
func (p *Pool) Pick(key []byte) *Backend {
	return p.policy.Pick(p.backends, key)
}

// PickExcept chooses a backend other than not, for a retry; nil when there
// is none. It asks the policy twice (a round robin moves on by itself), then
// takes the least loaded healthy backend other than not, ties in turn.
func (p *Pool) PickExcept(key []byte, not *Backend) *Backend {
	for range 2 {
		b := p.policy.Pick(p.backends, key)
		if b == nil {
			return nil
		}
		if b != not {
			return b
		}
	}
	return leastLoaded(p.backends, (p.except.Add(1)-1)%uint64(len(p.backends)), not)
}

// Retire closes the backends of p that next does not reuse, and hands the
// ejections in progress over to next, whose timers end them. Call it after
// next has replaced p and p's health checker has stopped; next may be nil
// when the pool is removed.
func (p *Pool) Retire(next *Pool) {
	keep := make(map[*Backend]bool)
	if next != nil {
		for _, b := range next.backends {
			keep[b] = true
		}
	}
	for _, b := range p.backends {
		if !keep[b] {
			b.Close()
		}
	}
	if next != nil {
		// Ejections in progress are next's to end now: on time, or at
		// once when next has outlier detection off.
		next.outlier.adopt()
	}
	p.outlier.retire()
	if next != nil && checksTurnedOff(p, next.opts) {
		// p's checker, stopped before Retire, may have taken a shared backend
		// out after NewPool marked it healthy; next has no checker to undo it.
		for _, b := range next.backends {
			b.SetHealthy(true)
		}
	}
}

// checksTurnedOff reports whether a pool built from o replaces prev's health
// checks with none.
func checksTurnedOff(prev *Pool, o Options) bool {
	return prev != nil && prev.opts.HealthCheck.Path != "" && o.HealthCheck.Path == ""
}

// PoolStats is a snapshot of a pool's load, for the admin API and a
// Prometheus collector. Counters only grow, across reloads too.
type PoolStats struct {
	// InFlight is the requests holding a place on the pool's backends.
	InFlight int64
	// Queued is the requests waiting for a place now.
	Queued int
	// Waits counts the requests that had to wait for a place.
	Waits uint64
	// Overloaded counts the requests refused with ErrOverloaded: the queue
	// was full or off, or their wait ran out.
	Overloaded uint64
	// Ejected is the number of backends passive outlier detection holds
	// out now; BackendStats says which and counts ejections.
	Ejected int
}

// Stats returns a snapshot of the pool's load.
func (p *Pool) Stats() PoolStats {
	var s PoolStats
	for _, b := range p.backends {
		s.InFlight += b.InFlight()
	}
	s.Queued = int(p.br.waiting.Load())
	s.Waits = p.br.load.waits.Load()
	s.Overloaded = p.br.load.overloaded.Load()
	s.Ejected = p.outlier.ejected()
	return s
}
