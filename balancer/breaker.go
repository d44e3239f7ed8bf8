package balancer

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOverloaded is Pool.Acquire's answer when every place is taken (each
// healthy backend at circuit_breaker.max_requests_per_backend, or the pool
// at max_requests) and the request could not wait for one: the queue was
// full, or the wait reached queue_timeout or the request's deadline. The
// gateway answers 503 with Retry-After.
var ErrOverloaded = errors.New("pool overloaded")

// Why reserve found no place, when some backend is healthy. Internal: the
// caller waits, or gets ErrOverloaded.
var (
	errPoolFull     = errors.New("pool at max_requests")
	errBackendsFull = errors.New("every backend at max_requests_per_backend")
)

// full reports whether reserve failed for want of room, not of a backend.
func full(err error) bool { return err == errPoolFull || err == errBackendsFull }

// breaker is a pool's circuit breaker: the pool-wide cap and the FIFO queue
// of requests waiting for a place.
//
// The fast path (nobody waiting, room below the caps) is atomics only: one
// load of waiting, the in-flight counters. Only a request that must wait,
// and a release while some wait, take mu. Ordering makes a wake-up
// impossible to lose without a lock on the fast path: a waiter first
// enqueues (waiting +1), then tries to reserve; a release first gives its
// place back, then reads waiting. Either the waiter's try sees the freed
// place, or the release sees the waiter and serves the queue.
type breaker struct {
	maxRequests  int64         // 0: no pool-wide cap
	maxQueue     int           // 0: no queue (max_queue: -1)
	queueTimeout time.Duration // circuit_breaker.queue_timeout
	load         *poolLoad     // shared along a chain of reloads
	waiting      atomic.Int64  // = n, read without mu

	mu         sync.Mutex
	head, tail *waiter // guarded by mu
	n          int     // guarded by mu
	free       sync.Pool
}

// poolLoad is what a pool's breaker counts across reloads: the new pool
// takes the previous pool's, so the pool-wide cap holds while requests of
// both run, and counters only grow.
type poolLoad struct {
	inFlight   atomic.Int64  // places held, counted only when max_requests caps them
	waits      atomic.Uint64 // requests that entered the queue
	overloaded atomic.Uint64 // requests refused with ErrOverloaded
}

// waiter is one request in the queue. It is pooled with its channel and
// timer, so a wait allocates nothing once the pool is warm.
type waiter struct {
	prev, next *waiter // guarded by breaker.mu
	queued     bool    // guarded by breaker.mu
	key        []byte
	not        *Backend
	got        chan *Backend // the place, sent once when served; nil: ErrNoBackend
	timer      *time.Timer
}

// init sets br up from o. prev is the pool this one replaces, or nil.
func (br *breaker) init(o CircuitBreakerOptions, prev *Pool) {
	o = o.WithDefaults()
	br.maxRequests = int64(o.MaxRequests)
	br.maxQueue = max(o.MaxQueue, 0)
	br.queueTimeout = o.QueueTimeout
	br.load = &poolLoad{}
	if prev != nil {
		br.load = prev.br.load
	}
	br.free.New = func() any { return &waiter{got: make(chan *Backend, 1)} }
}

// reserve takes a place for a request: a pool slot when the pool is capped,
// and one on a backend other than not that the policy chooses. It fails
// with ErrNoBackend when no backend other than not is healthy, and with
// errPoolFull or errBackendsFull when the caps leave no room.
func (p *Pool) reserve(key []byte, not *Backend) (*Backend, error) {
	capped := p.br.maxRequests > 0
	if capped && p.br.load.inFlight.Add(1) > p.br.maxRequests {
		p.br.load.inFlight.Add(-1)
		if !p.anyHealthy(not) {
			return nil, ErrNoBackend
		}
		return nil, errPoolFull
	}
	if b := p.reserveBackend(key, not); b != nil {
		return b, nil
	}
	if capped {
		p.br.load.inFlight.Add(-1)
	}
	if !p.anyHealthy(not) {
		return nil, ErrNoBackend
	}
	return nil, errBackendsFull
}

