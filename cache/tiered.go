package cache

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Tier says where a response came from.
type Tier uint8

// Tiers.
const (
	TierNone   Tier = iota // nothing answered (only-if-cached miss)
	TierL1                 // this instance's memory
	TierL2                 // Redis, shared by the instances
	TierOrigin             // a backend, through a fill (this request's or one it waited for)
)

func (t Tier) String() string {
	switch t {
	case TierL1:
		return "l1"
	case TierL2:
		return "l2"
	case TierOrigin:
		return "origin"
	}
	return "none"
}

// Fwd says why the cache went to the origin, as the "fwd" parameter of
// Cache-Status (RFC 9211 §2.2).
type Fwd uint8

// Reasons to forward.
const (
	FwdNone     Fwd = iota // answered from storage
	FwdMiss                // nothing stored for the key
	FwdVaryMiss            // stored, but not for this request's Vary values
	FwdStale               // stored but stale (or no-cache): revalidated
	FwdRequest             // stored and fresh, but the request's directives asked for validation
)

func (f Fwd) String() string {
	switch f {
	case FwdMiss:
		return "miss"
	case FwdVaryMiss:
		return "vary-miss"
	case FwdStale:
		return "stale"
	case FwdRequest:
		return "request"
	}
	return ""
}

// Filler fetches a response from the origin for the cache. The gateway
// implements it on its per-request state; Tiered calls it from Get, in the
// request's own goroutine, at most twice.
type Filler interface {
	// Fill forwards the request upstream and returns what came back, nil
	// when no response came (connect error, timeout). With stale nil it
	// sends the request without the client's conditional fields. With stale
	// set it revalidates: it sends stale.Validators() as If-None-Match and
	// If-Modified-Since instead. If that gets a 304 that does not match the
	// stored entry, Fill is called again with nil. A HEAD is forwarded as a
	// HEAD; its response is never stored (a HEAD hit is answered from a
	// stored GET).
	Fill(stale *Entry) *Response
}

// Result is how a request was answered. The gateway writes Entry when it is
// not nil; otherwise the response its Filler fetched (or an error it made)
// stands, unless OnlyIfCached.
type Result struct {
	// Entry is the response to send. It is nil when the origin's response
	// is not stored or shared (then it is the Filler's to send as it is) or
	// when nothing answered an only-if-cached request.
	Entry *Entry
	// NotModified: the client's If-None-Match or If-Modified-Since matched
	// Entry: answer 304 with Entry's NotModifiedField fields.
	NotModified bool
	// OnlyIfCached: the request had only-if-cached and nothing stored could
	// answer it; reply 504 (RFC 9111 §5.2.1.7). The Filler was not called.
	OnlyIfCached bool

	Tier Tier // what answered
	// Fwd is why the origin was asked, FwdNone when it was not. FwdStatus is
	// the status the origin gave (0: none), 304 for a revalidation.
	Fwd       Fwd
	FwdStatus int
	// Stored: the origin's response was stored. NotStored says why not,
	// when the origin was asked and it was not.
	Stored    bool
	NotStored NotStored
	// Collapsed: the request waited for another request's fill, on this
	// instance or (Tier L2) on another.
	Collapsed bool
	// Stale: Entry is stale, served under stale-while-revalidate, max-stale
	// or stale-if-error.
	Stale bool
	// Refresh: stale-while-revalidate chose this request to refresh the
	// entry in the background; call Tiered.Refresh from a goroutine, with a
	// copy of the request and a Filler that does not use the client's
	// connection. Only one request per key gets it at a time.
	Refresh bool

	// Age is Entry's current age, for the Age header; TTL is what is left
	// of its freshness (negative when stale), for Cache-Status's ttl.
	Age, TTL time.Duration
}

// Tiered is the cache of one gateway instance: L1, then L2, then one
// coalesced fill per key, with a cluster-wide lease so that one instance
// fills a hot key. See doc.go.
type Tiered struct {
	l1 *Local
	l2 *Redis // nil: L1 only
	o  Options

	flights flights

	refreshMu  sync.Mutex
	refreshing map[uint64]time.Time // keys being refreshed in the background (swr); guarded by refreshMu

	scratch sync.Pool // *[]byte, for secondary (Vary) keys

	stopSub chan struct{}
	subDone chan struct{}

	fallback Policy // for a Request without one: no heuristic freshness, no key parts

	c counters
}

