package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// numShards splits a limit's clients so that requests of different clients
// rarely wait for each other: a request locks only the shard of its key.
const numShards = 256

// evictSample is how many entries an insert looks at for one to evict.
const evictSample = 8

// Local is a limit enforced by this instance alone: one token bucket
// (golang.org/x/time/rate) per client key. It is safe for concurrent use and
// needs no Close.
type Local struct {
	name   string
	now    func() time.Time
	policy Policy
	st     *localState // shared with the Local this one replaced, if any
}

// NewLocal builds a local limit. With prev (the Local that served the same
// Name before a reload) the clients' buckets carry over; a changed rate or
// burst applies to them at once, and a bucket never holds more than the new
// burst.
func NewLocal(opts Options, prev *Local) (*Local, error) {
	o, r, err := validated(opts)
	if err != nil {
		return nil, err
	}
	l := &Local{name: o.Name, now: o.Now, policy: policyOf(r.PerSecond(), o.Burst)}
	if l.now == nil {
		l.now = time.Now
	}
	if prev != nil && prev.name == o.Name {
		l.st = prev.st
	} else {
		l.st = newLocalState(l.now())
	}
	l.st.configure(r.PerSecond(), o.Burst, o.MaxKeys, l.now())
	return l, nil
}

// Allow implements Limiter.
func (l *Local) Allow(key []byte) Decision { return l.st.allow(key, l.now()) }

// State implements Limiter.
func (l *Local) State(key []byte) Decision { return l.st.state(key, l.now()) }

// Policy implements Limiter.
func (l *Local) Policy() Policy { return l.policy }

// Stats implements Limiter.
func (l *Local) Stats() Stats { return l.st.stats() }

// Close implements Limiter; a Local has nothing to stop.
func (l *Local) Close() {}

// localState is the buckets of one limit, split in shards by key hash.
type localState struct {
	seed   maphash.Seed
	base   time.Time // entries' last use counts from here
	shards [numShards]localShard
}

// entry is one client's token bucket and its last use.
type entry struct {
	lim  rate.Limiter
	seen int64 // nanoseconds since localState.base
}

// localShard is one part of a limit's clients. mu guards every field and the
// buckets' use: a request holds it for the map lookup and the bucket's
// update, about 50ns.
type localShard struct {
	mu        sync.Mutex
	m         map[string]*entry
	perSecond float64
	burst     int
	idleAfter int64 // ns a bucket needs to refill completely: Burst / rate
	maxKeys   int
	tally
	_ [64]byte // keep neighbouring shards' locks off one cache line
}

// tally is a shard's counters, guarded by the shard's lock.
type tally struct {
	allowed, denied, evictions uint64
}

// count counts one decision.
func (c *tally) count(allowed bool) {
	if allowed {
		c.allowed++
	} else {
		c.denied++
	}
}

// addTo adds the counters, and keys the shard's clients, to out.
func (c *tally) addTo(out *Stats, keys int) {
	out.Allowed += c.allowed
	out.Denied += c.denied
	out.Evictions += c.evictions
	out.Keys += keys
}

func newLocalState(now time.Time) *localState {
	st := &localState{seed: maphash.MakeSeed(), base: now}
	for i := range st.shards {
		st.shards[i].m = make(map[string]*entry)
	}
	return st
}

func (st *localState) shard(key []byte) *localShard {
	return &st.shards[maphash.Bytes(st.seed, key)%numShards]
}

// configure sets the rate, burst and key bound of every bucket, existing and
// future, then trims shards that hold more than the new bound.
func (st *localState) configure(perSecond float64, burst, maxKeys int, now time.Time) {
	perShard := (maxKeys + numShards - 1) / numShards
	for i := range st.shards {
		s := &st.shards[i]
		s.mu.Lock()
		if s.perSecond != perSecond || s.burst != burst {
			for _, e := range s.m {
				e.lim.SetLimitAt(now, rate.Limit(perSecond))
				e.lim.SetBurstAt(now, burst)
			}
			s.perSecond, s.burst = perSecond, burst
			s.idleAfter = int64(seconds(float64(burst) / perSecond))
		}
		s.maxKeys = perShard
		for len(s.m) > s.maxKeys {
			s.evict(now, st.mono(now), true)
		}
		s.mu.Unlock()
	}
}

func (st *localState) mono(now time.Time) int64 { return int64(now.Sub(st.base)) }

func (st *localState) allow(key []byte, now time.Time) Decision {
	s := st.shard(key)
	t := st.mono(now)
	s.mu.Lock()
	e := s.m[string(key)]
	if e == nil {
		e = s.insert(key, now, t)
	}
	e.seen = t
	ok := e.lim.AllowN(now, 1)
	s.count(ok)
	d := bucketDecision(ok, e.lim.TokensAt(now), s.perSecond, s.burst)
	s.mu.Unlock()
	return d
}

func (st *localState) state(key []byte, now time.Time) Decision {
	s := st.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	tokens := float64(s.burst) // an unknown client has a full bucket
	if e := s.m[string(key)]; e != nil {
		tokens = e.lim.TokensAt(now)
	}
	return bucketDecision(tokens >= 1, tokens, s.perSecond, s.burst)
}

func (st *localState) stats() Stats {
	var out Stats
	for i := range st.shards {
		s := &st.shards[i]
		s.mu.Lock()
		s.addTo(&out, len(s.m))
		s.mu.Unlock()
	}
	return out
}

// insert adds a full bucket for key. It first evicts what a sample of the
// shard shows to be idle, and when the shard is at its bound, also the
// fullest sampled bucket: recreating it later grants at most the tokens it
// lacked, never more than one burst.
func (s *localShard) insert(key []byte, now time.Time, t int64) *entry {
	s.evict(now, t, len(s.m) >= s.maxKeys)
	e := &entry{}
	// Set at the zero time, the bucket is full at its first use.
	e.lim.SetLimitAt(time.Time{}, rate.Limit(s.perSecond))
	e.lim.SetBurstAt(time.Time{}, s.burst)
	s.m[string(key)] = e
	return e
}

// evict looks at up to evictSample buckets (Go starts each map iteration at
// a random place) and deletes those unused for the time a bucket takes to
// refill completely: they are full, the state of a client never seen, so
// forgetting them grants nothing. When room is needed and none was idle,
// it deletes the fullest one seen.
func (s *localShard) evict(now time.Time, t int64, needRoom bool) {
	var fullest *entry
	var fullestKey string
	var fullestTokens float64
	seen := 0
	for k, e := range s.m {
		if t-e.seen >= s.idleAfter {
			delete(s.m, k)
			s.evictions++
			needRoom = false
		} else if needRoom {
			tokens := e.lim.TokensAt(now)
			if fullest == nil || tokens > fullestTokens {
				fullest, fullestKey, fullestTokens = e, k, tokens
			}
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if needRoom && fullest != nil {
		delete(s.m, fullestKey)
		s.evictions++
	}
}
