package cache

import "time"

// Store is what one cache tier offers: entries by full key. A Get that finds
// an entry stored under the same hash but another key misses. Stores never
// return errors: a tier that fails misses. Local sets synchronously (but
// see Local.Wait); Redis queues its writes.
type Store interface {
	Get(key []byte) *Entry
	Set(e *Entry, ttl time.Duration)
	Del(e *Entry)
}

var (
	_ Store = (*Local)(nil)
	_ Store = (*Redis)(nil)
)