type counters struct {
	l1Hits, l1Misses, l2Hits, l2Misses  atomic.Uint64
	staleServed, revalidations, updated atomic.Uint64
	coalesced, coalescedShared          atomic.Uint64
	leaseWaits, leaseHits               atomic.Uint64
	fills, stored, notStored            atomic.Uint64
	purgesReceived, l1Cleared           atomic.Uint64
}

// NewTiered builds the cache from its tiers; l2 may be nil (L1 alone). With
// L2, it subscribes to Options.PurgeChannel so that purges made on any
// instance reach this one's L1. Close releases what it started; the tiers'
// own Close is the caller's.
func NewTiered(l1 *Local, l2 *Redis, o Options) (*Tiered, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if l1 == nil {
		return nil, errors.New("cache: tiered: nil L1")
	}
	t := &Tiered{l1: l1, l2: l2, o: o, refreshing: make(map[uint64]time.Time),
		fallback: Policy{MaxEntry: o.MaxEntry}}
	t.scratch.New = func() any { b := make([]byte, 0, 512); return &b }
	if l2 != nil {
		t.stopSub = make(chan struct{})
		t.subDone = make(chan struct{})
		ready := make(chan struct{})
		go t.subscribe(ready)
		<-ready
	}
	return t, nil
}

// Close stops the purge subscription.
func (t *Tiered) Close() {
	if t.stopSub != nil {
		select {
		case <-t.stopSub:
		default:
			close(t.stopSub)
			<-t.subDone
		}
	}
}

// Get answers a GET or HEAD request of a cache-enabled route. key is the
// request's primary key (AppendKey); f fetches from the origin on a miss.
// On an L1 hit it does not allocate. It never returns an error: a failing
// tier is a miss, and a failing origin is the Filler's response (or a stale
// entry, under stale-if-error).
func (t *Tiered) Get(r *Request, key []byte, f Filler) Result {
	if r.Policy == nil {
		r.Policy = &t.fallback
	}
	now := t.o.Now()
	m := miss{fwd: FwdMiss}
	e, vary := t.lookupL1(r, key)
	if e != nil {
		if res, ok := t.serve(e, TierL1, r, key, now); ok {
			t.c.l1Hits.Add(1)
			return res
		}
		if !e.part.OK { // a part is never revalidated: the origin's answer replaces it
			m.stale, m.tier = e, TierL1
		}
	} else if vary {
		m.fwd = FwdVaryMiss
	}
	t.c.l1Misses.Add(1)
	if t.l2 != nil {
		e2, vary2 := t.lookupL2(r, key)
		if e2 != nil {
			if res, ok := t.serve(e2, TierL2, r, key, now); ok {
				t.c.l2Hits.Add(1)
				t.keepL1(e2, r, now)
				return res
			}
			if !e2.part.OK && (m.stale == nil || e2.ResponseTime.After(m.stale.ResponseTime)) {
				m.stale, m.tier = e2, TierL2
			}
		} else if vary2 && m.stale == nil {
			m.fwd = FwdVaryMiss
		}
		t.c.l2Misses.Add(1)
	}
	if m.stale != nil {
		m.fwd = FwdStale
		if m.stale.usable(r, now) == RevalidateRequested {
			m.fwd = FwdRequest
		}
	}
	if r.CacheControl.OnlyIfCached {
		return Result{OnlyIfCached: true}
	}
	return t.fill(r, key, m, f)
}

// miss is what a lookup learned before a fill: the stored entry to
// revalidate (nil: none), the tier it came from and why the origin is asked.
type miss struct {
	stale *Entry
	tier  Tier
	fwd   Fwd
}

// staleResult serves m.stale, stale, after the origin failed.
func (t *Tiered) staleResult(m miss, r *Request, status int, now time.Time) Result {
	t.c.staleServed.Add(1)
	res := filled(m.stale, m.tier, r, m.fwd, status, now)
	res.Stale = true
	return res
}

// filled is the result of answering r with e from tier; Stored when e came
// from the origin.
func filled(e *Entry, tier Tier, r *Request, fwd Fwd, status int, now time.Time) Result {
	age := e.Age(now)
	return Result{
		Entry: e, Tier: tier, Fwd: fwd, FwdStatus: status, Stored: tier == TierOrigin,
		Age: age, TTL: e.lifetime - age, NotModified: e.notModified(r, now),
	}
}

