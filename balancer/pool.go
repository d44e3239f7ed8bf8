package balancer

import (
	"fmt"
	"sync/atomic"
)

// Pool is a named set of backends and the policy that chooses among them.
// It is immutable once built (a reload builds a new one), so reading it needs
// no lock; the backends' health and load change underneath, atomically.
type Pool struct {
	name     string
	opts     Options
	backends []*Backend
	policy   Policy
	// except rotates the fallback scan of PickExcept.
	except atomic.Uint64
}

// NewPool builds the pool name from o, which must already be defaulted and
// valid. A backend whose address was in prev is reused: the same *Backend,
// so its connections, health and counters carry over a reload (its weight,
// connect timeout and connection limit are updated in place). prev may be
// nil. Only when max_idle_conn_duration or max_response_body changed, which
// fasthttp cannot change under running requests, is a new Backend built; it
// inherits the old one's health, so a reload does not send traffic to a
// backend known dead.
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
	for _, bo := range o.Backends {
		b, ok := old[bo.Addr]
		switch {
		case ok && b.settings == settings:
			b.update(bo.Weight, o)
		case ok:
			down := b.down.Load()
			b = NewBackend(bo.Addr, bo.Weight, o)
			b.down.Store(down)
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
	return p, nil
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

// Retire closes the backends of p that next does not reuse. Call it after
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
