package ratelimit

import (
	"context"
	"crypto/rand"
	"hash/maphash"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Global is a limit that holds across every gateway instance sharing one
// Redis: one token bucket per client in Redis, from which each instance
// leases tokens in the background and admits requests locally (see the
// package documentation for the algorithm and its bounds). It is safe for
// concurrent use; Close stops its sync loop.
type Global struct {
	name       string
	perSecond  float64
	burst      int
	interval   time.Duration
	timeout    time.Duration
	failClosed bool
	now        func() time.Time
	log        *slog.Logger
	policy     Policy
	rdb        redis.UniversalClient
	bucketKey  string // "sluice:rl:{<name>:", the client and "}" follow
	aliveKey   string // the ZSET of instances seen alive for this limit
	st         *globalState

	mu    sync.Mutex // guards owner and the stop/done pair
	owner bool       // this Global runs the sync loop of st
	stop  chan struct{}
	done  chan struct{}
}

// NewGlobal builds a global limit on rdb, the gateway's shared client, and
// starts its sync loop. With prev (the Global that served the same Name
// before a reload) the clients' state, the instance id and the degraded
// mode carry over, prev's sync loop stops and this one's takes over; a
// changed rate or burst applies at once.
func NewGlobal(opts Options, rdb redis.UniversalClient, prev *Global) (*Global, error) {
	g, err := newGlobal(opts, rdb, prev)
	if err != nil {
		return nil, err
	}
	g.start()
	return g, nil
}

// newGlobal builds a Global without starting its loop: tests drive rounds
// themselves.
func newGlobal(opts Options, rdb redis.UniversalClient, prev *Global) (*Global, error) {
	o, r, err := validated(opts)
	if err != nil {
		return nil, err
	}
	g := &Global{
		name:       o.Name,
		perSecond:  r.PerSecond(),
		burst:      o.Burst,
		interval:   o.SyncInterval,
		timeout:    o.SyncTimeout,
		failClosed: o.FailClosed,
		now:        o.Now,
		log:        o.Logger,
		policy:     policyOf(r.PerSecond(), o.Burst),
		rdb:        rdb,
		bucketKey:  "sluice:rl:{" + o.Name + ":",
		aliveKey:   "sluice:rl:instances:{" + o.Name + "}",
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	now := g.now()
	if prev != nil && prev.name == o.Name {
		prev.release()
		g.st = prev.st
	} else {
		id := o.InstanceID
		if id == "" {
			id = rand.Text()
		}
		g.st = newGlobalState(id, now)
	}
	g.st.configure(o.MaxKeys)
	g.configureShare(now)
	return g, nil
}

// Allow implements Limiter. The request path takes the client's shard lock
// and spends one token of the instance's local lease; it never waits for
// Redis.
func (g *Global) Allow(key []byte) Decision {
	now := g.now()
	st := g.st
	i := st.shardIndex(key)
	s := &st.shards[i]
	s.mu.Lock()
	var d Decision
	if st.degraded.Load() {
		d = g.fallback(key, now)
	} else {
		d = g.allowLocked(s, i, key, now)
	}
	s.count(d.Allowed)
	s.mu.Unlock()
	return d
}

// allowLocked decides in normal mode, with the shard locked.
func (g *Global) allowLocked(s *globalShard, i uint8, key []byte, now time.Time) Decision {
	st := g.st
	t := st.mono(now)
	b := s.m[string(key)]
	if b == nil {
		b = s.insert(key, i)
	}
	b.lastSeen = t
	if !b.dirty {
		b.dirty = true
		s.dirty = append(s.dirty, b)
	}
	if b.epoch != st.epoch.Load() {
		// No lease from Redis yet (a new or idle client, or Redis just came
		// back): admit from this instance's share and report the admissions
		// as debt at the sync, which is asked for now.
		d := st.share.allow(key, now)
		if d.Allowed {
			b.forced++
		} else {
			b.denied++
		}
		g.requestSync(b, t)
		d.Limit = g.burst
		return d
	}
	if b.leased > 0 {
		b.leased--
		b.admitted++
		return g.leaseDecision(b, t, true)
	}
	g.requestSync(b, t)
	// The lease ran out. If the cluster bucket has refilled since the last
	// sync, this instance's part of it (1/n) may be used now, as debt, from
	// the share: a slow client is not refused for the one sync it takes to
	// lease the tokens that came back.
	if g.unleased(b, t) >= 1 && st.share.allow(key, now).Allowed {
		b.forced++
		return g.leaseDecision(b, t, true)
	}
	b.denied++
	return g.leaseDecision(b, t, false)
}

// unleased estimates this instance's part of the tokens the cluster bucket
// holds that nobody leased: the level at the last sync, refilled since,
// divided among the live instances, less what this instance took from it.
func (g *Global) unleased(b *bucket, t int64) float64 {
	return g.clusterLevel(b, t)/float64(g.st.instances.Load()) - float64(b.forced)
}

// clusterLevel is what the cluster bucket held at b's last sync, refilled
// until mono time t.
func (g *Global) clusterLevel(b *bucket, t int64) float64 {
	return math.Min(b.tokens+g.perSecond*float64(t-b.syncedAt)/1e9, float64(g.burst))
}

// fallback decides in degraded mode: this instance's share of the limit, or
// nothing with FailClosed.
func (g *Global) fallback(key []byte, now time.Time) Decision {
	if g.failClosed {
		return g.closed()
	}
	d := g.st.share.allow(key, now)
	d.Limit = g.burst
	return d
}

// closed is the refusal of every request in degraded mode with FailClosed.
func (g *Global) closed() Decision {
	return Decision{Limit: g.burst, ResetAfter: g.interval, RetryAfter: g.interval}
}

// requestSync asks the sync loop to reconcile b now, unless it is queued
// already or was reconciled too recently. It never blocks.
func (g *Global) requestSync(b *bucket, t int64) {
	if b.queued || t < b.nextEarly {
		return
	}
	select {
	case g.st.early <- b:
		b.queued = true
	default: // the loop is busy; the next round takes b anyway
	}
}

// leaseDecision describes b after a request: its local lease plus what the
// cluster bucket held at the last sync, refilled since.
func (g *Global) leaseDecision(b *bucket, t int64, allowed bool) Decision {
	cluster := g.clusterLevel(b, t)
	d := bucketDecision(allowed, float64(b.leased)+math.Max(cluster, 0), g.perSecond, g.burst)
	if !allowed {
		if cluster >= 1 {
			d.RetryAfter = g.interval // tokens are there; the next sync leases them
		} else {
			d.RetryAfter = seconds((1 - cluster) / g.perSecond)
		}
	}
	return d
}

// State implements Limiter with this instance's view: what it holds and
// what the cluster bucket held at its last sync. An unknown client is shown
// with a full allowance.
func (g *Global) State(key []byte) Decision {
	now := g.now()
	st := g.st
	s := &st.shards[st.shardIndex(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	degraded := st.degraded.Load()
	if degraded && g.failClosed {
		return g.closed()
	}
	b := s.m[string(key)]
	if degraded || b == nil || b.epoch != st.epoch.Load() {
		d := st.share.state(key, now)
		d.Limit = g.burst
		return d
	}
	t := st.mono(now)
	allowed := b.leased > 0 || g.unleased(b, t) >= 1
	return g.leaseDecision(b, t, allowed)
}

// Policy implements Limiter.
func (g *Global) Policy() Policy { return g.policy }

// Stats implements Limiter.
func (g *Global) Stats() Stats {
	st := g.st
	var out Stats
	for i := range st.shards {
		s := &st.shards[i]
		s.mu.Lock()
		s.addTo(&out, len(s.m))
		s.mu.Unlock()
	}
	out.Degraded = st.degraded.Load()
	out.Instances = int(st.instances.Load())
	out.SyncRounds = st.rounds.Load()
	out.SyncErrors = st.syncErrors.Load()
	out.SyncLatency = time.Duration(st.syncNanos.Load())
	return out
}

// Degraded says whether Redis is unreachable and the limit falls back to
// this instance's share (or refuses everything, with FailClosed).
func (g *Global) Degraded() bool { return g.st.degraded.Load() }

// Close implements Limiter: it stops the sync loop and removes this
// instance from the limit's live instances in Redis (best effort, within
// SyncTimeout). It does nothing for a Global whose state a newer one took
// over.
func (g *Global) Close() {
	if !g.release() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	pipe := g.rdb.Pipeline()
	pipe.ZRem(ctx, g.aliveKey, g.st.id)
	_ = g.exec(ctx, pipe) // the loop has stopped: exec is ours
}

func (g *Global) start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.owner = true
	g.stop = make(chan struct{})
	g.done = make(chan struct{})
	go g.run(g.stop, g.done)
}

// release stops the sync loop if g runs it, and says whether it did.
func (g *Global) release() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.owner {
		return false
	}
	g.owner = false
	close(g.stop)
	<-g.done
	return true
}

// configureShare sets the local buckets used before a client's first lease
// and in degraded mode to this instance's share of the limit: 1/n of the
// rate and of the burst (rounded up), n the instances seen alive.
func (g *Global) configureShare(now time.Time) {
	n := max(g.st.instances.Load(), 1)
	burst := (g.burst + int(n) - 1) / int(n)
	g.st.share.configure(g.perSecond/float64(n), burst, g.st.maxKeys, now)
}

// globalState is a global limit's clients on this instance. It outlives a
// reload: the Global built with prev takes it over.
type globalState struct {
	seed    maphash.Seed
	base    time.Time // mono times count from here
	id      string    // this instance in the ZSET of live instances
	maxKeys int
	shards  [numShards]globalShard
	share   *localState  // this instance's share of the limit, per client
	early   chan *bucket // clients whose lease ran out, for the sync loop

	epoch     atomic.Uint64 // leases of an older epoch are void; bumped when Redis comes back
	degraded  atomic.Bool
	instances atomic.Int64

	rounds     atomic.Uint64
	syncErrors atomic.Uint64
	syncNanos  atomic.Int64

	// Owned by the running sync loop.
	okRounds int           // successful probes in a row while degraded
	items    []item        // this round's reconciliations
	inflight chan struct{} // non-nil while an abandoned round still runs
}

// globalShard is one part of a limit's clients. mu guards every field and
// every field of the buckets in m.
type globalShard struct {
	mu      sync.Mutex
	m       map[string]*bucket
	dirty   []*bucket // buckets used since the last round, or holding a lease
	maxKeys int
	tally
	_ [64]byte
}

// bucket is one client's state on this instance: its lease of tokens from
// the cluster bucket in Redis and what it reports at the next sync.
type bucket struct {
	key       string
	leased    int64   // tokens leased from Redis and not spent
	forced    int64   // admitted from the share without a lease since the last sync: debt
	admitted  int64   // admitted from the lease since the last sync
	denied    int64   // refused since the last sync
	demand    float64 // requests per second offered, decaying by half each sync
	tokens    float64 // the cluster bucket's level after the last sync
	syncedAt  int64   // mono time of the last sync's answer
	collected int64   // mono time of the last sync's start
	lastSeen  int64   // mono time of the last request
	nextEarly int64   // no early sync before this mono time
	epoch     uint64  // epoch of the lease; another value means no lease
	shard     uint8
	dirty     bool // in its shard's dirty list
	queued    bool // in the early channel
}

func newGlobalState(id string, now time.Time) *globalState {
	st := &globalState{
		seed:  maphash.MakeSeed(),
		base:  now,
		id:    id,
		share: newLocalState(now),
		early: make(chan *bucket, 1024),
	}
	st.epoch.Store(1)
	st.instances.Store(1)
	for i := range st.shards {
		st.shards[i].m = make(map[string]*bucket)
	}
	return st
}

func (st *globalState) configure(maxKeys int) {
	st.maxKeys = maxKeys
	perShard := (maxKeys + numShards - 1) / numShards
	for i := range st.shards {
		s := &st.shards[i]
		s.mu.Lock()
		s.maxKeys = perShard
		s.mu.Unlock()
	}
}

func (st *globalState) shardIndex(key []byte) uint8 {
	return uint8(maphash.Bytes(st.seed, key) % numShards)
}

func (st *globalState) mono(now time.Time) int64 { return int64(now.Sub(st.base)) }

// insert adds a bucket for key, first evicting from a sample of the shard
// the buckets that hold nothing (no lease, no unreported admissions, not
// waiting for a sync): forgetting them loses nothing. At the bound it also
// evicts the least recently used bucket of the sample; its lease is lost
// (fewer admissions) and so are its unreported admissions (at most one
// share of the burst more).
func (s *globalShard) insert(key []byte, i uint8) *bucket {
	needRoom := len(s.m) >= s.maxKeys
	var oldest *bucket
	seen := 0
	for k, b := range s.m {
		if !b.dirty && !b.queued && b.leased == 0 && b.forced == 0 {
			delete(s.m, k)
			s.evictions++
			needRoom = false
		} else if oldest == nil || b.lastSeen < oldest.lastSeen {
			oldest = b
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if needRoom && oldest != nil {
		delete(s.m, oldest.key)
		s.evictions++
	}
	k := string(key)
	b := &bucket{key: k, shard: i}
	s.m[k] = b
	return b
}
