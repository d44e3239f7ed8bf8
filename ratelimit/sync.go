package ratelimit

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseScript is the cluster-wide token bucket of one client, a hash with
// the level t and the time ts (ms) it was computed at. In one atomic step it
// refills the bucket for the time passed, takes back a returned lease, takes
// the admissions an instance made without a lease (which may leave it in
// debt, below zero), and leases up to want whole tokens. The key expires
// when the bucket would be full again: a missing key is a full bucket, so
// the TTL loses nothing. It returns the tokens leased and the level left, in
// thousandths.
//
// KEYS[1] the bucket; ARGV rate per second, burst, now (ms, the caller's
// clock), want, force, back.
var leaseScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local force = tonumber(ARGV[5])
local back = tonumber(ARGV[6])
local tokens, ts = burst, now
local s = redis.call('HMGET', KEYS[1], 't', 'ts')
if s[1] then
  tokens, ts = tonumber(s[1]), tonumber(s[2])
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
    ts = now
  end
end
tokens = math.min(burst, tokens + back) - force
local grant = 0
if want > 0 and tokens >= 1 then
  grant = math.min(want, math.floor(tokens))
  tokens = tokens - grant
end
if tokens >= burst then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%d', ts))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1)
end
return {grant, math.floor(tokens * 1000)}
`)

// recoverRounds is how many successful probes in a row end degraded mode,
// so that a flapping Redis does not flip the mode at every round.
const recoverRounds = 3

var errSyncBusy = errors.New("the previous sync has not finished")

// item is one client's reconciliation in a round.
type item struct {
	b     *bucket
	want  int64 // tokens to lease
	force int64 // admissions without a lease to report
	back  int64 // lease to give back
	cold  bool  // the client went idle: its lease is given back, not renewed
	cmd   *redis.Cmd
}

// run is the sync loop: a full round every interval (every client used
// since the last one, and the heartbeat), and an early round for the
// clients whose lease ran out as soon as they ask.
func (g *Global) run(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(g.interval)
	defer tick.Stop()
	var queue []*bucket
	g.round(true, nil)
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			g.round(true, nil)
		case b := <-g.st.early:
			queue = append(queue[:0], b)
		drain:
			for {
				select {
				case b := <-g.st.early:
					queue = append(queue, b)
				default:
					break drain
				}
			}
			g.round(false, queue)
			clear(queue)
		}
	}
}

// round reconciles with Redis: the clients of early, or with full every
// client used since the last full round, plus the heartbeat. In degraded
// mode it only probes Redis with the heartbeat.
func (g *Global) round(full bool, early []*bucket) {
	st := g.st
	now := g.now()
	t := st.mono(now)
	if st.degraded.Load() {
		g.unqueue(early)
		if full {
			g.probe(now)
		}
		return
	}
	epoch := st.epoch.Load()
	st.items = st.items[:0]
	if full {
		for i := range st.shards {
			g.collectShard(&st.shards[i], t, epoch)
		}
	} else {
		for _, b := range early {
			s := &st.shards[b.shard]
			s.mu.Lock()
			b.queued = false
			if it, ok := g.collect(b, t, epoch); ok {
				st.items = append(st.items, it)
			}
			s.mu.Unlock()
		}
		if len(st.items) == 0 {
			return
		}
	}
	alive, err := g.exchange(now, full)
	if err != nil {
		clear(st.items)
		g.enterDegraded(err)
		return
	}
	if full {
		g.setInstances(alive, now)
	}
	g.apply(t, st.mono(g.now()), epoch)
	clear(st.items)
}

// collectShard collects the shard's dirty buckets.
func (g *Global) collectShard(s *globalShard, t int64, epoch uint64) {
	st := g.st
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.dirty {
		b.dirty = false
		if it, ok := g.collect(b, t, epoch); ok {
			st.items = append(st.items, it)
		}
	}
	// Buckets still holding a lease stay dirty, to be given back when idle.
	kept := s.dirty[:0]
	for _, b := range s.dirty {
		if b.leased > 0 {
			b.dirty = true
			kept = append(kept, b)
		}
	}
	clear(s.dirty[len(kept):]) // let evicted buckets go
	s.dirty = kept
}

// collect takes b's counts since the last round and decides what to ask
// Redis: a lease of about two intervals of b's recent demand (including
// refused requests), or, when b has been idle a whole interval, the return
// of its lease. It reports false when there is nothing to ask. The shard is
// locked.
func (g *Global) collect(b *bucket, t int64, epoch uint64) (item, bool) {
	offered := b.admitted + b.denied + b.forced
	dt := min(max(time.Duration(t-b.collected), time.Millisecond), g.interval)
	b.collected = t
	b.demand = max(float64(offered)/dt.Seconds(), b.demand/2)
	it := item{b: b, force: b.forced}
	b.admitted, b.denied, b.forced = 0, 0, 0
	if b.epoch != epoch {
		b.leased = 0 // a lease from before Redis came back is void
	}
	if offered == 0 && time.Duration(t-b.lastSeen) >= g.interval {
		it.back, it.cold = b.leased, true
		b.leased, b.epoch, b.demand = 0, 0, 0
	} else {
		target := int64(math.Ceil(b.demand * 2 * g.interval.Seconds()))
		target = min(max(target, 1), int64(g.burst))
		it.want = max(target-b.leased, 0)
	}
	return it, it.want > 0 || it.force > 0 || it.back > 0
}

// apply hands each answer to its bucket: the script ran at mono time
// syncedAt, its answer came at now.
func (g *Global) apply(syncedAt, now int64, epoch uint64) {
	st := g.st
	for i := range st.items {
		it := &st.items[i]
		v, err := it.cmd.Int64Slice()
		if err != nil || len(v) != 2 {
			continue
		}
		b := it.b
		s := &st.shards[b.shard]
		s.mu.Lock()
		b.tokens = float64(v[1]) / 1000
		b.syncedAt = syncedAt
		if !it.cold {
			b.leased += v[0]
			b.epoch = epoch
		}
		wait := g.interval / 4
		if b.tokens < 1 {
			wait = max(wait, seconds((1-b.tokens)/g.perSecond))
		}
		b.nextEarly = now + int64(wait)
		if b.leased > 0 && !b.dirty {
			b.dirty = true
			s.dirty = append(s.dirty, b)
		}
		s.mu.Unlock()
	}
}

// maxBatch is the most scripts sent in one pipeline. Each batch has its own
// SyncTimeout, so a round over many clients is not mistaken for a Redis
// that does not answer.
const maxBatch = 512

// exchange sends the round's scripts, with the heartbeat when full, and
// returns the number of live instances (0 without heartbeat).
func (g *Global) exchange(now time.Time, full bool) (alive int64, err error) {
	st := g.st
	start := time.Now()
	defer func() {
		st.rounds.Add(1)
		st.syncNanos.Add(int64(time.Since(start)))
		if err != nil {
			st.syncErrors.Add(1)
		}
	}()
	items := st.items
	for first := true; first || len(items) > 0; first = false {
		batch := items[:min(len(items), maxBatch)]
		items = items[len(batch):]
		n, err := g.exchangeBatch(now, full && first, batch)
		if err != nil {
			return 0, err
		}
		if full && first {
			alive = n
		}
	}
	return alive, nil
}

// exchangeBatch sends one pipeline: the scripts of batch, and the
// heartbeat if asked.
func (g *Global) exchangeBatch(now time.Time, heartbeat bool, batch []item) (alive int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	pipe := g.rdb.Pipeline()
	var card *redis.IntCmd
	if heartbeat {
		card = g.heartbeat(ctx, pipe, now)
	}
	g.queueScripts(ctx, pipe, now, batch, false)
	err = g.exec(ctx, pipe)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis restarted or flushed its scripts: load it and redo the
		// scripts that did not run.
		if err = g.await(ctx, func() error { return leaseScript.Load(ctx, g.rdb).Err() }); err != nil {
			return 0, err
		}
		pipe = g.rdb.Pipeline()
		g.queueScripts(ctx, pipe, now, batch, true)
		err = g.exec(ctx, pipe)
	}
	if err != nil {
		return 0, err
	}
	if card != nil {
		alive = card.Val()
	}
	return alive, nil
}

// queueScripts adds the scripts of batch to pipe: all of them, or with redo
// only those Redis did not know the script for.
func (g *Global) queueScripts(ctx context.Context, pipe redis.Pipeliner, now time.Time, batch []item, redo bool) {
	ms := now.UnixMilli()
	for i := range batch {
		it := &batch[i]
		if redo && !redis.HasErrorPrefix(it.cmd.Err(), "NOSCRIPT") {
			continue
		}
		it.cmd = leaseScript.EvalSha(ctx, pipe, []string{g.bucketKey + it.b.key + "}"},
			g.perSecond, g.burst, ms, it.want, it.force, it.back)
	}
}

// heartbeat adds this instance to the limit's live instances, drops those
// not seen for aliveFor, and counts the rest.
func (g *Global) heartbeat(ctx context.Context, pipe redis.Pipeliner, now time.Time) *redis.IntCmd {
	ms := now.UnixMilli()
	alive := g.aliveFor()
	pipe.ZAdd(ctx, g.aliveKey, redis.Z{Score: float64(ms), Member: g.st.id})
	pipe.ZRemRangeByScore(ctx, g.aliveKey, "-inf", "("+strconv.FormatInt(ms-alive.Milliseconds(), 10))
	card := pipe.ZCard(ctx, g.aliveKey)
	pipe.PExpire(ctx, g.aliveKey, 2*alive)
	return card
}

// aliveFor is how long an instance counts as alive after its last
// heartbeat: 10 intervals, at least a second.
func (g *Global) aliveFor() time.Duration { return max(10*g.interval, time.Second) }

// exec runs pipe, waiting at most until ctx ends (await).
func (g *Global) exec(ctx context.Context, pipe redis.Pipeliner) error {
	return g.await(ctx, func() error {
		_, err := pipe.Exec(ctx)
		return err
	})
}

// await makes a Redis call, waiting at most until ctx ends: a client whose
// own timeouts are longer (go-redis ignores context deadlines unless
// ContextTimeoutEnabled) cannot hold the loop. Every call of the loop goes
// through it, the script's load too: made directly, a load that met a
// Redis stopping under it held the loop for the client's read timeout. A
// call given up on keeps running on its own, and no new one starts before
// it ends.
func (g *Global) await(ctx context.Context, call func() error) error {
	st := g.st
	if st.inflight != nil {
		select {
		case <-st.inflight:
			st.inflight = nil
		default:
			return errSyncBusy
		}
	}
	done := make(chan struct{})
	var err error
	go func() {
		err = call()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		st.inflight = done
		return ctx.Err()
	}
}

// probe sends the heartbeat alone while degraded, and leaves degraded mode
// after recoverRounds successes in a row.
func (g *Global) probe(now time.Time) {
	st := g.st
	st.items = st.items[:0]
	alive, err := g.exchange(now, true)
	if err != nil {
		st.okRounds = 0
		return
	}
	// A restarted Redis has forgotten the others until they heartbeat
	// again: while degraded, the count only grows, so the share never
	// grows from an empty ZSET.
	g.setInstances(max(alive, st.instances.Load()), now)
	if st.okRounds++; st.okRounds < recoverRounds {
		return
	}
	st.okRounds = 0
	// Leases from before are void: clients start again from the share,
	// then lease from the cluster bucket at their next sync.
	st.epoch.Add(1)
	st.degraded.Store(false)
	g.log.Info("rate limit recovered: Redis reachable again", "limit", g.name,
		"instances", st.instances.Load())
}

// enterDegraded switches to this instance's share of the limit, once.
func (g *Global) enterDegraded(err error) {
	st := g.st
	st.okRounds = 0
	if st.degraded.Swap(true) {
		return
	}
	g.log.Warn("rate limit degraded: Redis unreachable, enforcing this instance's share",
		"limit", g.name, "instances", st.instances.Load(), "fail_closed", g.failClosed, "err", err)
}

// setInstances records how many instances are alive and resizes the share.
func (g *Global) setInstances(alive int64, now time.Time) {
	alive = max(alive, 1)
	if g.st.instances.Swap(alive) != alive {
		g.configureShare(now)
	}
}

// unqueue clears the queued mark of buckets taken from the early channel
// without a round.
func (g *Global) unqueue(early []*bucket) {
	for _, b := range early {
		s := &g.st.shards[b.shard]
		s.mu.Lock()
		b.queued = false
		s.mu.Unlock()
	}
}
