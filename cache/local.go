package cache

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Local is the in-process tier (L1): a ristretto cache keyed by the hash of
// the key, with each entry's Size as its cost, bounded by Options.Memory.
// It keeps an index from URL to keys so that a purge or an invalidation of a
// URL finds every variant without a scan. Safe for concurrent use.
type Local struct {
	c    *ristretto.Cache[uint64, *Entry]
	hash func([]byte) uint64 // Hash; tests force collisions through it

	urls [64]urlShard // URL hash → key hashes of entries present

	mismatches             atomic.Uint64
	evictions, expirations atomic.Uint64
	clearing               atomic.Bool // clear is running: its exits are not evictions
}

// urlShard maps a URL's hash to the keys stored for it, with a count of
// how many times each key is in the cache (a key replaced by a Set is in
// it twice until ristretto lets go of the old value).
type urlShard struct {
	mu sync.Mutex
	m  map[uint64][]keyRef
}

type keyRef struct {
	hash uint64
	n    int32
}

// NewLocal builds L1 from o's Memory and Counters.
func NewLocal(o Options) (*Local, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	l := &Local{hash: Hash}
	for i := range l.urls {
		l.urls[i].m = make(map[uint64][]keyRef)
	}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *Entry]{
		NumCounters: int64(o.Counters),
		MaxCost:     o.Memory,
		BufferItems: 64,
		// Entry.Size already counts ristretto's bookkeeping.
		IgnoreInternalCost: true,
		OnEvict: func(it *ristretto.Item[*Entry]) {
			switch {
			case l.clearing.Load():
			case !it.Expiration.IsZero() && !it.Expiration.After(time.Now()):
				l.expirations.Add(1)
			default:
				l.evictions.Add(1)
			}
		},
		OnExit: l.exit,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: l1: %w", err)
	}
	l.c = c
	return l, nil
}

// Get returns the entry stored under key, or nil. It does not allocate.
func (l *Local) Get(key []byte) *Entry {
	e, ok := l.c.Get(l.hash(key))
	if !ok || e == nil {
		return nil
	}
	if !bytes.Equal(e.Key, key) {
		l.mismatches.Add(1)
		return nil
	}
	return e
}

// Set stores e for ttl (real time). ristretto applies sets asynchronously
// and may refuse one (admission policy, full buffers); Wait makes the sets
// made so far visible.
func (l *Local) Set(e *Entry, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	h := l.hash(e.Key)
	l.ref(e, h, 1)
	if !l.c.SetWithTTL(h, e, int64(e.Size()), ttl) {
		l.ref(e, h, -1)
	}
}

// Wait blocks until every Set made before it is visible to Get.
func (l *Local) Wait() { l.c.Wait() }

// Del removes the entry stored under e's key, if any.
func (l *Local) Del(e *Entry) { l.c.Del(l.hash(e.Key)) }

// Close stops ristretto's goroutines and drops every entry.
func (l *Local) Close() { l.c.Close() }

// StoredBytes is the sum of the sizes of the entries held.
func (l *Local) StoredBytes() int64 { return l.c.MaxCost() - l.c.RemainingCost() }

// exit is ristretto's OnExit: a value left the cache (replaced, deleted,
// evicted, expired or refused).
func (l *Local) exit(e *Entry) {
	if e != nil {
		l.ref(e, l.hash(e.Key), -1)
	}
}

// ref adds d to the count of e's key under e's URL.
func (l *Local) ref(e *Entry, h uint64, d int32) {
	uh := Hash(e.url)
	s := &l.urls[uh%uint64(len(l.urls))]
	s.mu.Lock()
	defer s.mu.Unlock()
	refs := s.m[uh]
	for i := range refs {
		if refs[i].hash == h {
			refs[i].n += d
			if refs[i].n == 0 {
				refs = append(refs[:i], refs[i+1:]...)
				if len(refs) == 0 {
					delete(s.m, uh)
				} else {
					s.m[uh] = refs
				}
			}
			return
		}
	}
	s.m[uh] = append(refs, keyRef{hash: h, n: d})
}

// purgeURL removes every entry (all variants, both schemes) of url and
// returns how many there were.
func (l *Local) purgeURL(url []byte) int {
	uh := Hash(url)
	s := &l.urls[uh%uint64(len(l.urls))]
	s.mu.Lock()
	hashes := make([]uint64, 0, len(s.m[uh]))
	for _, r := range s.m[uh] {
		hashes = append(hashes, r.hash)
	}
	s.mu.Unlock()
	n := 0
	for _, h := range hashes {
		if e, ok := l.c.Get(h); ok && e != nil && bytes.Equal(e.url, url) {
			if !e.marker {
				n++
			}
			l.c.Del(h)
		}
	}
	return n
}

// purgeMatching removes every entry match accepts and returns how many
// responses went (Vary index entries are removed but not counted). It scans
// the whole cache: for purges by prefix and tag, which are rare.
func (l *Local) purgeMatching(match func(*Entry) bool) int {
	var hashes []uint64
	n := 0
	l.c.IterValues(func(e *Entry) bool {
		if e != nil && match(e) {
			hashes = append(hashes, l.hash(e.Key))
			if !e.marker {
				n++
			}
		}
		return false
	})
	for _, h := range hashes {
		l.c.Del(h)
	}
	return n
}

// clear drops every entry.
func (l *Local) clear() {
	l.clearing.Store(true)
	l.c.Clear()
	l.clearing.Store(false)
}