// serve answers from a stored entry when its freshness allows, and it
// holds what r asks for (a part only while fresh: no stale-* for it).
func (t *Tiered) serve(e *Entry, tier Tier, r *Request, key []byte, now time.Time) (Result, bool) {
	if !e.covers(r) {
		return Result{}, false
	}
	d := e.usable(r, now)
	if d != Fresh && (e.part.OK || d != StaleAccepted && d != StaleWhileRevalidate) {
		return Result{}, false
	}
	res := filled(e, tier, r, FwdNone, 0, now)
	if d != Fresh {
		res.Stale = true
		t.c.staleServed.Add(1)
		if d == StaleWhileRevalidate {
			res.Refresh = t.claimRefresh(Hash(key), now)
		}
	}
	return res, true
}

// lookupL1 finds the entry for r in L1, following a Vary index entry to the
// variant. vary reports that an index entry was found but no variant.
func (t *Tiered) lookupL1(r *Request, key []byte) (e *Entry, vary bool) {
	e = t.l1.Get(key)
	if e == nil || !e.marker {
		return e, false
	}
	bp := t.scratch.Get().(*[]byte)
	sec := appendVaryKey((*bp)[:0], key, e.vary, r.Fields)
	v := t.l1.Get(sec)
	*bp = sec
	t.scratch.Put(bp)
	return v, v == nil
}

// lookupL2 is lookupL1 against Redis.
func (t *Tiered) lookupL2(r *Request, key []byte) (e *Entry, vary bool) {
	e = t.l2.Get(key)
	if e == nil || !e.marker {
		return e, false
	}
	v := t.variantL2(r, key, e)
	return v, v == nil
}

// variantL2 reads from Redis the variant of r that the Vary index entry
// marker points to and, when there is one, keeps marker in L1 for as long.
func (t *Tiered) variantL2(r *Request, key []byte, marker *Entry) *Entry {
	v := t.l2.Get(appendVaryKey(nil, key, marker.vary, r.Fields))
	if v != nil {
		t.l1.Set(marker, max(time.Second, v.keepFor(t.o.Now(), t.o.KeepStale, r.Policy.StaleIfError)))
	}
	return v
}

// keepL1 copies an entry read from L2 into L1, for r's route.
func (t *Tiered) keepL1(e *Entry, r *Request, now time.Time) {
	t.l1.Set(e, e.keepFor(now, t.o.KeepStale, r.Policy.StaleIfError))
}

// coalescable reports whether r may lead or join a coalesced fill: only a
// GET whose response could be stored. A HEAD miss goes to the origin on its
// own (its response has no body to store or share).
func coalescable(r *Request) bool {
	return string(r.Method) == "GET" && !r.CacheControl.NoStore
}

// fill asks the origin, once per key across the requests that miss
// together, and across instances when it can take the lease.
func (t *Tiered) fill(r *Request, key []byte, m miss, f Filler) Result {
	if !coalescable(r) {
		res, _ := t.fetch(r, key, m, f, 0, false)
		return res
	}
	h := Hash(key)
	fl, leader := t.flights.join(h, key)
	if !leader {
		return t.await(fl, r, key, m, f)
	}
	var out flightOutcome
	defer func() { t.flights.land(h, key, fl, out) }()

	// Another request may have filled the key between our miss and joining.
	if e, _ := t.lookupL1(r, key); e != nil && e.covers(r) && e.usable(r, t.o.Now()) == Fresh {
		out = flightOutcome{entry: e, tier: TierL1}
		res := filled(e, TierL1, r, FwdNone, 0, t.o.Now())
		res.Collapsed = true
		return res
	}
	leased := false
	if t.l2 != nil {
		switch t.l2.acquireLease(h, t.o.LeaseTTL) {
		case leaseAcquired:
			leased = true
		case leaseHeld:
			if e := t.awaitRemote(r, key, h); e != nil {
				out = flightOutcome{entry: e, tier: TierL2}
				res := filled(e, TierL2, r, m.fwd, 0, t.o.Now())
				res.Collapsed = true
				return res
			}
		}
	}
	res, o := t.fetch(r, key, m, f, h, leased)
	out = o
	return res
}

// await waits for the leader's outcome; without a shareable one, the
// request fetches for itself.
func (t *Tiered) await(fl *flight, r *Request, key []byte, m miss, f Filler) Result {
	t.c.coalesced.Add(1)
	out, ok := fl.wait(t.o.LockTimeout)
	now := t.o.Now()
	if ok && out.entry != nil && t.matches(out.entry, r, key) {
		t.c.coalescedShared.Add(1)
		fwd := m.fwd
		if out.tier == TierL1 {
			fwd = FwdNone
		}
		res := filled(out.entry, out.tier, r, fwd, out.status, now)
		res.Collapsed = true
		return res
	}
	if ok && out.failed && m.stale != nil && m.stale.staleIfError(r, now) {
		res := t.staleResult(m, r, out.status, now)
		res.Collapsed = true
		return res
	}
	res, _ := t.fetch(r, key, m, f, 0, false)
	return res
}

