package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared tier (L2): entries in Redis under
// "sluice:c:{<key hash>}", each with a TTL. Reads are bounded by
// Options.RedisTimeout and writes are queued, so Redis is never on the
// critical path: a slow, failed or skipped call is a miss, never an error.
// Safe for concurrent use.
type Redis struct {
	c    redis.UniversalClient
	o    Options
	id   string              // this instance: owner of its leases, sender of its purges
	hash func([]byte) uint64 // Hash; tests force collisions through it
	br   *breaker

	// Every job about one URL's entries goes to the writer of the URL's
	// hash, so an invalidation is applied after the writes queued before it
	// and before those queued after it (apply keeps a batch's order).
	queues []chan writeJob
	stop   chan struct{}
	wg     sync.WaitGroup

	inval *invalidations // queued and recent invalidations of URLs, for reads

	hits, misses, corrupt, mismatches atomic.Uint64
	errs, timeouts, skipped           atomic.Uint64
	calls, latency                    atomic.Uint64 // answered calls and their total nanoseconds
	writes, writeDrops                atomic.Uint64
}

// writeJob is one unit of asynchronous L2 work, applied in order with the
// other jobs of its key.
type writeJob struct {
	set        [2]stored // entries to store (a Vary index entry and its variant)
	del        []byte    // a key whose entry to delete
	release    bool      // release the fill lease of leaseHash (after the sets)
	leaseHash  uint64
	invalidate []byte // delete every entry of this URL
	message    string // publish this purge message
	tries      uint8  // earlier attempts at the purge (retryPurge)
}

type stored struct {
	e   *Entry
	ttl time.Duration
}

var errBreakerOpen = errors.New("cache: redis breaker open")

// NewRedis builds L2 on a client the caller built and shares with other
// users; Close does not close it. Writers start at once.
//
// Every call is bounded by a context deadline and, in case the client does
// not honour deadlines (go-redis ignores them unless ContextTimeoutEnabled
// is set), by a timer: an abandoned call finishes in the background. Build
// the client with ContextTimeoutEnabled so those stop early too, and with
// MaxRetries small, since a retry cannot finish within a 20ms budget.
func NewRedis(c redis.UniversalClient, o Options) (*Redis, error) {
	if c == nil {
		return nil, errors.New("cache: redis: nil client")
	}
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := &Redis{
		c: c, o: o, id: newID(), hash: Hash,
		br:     newBreaker(o.BreakerFailures, o.BreakerCooldown, o.OnBreaker),
		queues: make([]chan writeJob, o.Writers),
		stop:   make(chan struct{}),
		inval:  newInvalidations(),
	}
	per := max(1, o.WriteQueue/o.Writers)
	for i := range r.queues {
		r.queues[i] = make(chan writeJob, per)
		r.wg.Add(1)
		go r.writer(r.queues[i])
	}
	return r, nil
}

// Close stops the writers; queued writes are dropped. The client stays open.
func (r *Redis) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

// Breaker is the breaker's state, for metrics.
func (r *Redis) Breaker() BreakerState { return r.br.State() }

// newID returns 16 random hex digits naming this instance.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return string(appendHash(nil, binary.BigEndian.Uint64(b[:])))
}

func entryName(h uint64) string { return hashName("sluice:c:{", h) }
func leaseName(h uint64) string { return hashName("sluice:lease:{", h) }
func urlIndex(h uint64) string  { return hashName("sluice:url:{", h) }
func hostIndex(h uint64) string { return hashName("sluice:host:{", h) }
func tagIndex(tag []byte) string {
	return "sluice:tag:{" + string(tag) + "}"
}

func hashName(prefix string, h uint64) string {
	var b [64]byte
	return string(append(appendHash(append(b[:0], prefix...), h), '}'))
}

// appendHash appends h as 16 lower-case hex digits.
func appendHash(dst []byte, h uint64) []byte {
	const hex = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hex[(h>>uint(shift))&0xf])
	}
	return dst
}

// call runs fn against Redis within timeout, unless the breaker is open. It
// returns fn's error, context.DeadlineExceeded when fn did not answer in
// time, or errBreakerOpen. redis.Nil is an answer, not a failure.
func (r *Redis) call(timeout time.Duration, fn func(ctx context.Context) error) error {
	if !r.br.allow() {
		r.skipped.Add(1)
		return errBreakerOpen
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil || errors.Is(err, redis.Nil) {
		r.calls.Add(1)
		r.latency.Add(uint64(time.Since(start)))
	}
	r.outcome(err)
	return err
}

// outcome counts a finished call or write and tells the breaker.
func (r *Redis) outcome(err error) {
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		r.br.success()
	case errors.Is(err, context.DeadlineExceeded):
		r.timeouts.Add(1)
		r.errs.Add(1)
		r.br.failure()
	default:
		r.errs.Add(1)
		r.br.failure()
	}
}