// reserveBackend asks the policy twice (another request may take the place
// it offers, and a policy may not look at caps), then takes the least loaded
// available backend.
func (p *Pool) reserveBackend(key []byte, not *Backend) *Backend {
	for range 2 {
		b := p.pick(key, not)
		if b == nil {
			return nil
		}
		if b.reserve() {
			return b
		}
	}
	b := leastLoaded(p.backends, (p.except.Add(1)-1)%uint64(len(p.backends)), not)
	if b != nil && b.reserve() {
		return b
	}
	return nil
}

func (p *Pool) pick(key []byte, not *Backend) *Backend {
	if not == nil {
		return p.policy.Pick(p.backends, key)
	}
	return p.PickExcept(key, not)
}

// anyHealthy reports whether some backend other than not is healthy, caps
// aside: whether a request could ever be served by waiting.
func (p *Pool) anyHealthy(not *Backend) bool {
	for _, b := range p.backends {
		if b != not && b.Healthy() {
			return true
		}
	}
	return false
}

// unreserve gives back a place reserve took.
func (p *Pool) unreserve(b *Backend) {
	b.inFlight.Add(-1)
	if p.br.maxRequests > 0 {
		p.br.load.inFlight.Add(-1)
	}
}

// wait queues the request until serve gives it a place, the queue timeout
// passes or the deadline comes; see Acquire.
func (p *Pool) wait(key []byte, not *Backend, deadline time.Time) (*Backend, error) {
	br := &p.br
	if br.maxQueue == 0 {
		return nil, p.overloaded()
	}
	d := br.queueTimeout
	if !deadline.IsZero() {
		d = min(d, time.Until(deadline))
	}
	br.mu.Lock()
	if br.n >= br.maxQueue {
		p.serveLocked() // room may have freed since the last release looked
	}
	if br.n >= br.maxQueue || d <= 0 {
		// No room or no time to wait: a place free now is still taken,
		// if nobody waits ahead for it.
		var b *Backend
		err := errPoolFull
		if br.n == 0 {
			b, err = p.reserve(key, not)
		}
		br.mu.Unlock()
		if full(err) {
			return nil, p.overloaded()
		}
		return b, err
	}
	w := br.free.Get().(*waiter)
	w.key, w.not = key, not
	br.push(w)
	br.load.waits.Add(1)
	p.serveLocked() // w's place may have freed before it was queued
	br.mu.Unlock()

	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case b := <-w.got:
		w.timer.Stop()
		return p.served(w, b)
	case <-w.timer.C:
	}
	br.mu.Lock()
	queued := w.queued
	if queued {
		br.remove(w)
	}
	br.mu.Unlock()
	if !queued {
		return p.served(w, <-w.got) // served as its time ran out: take it
	}
	p.recycle(w)
	return nil, p.overloaded()
}

// served ends a wait that serve answered.
func (p *Pool) served(w *waiter, b *Backend) (*Backend, error) {
	p.recycle(w)
	if b == nil {
		return nil, ErrNoBackend
	}
	return b, nil
}

func (p *Pool) recycle(w *waiter) {
	w.key, w.not = nil, nil // do not keep the caller's buffer
	p.br.free.Put(w)
}

func (p *Pool) overloaded() error {
	p.br.load.overloaded.Add(1)
	return ErrOverloaded
}

// serve gives free places to waiting requests, in order.
func (p *Pool) serve() {
	p.br.mu.Lock()
	p.serveLocked()
	p.br.mu.Unlock()
}

// serveLocked gives free places to waiting requests, first come first
// served, and stops at the first that finds none: those behind it would
// find none either. A retry that must avoid a backend, though, may find
// nothing where a request behind it finds a place, so it is passed over
// (it stays first in line) unless the pool itself is full.
func (p *Pool) serveLocked() {
	br := &p.br
	for w := br.head; w != nil; {
		next := w.next
		b, err := p.reserve(w.key, w.not)
		switch {
		case err == errPoolFull, err == errBackendsFull && w.not == nil:
			return
		case err == errBackendsFull:
		default: // a place, or nil for ErrNoBackend
			br.remove(w)
			w.got <- b // buffered, and each queued waiter is sent to once
		}
		w = next
	}
}

func (br *breaker) push(w *waiter) {
	w.prev, w.next, w.queued = br.tail, nil, true
	if br.tail != nil {
		br.tail.next = w
	} else {
		br.head = w
	}
	br.tail = w
	br.n++
	br.waiting.Store(int64(br.n))
}

func (br *breaker) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		br.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		br.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	br.n--
	br.waiting.Store(int64(br.n))
}
