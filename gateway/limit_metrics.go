package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/ratelimit"
)

// limitCollector reports the rate limits of the live table at scrape time:
// the decisions each route's limits took (atomics on the Table, carried over
// by reloads) and each limiter's Stats. Nothing is counted through
// Prometheus on the request path.
type limitCollector struct {
	tables func() *Table

	requests, keys, evictions, degraded, instances, syncErrors, syncDuration *prometheus.Desc
}

func newLimitCollector(tables func() *Table) *limitCollector {
	limit := []string{"limit"}
	return &limitCollector{
		tables: tables,
		requests: prometheus.NewDesc("sluice_ratelimit_requests_total",
			"Rate-limit decisions by limit, route and result (allowed, denied). Denied includes requests refused for lacking the client key (missing: deny).",
			[]string{"limit", "route", "result"}, nil),
		keys: prometheus.NewDesc("sluice_ratelimit_keys",
			"Clients a limit tracks on this instance (bounded by max_keys).", limit, nil),
		evictions: prometheus.NewDesc("sluice_ratelimit_evictions_total",
			"Clients a limit forgot: idle ones, or the fullest to stay under max_keys.", limit, nil),
		degraded: prometheus.NewDesc("sluice_ratelimit_degraded",
			"1 while a global limit cannot reach Redis and enforces this instance's share of the limit (or refuses, with fail_closed); 0 otherwise and for local limits.", limit, nil),
		instances: prometheus.NewDesc("sluice_ratelimit_instances",
			"Gateway instances a global limit saw alive through Redis, among which it shares the limit when degraded.", limit, nil),
		syncErrors: prometheus.NewDesc("sluice_ratelimit_sync_errors_total",
			"Reconciliations of a global limit with Redis that failed or timed out.", limit, nil),
		syncDuration: prometheus.NewDesc("sluice_ratelimit_sync_duration_seconds",
			"Time spent reconciling a global limit with Redis, per round (count: rounds attempted).", limit, nil),
	}
}

func (c *limitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.keys
	ch <- c.evictions
	ch <- c.degraded
	ch <- c.instances
	ch <- c.syncErrors
	ch <- c.syncDuration
}

func (c *limitCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.tables()
	if t == nil {
		return
	}
	for _, r := range t.routes {
		for _, l := range r.limits.list {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(l.counts.allowed.Load()), l.name, r.name, "allowed")
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(l.counts.denied.Load()), l.name, r.name, "denied")
		}
	}
	for _, l := range t.limitList {
		st := l.lim.Stats()
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(st.Keys), l.name)
		ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(st.Evictions), l.name)
		degraded := 0.0
		if st.Degraded {
			degraded = 1
		}
		ch <- prometheus.MustNewConstMetric(c.degraded, prometheus.GaugeValue, degraded, l.name)
		if _, global := l.lim.(*ratelimit.Global); !global {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(st.Instances), l.name)
		ch <- prometheus.MustNewConstMetric(c.syncErrors, prometheus.CounterValue, float64(st.SyncErrors), l.name)
		ch <- prometheus.MustNewConstSummary(c.syncDuration, st.SyncRounds, st.SyncLatency.Seconds(), nil, l.name)
	}
}