// matches reports whether an entry filled for another request answers r:
// same primary key, and for a response with Vary, the same values of the
// fields it varies on; a part (the answer to another range) only when it
// holds r's range.
func (t *Tiered) matches(e *Entry, r *Request, key []byte) bool {
	if !e.covers(r) {
		return false
	}
	if len(e.vary) == 0 {
		return string(e.Key) == string(key)
	}
	bp := t.scratch.Get().(*[]byte)
	sec := appendVaryKey((*bp)[:0], key, e.vary, r.Fields)
	ok := string(sec) == string(e.Key)
	*bp = sec
	t.scratch.Put(bp)
	return ok
}

// awaitRemote polls L2 while another instance holds the key's lease, for at
// most half the lock timeout, and returns its result if it is one this
// request can use.
func (t *Tiered) awaitRemote(r *Request, key []byte, h uint64) *Entry {
	t.c.leaseWaits.Add(1)
	deadline := time.Now().Add(t.o.LockTimeout / 2)
	for time.Now().Before(deadline) {
		time.Sleep(t.o.LeasePoll)
		e, held, err := t.l2.poll(key, h)
		if err != nil {
			return nil
		}
		if e != nil {
			if e.marker {
				if e = t.variantL2(r, key, e); e == nil {
					return nil
				}
			}
			if d := e.usable(r, t.o.Now()); d != Fresh || !e.covers(r) {
				return nil
			}
			t.c.leaseHits.Add(1)
			t.keepL1(e, r, t.o.Now())
			return e
		}
		if !held {
			return nil
		}
	}
	return nil
}

// fetch calls the Filler and stores what may be stored. h and leased say
// whether it holds the key's lease, to release once the entry is in L2.
func (t *Tiered) fetch(r *Request, key []byte, m miss, f Filler, h uint64, leased bool) (Result, flightOutcome) {
	release := func() {
		if leased {
			t.l2.releaseLease(h)
			leased = false
		}
	}
	defer release()

	stale, fwd := m.stale, m.fwd
	reqTime := t.o.Now()
	resp := f.Fill(stale)
	respTime := t.o.Now()
	t.c.fills.Add(1)
	if stale != nil {
		t.c.revalidations.Add(1)
	}
	status := 0
	if resp != nil {
		status = resp.Status
	}
	now := respTime
	if OriginFailed(status) && stale != nil && stale.staleIfError(r, now) {
		return t.staleResult(m, r, status, now), flightOutcome{status: status, failed: true}
	}
	if resp == nil {
		t.c.notStored.Add(1)
		return Result{Tier: TierOrigin, Fwd: fwd, NotStored: NotStoredFailed},
			flightOutcome{failed: true}
	}
	if status == 304 && stale != nil {
		m304 := ParseMeta(304, resp.Header, reqTime, respTime, now)
		if e, why, keep, ok := stale.revalidated(resp, &m304, r, now); ok {
			if why == StoreOK && resp.Unstorable != StoreOK {
				why, keep = resp.Unstorable, false
			}
			t.c.updated.Add(1)
			res := filled(e, TierOrigin, r, fwd, 304, now)
			if why != StoreOK {
				// The answer to this request, but not one to store; when
				// the response itself forbids it, the old entry may not
				// answer again either.
				res.Stored, res.NotStored = false, why
				t.c.notStored.Add(1)
				if !keep {
					t.drop(stale)
				}
				return res, flightOutcome{status: 304}
			}
			if !t.store(e, r, key, now, h, &leased) {
				// Fresh for no time: answer this request with it, keep nothing.
				res.Stored, res.NotStored = false, NotStoredNoFreshness
				t.drop(stale)
				return res, flightOutcome{status: 304}
			}
			return res, flightOutcome{entry: e, tier: TierOrigin, status: 304}
		}
		// The 304 is for another representation: fetch in full.
		reqTime = t.o.Now()
		resp = f.Fill(nil)
		respTime = t.o.Now()
		t.c.fills.Add(1)
		if resp == nil {
			t.c.notStored.Add(1)
			return Result{Tier: TierOrigin, Fwd: fwd, NotStored: NotStoredFailed},
				flightOutcome{failed: true}
		}
		status = resp.Status
	}

	meta := ParseMeta(status, resp.Header, reqTime, respTime, now)
	why := Storable(r.Method, &r.CacheControl, r.Authorization, &meta, r.Policy.Heuristic)
	if why == StoreOK && (resp.Streamed || int64(len(resp.Body)) > r.Policy.MaxEntry) {
		why = NotStoredTooLarge
	}
	switch {
	case why != StoreOK:
	case status == 206 && int64(len(resp.Body)) != meta.Range.Len():
		why = NotStoredRange // the body is not the part Content-Range names
	case resp.Ranged && status != 200 && status != 206:
		why = NotStoredRange // a 416 is about the range asked for only
	}
	if why == StoreOK {
		why = resp.Unstorable
	}
	var e *Entry
	if why == StoreOK {
		sec := key
		vary := normaliseVary(resp.Header)
		if vary != nil {
			sec = appendVaryKey(nil, key, vary, r.Fields)
		}
		e = newEntry(sec, AppendURL(nil, r.Host, r.Path, r.Query), status, resp.Header, resp.Body,
			vary, surrogateKeys(resp.Header), &meta, Lifetime(&meta, r.Policy.Heuristic))
		if !t.store(e, r, key, now, h, &leased) {
			e, why = nil, NotStoredNoFreshness
		}
	}
	if e == nil {
		t.c.notStored.Add(1)
		if stale != nil && status != 304 && !OriginFailed(status) {
			// The origin answered anew with something not stored: the old
			// entry must not answer again.
			t.drop(stale)
		}
		return Result{Tier: TierOrigin, Fwd: fwd, FwdStatus: status, NotStored: why},
			flightOutcome{status: status, failed: OriginFailed(status)}
	}
	return filled(e, TierOrigin, r, fwd, status, now),
		flightOutcome{entry: e, tier: TierOrigin, status: status}
}