// Get returns the entry stored under key, or nil on a miss, a failure, a
// timeout, a corrupt value or a value stored for another key.
func (r *Redis) Get(key []byte) *Entry {
	e, _ := r.get(key)
	return e
}

// get is Get that also says whether Redis answered.
func (r *Redis) get(key []byte) (*Entry, error) {
	name := entryName(r.hash(key))
	var val []byte
	mark := r.inval.mark()
	err := r.call(r.o.RedisTimeout, func(ctx context.Context) error {
		v, err := r.c.Get(ctx, name).Bytes()
		val = v
		return err
	})
	if err != nil {
		r.misses.Add(1)
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		return nil, err
	}
	return r.check(key, val, mark), nil
}

// check decodes a value read for key by a read that took mark before it
// was sent: corrupt values, values of other keys and entries this instance
// may have invalidated meanwhile are misses, counted.
func (r *Redis) check(key, val []byte, mark uint64) *Entry {
	e, err := decodeEntry(val)
	if err != nil {
		r.corrupt.Add(1)
		r.misses.Add(1)
		return nil
	}
	if !bytes.Equal(e.Key, key) {
		r.mismatches.Add(1)
		r.misses.Add(1)
		return nil
	}
	if r.inval.dropped(Hash(e.url), mark) {
		r.misses.Add(1)
		return nil
	}
	r.hits.Add(1)
	return e
}

// Set queues e to be stored for ttl. A full queue drops it (counted).
func (r *Redis) Set(e *Entry, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	r.enqueue(Hash(e.url), writeJob{set: [2]stored{{e: e, ttl: ttl}}})
}

// Del queues the removal of the entry stored under e's key.
func (r *Redis) Del(e *Entry) {
	r.enqueue(Hash(e.url), writeJob{del: bytes.Clone(e.Key)})
}

// invalidate queues the removal of every entry of url, and the purge
// message for the other instances; reads of url's entries here are misses
// until it is applied (invalidations).
func (r *Redis) invalidate(url []byte, message string) {
	h := Hash(url)
	r.inval.start(h)
	if !r.enqueue(h, writeJob{invalidate: url, message: message}) {
		r.inval.finish(h) // dropped (counted): nothing to wait for
	}
}

// enqueue hands a job to the writer that owns h, or drops it.
func (r *Redis) enqueue(h uint64, j writeJob) bool {
	select {
	case r.queues[h%uint64(len(r.queues))] <- j:
		return true
	default:
		r.writeDrops.Add(1)
		return false
	}
}

// writer applies jobs in pipelines of what is queued, up to 64 at a time.
func (r *Redis) writer(q chan writeJob) {
	defer r.wg.Done()
	batch := make([]writeJob, 0, 64)
	var buf []byte
	for {
		select {
		case <-r.stop:
			for { // what is dropped is no longer under way
				select {
				case j := <-q:
					if j.invalidate != nil {
						r.inval.finish(Hash(j.invalidate))
					}
				default:
					return
				}
			}
		case j := <-q:
			batch = append(batch[:0], j)
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case j := <-q:
				batch = append(batch, j)
			default:
				break drain
			}
		}
		buf = r.apply(batch, buf)
		clear(batch) // let the entries go
	}
}

