package cache

import "time"

// Stats is a snapshot of the cache's counters for the gateway's metrics
// collector. Counters only grow; StoredBytes and Breaker are gauges.
type Stats struct {
	// Per tier: a hit answered the request (fresh or stale), a miss did not
	// (nothing stored, or not usable).
	L1Hits, L1Misses uint64
	L2Hits, L2Misses uint64

	StaleServed     uint64 // answers with a stale entry (swr, max-stale, stale-if-error)
	Revalidations   uint64 // fills that sent a stored entry's validators
	Revalidated     uint64 // 304s that updated a stored entry
	CoalescedWaits  uint64 // requests that waited for another's fill on this instance
	CoalescedShared uint64 // ... and got its response
	LeaseWaits      uint64 // fills that found another instance's lease and polled L2
	LeaseHits       uint64 // ... and got that instance's response
	Fills           uint64 // Filler calls
	Stored          uint64 // responses stored
	NotStored       uint64 // origin responses not stored (see Result.NotStored)

	L1Evictions   uint64 // entries evicted to stay within Memory
	L1Expirations uint64 // entries dropped by TTL
	L1Mismatches  uint64 // lookups that found another key's entry under the hash
	L1Clears      uint64 // L1 cleared after the purge subscription reconnected
	StoredBytes   int64  // L1 bytes held, as Entry.Size counts them

	PurgesReceived uint64 // purges other instances broadcast, applied here

	RedisHits        uint64
	RedisMisses      uint64
	RedisErrors      uint64        // failed calls and write batches, timeouts included
	RedisTimeouts    uint64        // calls that did not answer within RedisTimeout
	RedisSkipped     uint64        // calls and write batches skipped by the open breaker
	RedisCorrupt     uint64        // values that did not decode (a miss each)
	RedisMismatches  uint64        // values of another key under the hash (a miss each)
	RedisCalls       uint64        // request-path calls Redis answered ...
	RedisLatency     time.Duration // ... and their total time: mean = RedisLatency / RedisCalls
	RedisWrites      uint64        // entries written
	WriteDrops       uint64        // writes dropped: queue full or breaker open
	Breaker          BreakerState
	BreakerOpenCount uint64 // times the breaker opened
}

// Stats returns a snapshot of the counters of both tiers and their
// coordination.
func (t *Tiered) Stats() Stats {
	c := &t.c
	s := Stats{
		L1Hits: c.l1Hits.Load(), L1Misses: c.l1Misses.Load(),
		L2Hits: c.l2Hits.Load(), L2Misses: c.l2Misses.Load(),
		StaleServed: c.staleServed.Load(), Revalidations: c.revalidations.Load(),
		Revalidated: c.updated.Load(), CoalescedWaits: c.coalesced.Load(),
		CoalescedShared: c.coalescedShared.Load(), LeaseWaits: c.leaseWaits.Load(),
		LeaseHits: c.leaseHits.Load(), Fills: c.fills.Load(), Stored: c.stored.Load(),
		NotStored: c.notStored.Load(), PurgesReceived: c.purgesReceived.Load(),
		L1Clears: c.l1Cleared.Load(),

		L1Evictions: t.l1.evictions.Load(), L1Expirations: t.l1.expirations.Load(),
		L1Mismatches: t.l1.mismatches.Load(), StoredBytes: t.l1.StoredBytes(),
	}
	if r := t.l2; r != nil {
		s.RedisHits, s.RedisMisses = r.hits.Load(), r.misses.Load()
		s.RedisErrors, s.RedisTimeouts = r.errs.Load(), r.timeouts.Load()
		s.RedisSkipped, s.RedisCorrupt = r.skipped.Load(), r.corrupt.Load()
		s.RedisMismatches = r.mismatches.Load()
		s.RedisCalls, s.RedisLatency = r.calls.Load(), time.Duration(r.latency.Load())
		s.RedisWrites, s.WriteDrops = r.writes.Load(), r.writeDrops.Load()
		s.Breaker, s.BreakerOpenCount = r.br.State(), r.br.opens.Load()
	}
	return s
}