// store puts a filled entry (and the Vary index entry of its primary key)
// in L1, waits until L1 shows it, and queues it for L2 together with the
// release of the lease, so that instances polling L2 find the entry before
// the lease is gone. It reports false, storing nothing, when the entry
// would expire at once. r is the request that filled it, for its route.
func (t *Tiered) store(e *Entry, r *Request, key []byte, now time.Time, h uint64, leased *bool) bool {
	ttl := e.keepFor(now, t.o.KeepStale, r.Policy.StaleIfError)
	if ttl <= 0 {
		return false
	}
	t.c.stored.Add(1)
	var marker *Entry
	if len(e.vary) > 0 {
		marker = newMarker(key, e.url, e.vary, now)
		t.l1.Set(marker, ttl)
	}
	t.l1.Set(e, ttl)
	t.l1.Wait()
	if t.l2 == nil {
		return true
	}
	j := writeJob{set: [2]stored{{e: marker, ttl: ttl}, {e: e, ttl: ttl}}}
	if *leased {
		j.release, j.leaseHash = true, h
		*leased = false
	}
	if !t.l2.enqueue(Hash(e.url), j) && j.release { // the URL's writer: see Redis.queues
		*leased = true // dropped: release on its own
	}
	return true
}

// drop removes an entry from both tiers.
func (t *Tiered) drop(e *Entry) {
	t.l1.Del(e)
	if t.l2 != nil {
		t.l2.Del(e)
	}
}

// claimRefresh reports whether the caller is the one to refresh the key in
// the background. A claim lapses after LockTimeout, in case its holder
// never calls Refresh.
func (t *Tiered) claimRefresh(h uint64, now time.Time) bool {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	if at, ok := t.refreshing[h]; ok && now.Sub(at) < t.o.LockTimeout {
		return false
	}
	t.refreshing[h] = now
	return true
}

// Refresh revalidates the entry of key for r and stores the result, for a
// request that got Result.Refresh. It runs the fill as Get would (coalesced,
// under the lease), then lets the key be refreshed again. Call it in a
// goroutine of its own with a Request and Filler that outlive the client's
// request.
func (t *Tiered) Refresh(r *Request, key []byte, f Filler) {
	h := Hash(key)
	defer func() {
		t.refreshMu.Lock()
		delete(t.refreshing, h)
		t.refreshMu.Unlock()
	}()
	m := miss{fwd: FwdStale, tier: TierL1}
	m.stale, _ = t.lookupL1(r, key)
	if m.stale == nil && t.l2 != nil {
		m.stale, _ = t.lookupL2(r, key)
		m.tier = TierL2
	}
	if m.stale != nil && m.stale.part.OK {
		// A part stored since the refresh was claimed: never revalidated
		// (Get); the refresh fetches the whole response instead.
		m.stale, m.fwd = nil, FwdMiss
	}
	t.fill(r, key, m, f)
}
