package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/cache"
)

// Cache outcomes counted per route, with the tier that answered.
const (
	cacheHit        = iota // a stored response, fresh
	cacheStale             // a stored response, stale (stale-while-revalidate, stale-if-error, max-stale)
	cacheMiss              // nothing usable stored: fetched
	cacheRevalidate        // a stored response revalidated with the backend
	cacheOutcomes
)

var cacheOutcomeNames = [cacheOutcomes]string{"hit", "stale", "miss", "revalidate"}

const cacheTiers = int(cache.TierOrigin) + 1

// cacheMetrics are the pre-resolved children of one cache-enabled route.
type cacheMetrics struct {
	byOutcome [cacheOutcomes][cacheTiers]prometheus.Counter
}

func (m *metrics) cacheForRoute(name string) *cacheMetrics {
	cm := &cacheMetrics{}
	for o, on := range cacheOutcomeNames {
		for t := range cacheTiers {
			cm.byOutcome[o][t] = m.cacheRequests.WithLabelValues(name, on, cache.Tier(t).String())
		}
	}
	return cm
}

// count records one cache answer.
func (cm *cacheMetrics) count(res *cache.Result) {
	o := cacheHit
	switch {
	case res.Stale && res.Fwd == cache.FwdNone:
		o = cacheStale
	case res.Fwd == cache.FwdMiss || res.Fwd == cache.FwdVaryMiss:
		o = cacheMiss
	case res.Fwd != cache.FwdNone:
		o = cacheRevalidate
	}
	cm.byOutcome[o][res.Tier].Inc()
}

// cacheCollector reports the cache's own counters (per tier, Redis health)
// at scrape time.
type cacheCollector struct {
	stats func() (cache.Stats, bool)
	descs map[string]*prometheus.Desc
}

func newCacheCollector(stats func() (cache.Stats, bool)) *cacheCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sluice_cache_"+name, help, labels, nil)
	}
	return &cacheCollector{stats: stats, descs: map[string]*prometheus.Desc{
		"lookups":     d("lookups_total", "Cache lookups by tier and result (hit, miss).", "tier", "result"),
		"stale":       d("stale_served_total", "Answers with a stale entry (stale-while-revalidate, stale-if-error, max-stale)."),
		"revalidated": d("revalidations_total", "Fills that sent a stored entry's validators, by result (sent, updated: a 304 refreshed the entry).", "result"),
		"coalesced":   d("coalesced_waits_total", "Requests that waited for another request's fill on this instance, by result (waited, shared).", "result"),
		"lease":       d("lease_waits_total", "Fills that found another instance filling the key and waited for Redis, by result (waited, shared).", "result"),
		"fills":       d("fills_total", "Requests sent to a backend to fill the cache, by result (stored, not_stored).", "result"),
		"evictions":   d("evictions_total", "Entries dropped from memory, by reason (size: to stay within cache.memory, expired).", "reason"),
		"bytes":       d("stored_bytes", "Bytes held in memory (L1), as entries are counted against cache.memory."),
		"purges":      d("purges_received_total", "Purges broadcast by other instances and applied here."),
		"redis_err":   d("redis_errors_total", "Failed Redis calls by kind (error, timeout, skipped: breaker open, corrupt: undecodable value).", "kind"),
		"redis_lat":   d("redis_latency_seconds_total", "Total time of request-path Redis calls; divide by sluice_cache_redis_calls_total."),
		"redis_calls": d("redis_calls_total", "Request-path Redis calls that answered."),
		"drops":       d("redis_write_drops_total", "Writes to Redis dropped (queue full or breaker open)."),
		"breaker":     d("redis_breaker_open", "1 while the breaker skips Redis after failures."),
	}}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.stats()
	if !ok {
		return
	}
	counter := func(name string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), labels...)
	}
	counter("lookups", st.L1Hits, "l1", "hit")
	counter("lookups", st.L1Misses, "l1", "miss")
	counter("lookups", st.L2Hits, "l2", "hit")
	counter("lookups", st.L2Misses, "l2", "miss")
	counter("stale", st.StaleServed)
	counter("revalidated", st.Revalidations, "sent")
	counter("revalidated", st.Revalidated, "updated")
	counter("coalesced", st.CoalescedWaits, "waited")
	counter("coalesced", st.CoalescedShared, "shared")
	counter("lease", st.LeaseWaits, "waited")
	counter("lease", st.LeaseHits, "shared")
	counter("fills", st.Stored, "stored")
	counter("fills", st.NotStored, "not_stored")
	counter("evictions", st.L1Evictions, "size")
	counter("evictions", st.L1Expirations, "expired")
	counter("purges", st.PurgesReceived)
	counter("redis_err", st.RedisErrors, "error")
	counter("redis_err", st.RedisTimeouts, "timeout")
	counter("redis_err", st.RedisSkipped, "skipped")
	counter("redis_err", st.RedisCorrupt, "corrupt")
	counter("redis_calls", st.RedisCalls)
	counter("drops", st.WriteDrops)
	ch <- prometheus.MustNewConstMetric(c.descs["redis_lat"], prometheus.CounterValue, st.RedisLatency.Seconds())
	ch <- prometheus.MustNewConstMetric(c.descs["bytes"], prometheus.GaugeValue, float64(st.StoredBytes))
	open := 0.0
	if st.Breaker != cache.BreakerClosed {
		open = 1
	}
	ch <- prometheus.MustNewConstMetric(c.descs["breaker"], prometheus.GaugeValue, open)
}