// apply sends one batch, in order: the writes between two purges go in one
// pipeline, and each purge (which needs a read first) after the writes
// queued before it and before those queued after it, so that a fresh fill
// stored after an invalidation survives it.
func (r *Redis) apply(batch []writeJob, buf []byte) []byte {
	if !r.br.allow() {
		r.skipped.Add(1)
		for _, j := range batch {
			if j.invalidate != nil || j.message != "" {
				r.retryPurge(j)
			} else {
				r.writeDrops.Add(1)
			}
		}
		return buf
	}
	// Each round trip has WriteTimeout of its own: one slow purge must not
	// leave the rest of the batch no time.
	ctx, cancel := context.WithTimeout(context.Background(), r.o.WriteTimeout)
	defer func() { cancel() }()
	var err error
	keep := func(e error) {
		if e != nil && err == nil {
			err = e
		}
	}
	renew := func() {
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), r.o.WriteTimeout)
	}
	pipe := r.c.Pipeline()
	sets := 0
	for _, j := range batch {
		if j.invalidate != nil || j.message != "" {
			if pipe.Len() > 0 {
				keep(r.exec(ctx, pipe, sets))
				renew()
			}
			sets = 0
			if perr := r.purgeJob(ctx, j); perr != nil {
				keep(perr)
				r.retryPurge(j)
			} else if j.invalidate != nil {
				r.inval.finish(Hash(j.invalidate))
			}
			renew()
			continue
		}
		for _, s := range j.set {
			if s.e == nil {
				continue
			}
			h := r.hash(s.e.Key)
			buf = appendEntry(buf[:0], s.e)
			pipe.Set(ctx, entryName(h), string(buf), s.ttl)
			sets++
			if !s.e.marker {
				r.index(ctx, pipe, s.e, h, s.ttl)
			}
		}
		if j.del != nil {
			pipe.Del(ctx, entryName(r.hash(j.del)))
		}
		if j.release {
			releaseScript.Eval(ctx, pipe, []string{leaseName(j.leaseHash)}, r.id)
		}
	}
	keep(r.exec(ctx, pipe, sets))
	r.outcome(err)
	return buf
}

// maxPurgeTries is how often an invalidation is sent to Redis before its
// copy there is left to expire (counted in WriteDrops).
const maxPurgeTries = 3

// retryPurge sends a purge that failed (an error, a timeout, the breaker
// open) again after BreakerCooldown: a copy an invalidation missed would
// otherwise be served by every instance until it expires (RFC 9111 §4.4).
// Until then this instance's reads of the URL's entries stay misses.
func (r *Redis) retryPurge(j writeJob) {
	var h uint64
	if j.invalidate != nil {
		h = Hash(j.invalidate)
	}
	finish := func() {
		if j.invalidate != nil {
			r.inval.finish(h)
		}
	}
	give := func() {
		r.writeDrops.Add(1)
		finish()
	}
	if j.tries+1 >= maxPurgeTries {
		give()
		return
	}
	j.tries++
	time.AfterFunc(r.o.BreakerCooldown, func() {
		select {
		case <-r.stop:
			give() // closed: nothing will send it
			return
		default:
		}
		if !r.enqueue(h, j) {
			finish() // the full queue counted the drop
		}
	})
}

// exec sends what pipe holds, which stores sets entries.
func (r *Redis) exec(ctx context.Context, pipe redis.Pipeliner, sets int) error {
	if pipe.Len() == 0 {
		return nil
	}
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	if err == nil {
		// Counted once Redis has them: readers wait on this counter.
		r.writes.Add(uint64(sets))
	}
	return err
}

// purgeJob applies an invalidation job: the URL's entries go, then the
// other instances are told.
func (r *Redis) purgeJob(ctx context.Context, j writeJob) error {
	var err error
	if j.invalidate != nil {
		_, err = r.purgeURL(ctx, j.invalidate)
	}
	if j.message != "" {
		if perr := r.c.Publish(ctx, r.o.PurgeChannel, j.message).Err(); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// index adds a stored entry to the URL, host and tag indexes purges read.
// Each index is a sorted set scored by expiry (Redis time), trimmed of
// expired members on every write and expiring with its last member.
func (r *Redis) index(ctx context.Context, pipe redis.Pipeliner, e *Entry, h uint64, ttl time.Duration) {
	ms := strconv.FormatInt(ttl.Milliseconds()+1, 10)
	member := string(appendHash(nil, h))
	host, pathq := splitURL(e.url)
	indexScript.Eval(ctx, pipe, []string{urlIndex(Hash(e.url))}, member, ms)
	indexScript.Eval(ctx, pipe, []string{hostIndex(Hash(host))}, string(pathq), ms)
	forEachTag(e.tags, func(tag []byte) {
		indexScript.Eval(ctx, pipe, []string{tagIndex(tag)}, member, ms)
	})
}

// splitURL splits "host/path?q" at the first "/".
func splitURL(url []byte) (host, pathq []byte) {
	if i := bytes.IndexByte(url, '/'); i >= 0 {
		return url[:i], url[i:]
	}
	return url, nil
}

var indexScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'GT', now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then redis.call('PEXPIREAT', KEYS[1], top[2]) end
return 0
`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// leaseState is the outcome of asking for a fill lease.
type leaseState uint8

const (
	leaseUnknown  leaseState = iota // Redis did not answer: fill without it
	leaseAcquired                   // this instance fills; release it after
	leaseHeld                       // another instance fills; wait for L2
)

// acquireLease asks for the cluster-wide right to fill the key hashed h.
func (r *Redis) acquireLease(h uint64, ttl time.Duration) leaseState {
	var ok bool
	err := r.call(r.o.RedisTimeout, func(ctx context.Context) error {
		v, err := r.c.SetNX(ctx, leaseName(h), r.id, ttl).Result()
		ok = v
		return err
	})
	switch {
	case err != nil:
		return leaseUnknown
	case ok:
		return leaseAcquired
	}
	return leaseHeld
}

// releaseLease queues the release of a lease this instance holds.
func (r *Redis) releaseLease(h uint64) {
	r.enqueue(h, writeJob{release: true, leaseHash: h})
}

// poll reads, in one round trip, the entry of key and whether its lease is
// still held.
func (r *Redis) poll(key []byte, h uint64) (e *Entry, held bool, err error) {
	// The closure's variables are read only once it has returned: after a
	// timeout it may still be running.
	var val []byte
	var lease bool
	mark := r.inval.mark()
	err = r.call(r.o.RedisTimeout, func(ctx context.Context) error {
		pipe := r.c.Pipeline()
		get := pipe.Get(ctx, entryName(h))
		exists := pipe.Exists(ctx, leaseName(h))
		_, err := pipe.Exec(ctx)
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		val, _ = get.Bytes()
		lease = exists.Val() > 0
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if val == nil {
		return nil, lease, nil
	}
	return r.check(key, val, mark), lease, nil
}

// purgeURL deletes every entry indexed under url and returns how many
// existed.
func (r *Redis) purgeURL(ctx context.Context, url []byte) (int, error) {
	idx := urlIndex(Hash(url))
	members, err := r.c.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return 0, err
	}
	host, pathq := splitURL(url)
	pipe := r.c.Pipeline()
	pipe.ZRem(ctx, hostIndex(Hash(host)), string(pathq))
	return deleteIndexed(ctx, pipe, idx, members)
}

// deleteIndexed deletes the entries members of index idx name and removes
// them from it, with what pipe already holds, and returns how many existed.
func deleteIndexed(ctx context.Context, pipe redis.Pipeliner, idx string, members []string) (int, error) {
	dels := make([]*redis.IntCmd, len(members))
	for i, m := range members {
		dels[i] = pipe.Del(ctx, "sluice:c:{"+m+"}")
	}
	if len(members) > 0 {
		pipe.ZRem(ctx, idx, toAny(members)...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, nil
}

// purgePrefix deletes every entry whose URL starts with prefix ("host" or
// "host/path..."). It walks the host's index with ZSCAN: the cost grows with
// the number of URLs cached for that host.
func (r *Redis) purgePrefix(ctx context.Context, prefix []byte) (int, error) {
	host, pathq := splitURL(prefix)
	idx := hostIndex(Hash(host))
	pattern := escapeGlob(pathq) + "*"
	n := 0
	var cursor uint64
	for {
		kv, next, err := r.c.ZScan(ctx, idx, cursor, pattern, 512).Result()
		if err != nil {
			return n, err
		}
		for i := 0; i < len(kv); i += 2 {
			url := append(append([]byte(nil), host...), kv[i]...)
			c, err := r.purgeURL(ctx, url)
			if err != nil {
				return n, err
			}
			n += c
		}
		if next == 0 {
			return n, nil
		}
		cursor = next
	}
}

// purgeTag deletes every entry tagged tag.
func (r *Redis) purgeTag(ctx context.Context, tag []byte) (int, error) {
	idx := tagIndex(tag)
	members, err := r.c.ZRange(ctx, idx, 0, -1).Result()
	if err != nil || len(members) == 0 {
		return 0, err
	}
	return deleteIndexed(ctx, r.c.Pipeline(), idx, members)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// escapeGlob escapes the characters Redis's MATCH treats specially.
func escapeGlob(b []byte) string {
	var out []byte
	for _, ch := range b {
		switch ch {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, ch)
	}
	return string(out)
}

// purge runs a synchronous purge operation under the breaker.
func (r *Redis) purge(ctx context.Context, fn func(context.Context) (int, error)) (int, error) {
	if !r.br.allow() {
		r.skipped.Add(1)
		return 0, fmt.Errorf("cache: redis purge: %w", errBreakerOpen)
	}
	n, err := fn(ctx)
	r.outcome(err)
	if err != nil {
		return n, fmt.Errorf("cache: redis purge: %w", err)
	}
	return n, nil
}
