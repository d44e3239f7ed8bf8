package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics owns the gateway's Prometheus registry. Each Server has its own
// registry (no global state), so tests and several servers in one process do
// not collide.
//
// Per-route children are resolved when a Table is built (routeMetrics), so the
// request path never calls WithLabelValues. Backend metrics are not counted
// per request at all: the balancer keeps atomic counters on each Backend and
// backendCollector reads them at scrape time.
type metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	cacheRequests *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	inFlight      *prometheus.GaugeVec
	retries       *prometheus.CounterVec
	shed          *prometheus.CounterVec

	upstreamDuration *prometheus.HistogramVec
	tunnels          *prometheus.CounterVec // tunnel_metrics.go

	reloads         *prometheus.CounterVec
	reloadOK        prometheus.Counter
	reloadFailed    prometheus.Counter
	lastReload      prometheus.Gauge
	accessDropped   prometheus.Counter
	unmatched       routeMetrics // requests refused before a route was chosen
	backendsScraper *backendCollector

	// removed holds when each route that a reload took away went; its
	// series are kept until routeRetention has passed (see retire). Only
	// Reload touches it, under Server.mu.
	removed map[string]time.Time
}

// routeRetention is how long the series of a route removed by a reload stay
// exported. A route that comes back within it (a reload undone, a route
// renamed and renamed back) continues its counters instead of restarting
// them from zero under a series a scraper still holds; a route gone for good
// stops being exported after it, so renamed routes do not pile up.
const routeRetention = 15 * time.Minute

func newMetrics(tables func() *Table) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.cacheRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_cache_requests_total",
		Help: "Answers of cache-enabled routes by route, result (hit, stale, miss, revalidate) and the tier that answered (l1, l2, origin).",
	}, []string{"route", "result", "tier"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_requests_total",
		Help: "Requests answered, by route and status class. Route \"\" counts requests refused before routing (400, 404, ...).",
	}, []string{"route", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_request_duration_seconds",
		Help:    "Time from reading the request to handing the response to the server, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_requests_in_flight",
		Help: "Requests being handled, by route.",
	}, []string{"route"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_retries_total",
		Help: "Upstream retries by route and result: sent, or denied because the route's retry budget for the pool was spent.",
	}, []string{"route", "result"})
	m.shed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_shed_total",
		Help: "Requests answered 503 because the gateway was past its route's share of server.max_concurrency.",
	}, []string{"route"})
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_upstream_duration_seconds",
		Help:    "Time of successful upstream exchanges (one attempt: send the request, read the whole response), by pool.",
		Buckets: []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"pool"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_config_reloads_total",
		Help: "Configuration reloads by result (success, failure). A failed reload changes nothing.",
	}, []string{"result"})
	m.reloadOK = m.reloads.WithLabelValues("success")
	m.reloadFailed = m.reloads.WithLabelValues("failure")
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sluice_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last configuration that was loaded and applied.",
	})
	m.accessDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_access_log_dropped_total",
		Help: "Access log lines dropped because the writer could not keep up.",
	})
	m.tunnels = newTunnelCounter()
	m.backendsScraper = newBackendCollector(tables)
	m.reg.MustRegister(m.tunnels, m.requests, m.cacheRequests, m.duration, m.inFlight, m.retries, m.shed, m.upstreamDuration, m.reloads, m.lastReload, m.accessDropped,
		m.backendsScraper,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.unmatched = m.forRoute("")
	return m
}

// routeMetrics are the pre-resolved children of one route.
type routeMetrics struct {
	byClass  [6]prometheus.Counter // index status/100, 0 for anything outside 1xx..5xx
	duration prometheus.Observer
	inFlight prometheus.Gauge

	retries, retriesDenied, shed prometheus.Counter
}

var statusClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *metrics) forRoute(name string) routeMetrics {
	var rm routeMetrics
	for i, c := range statusClasses {
		rm.byClass[i] = m.requests.WithLabelValues(name, c)
	}
	rm.duration = m.duration.WithLabelValues(name)
	rm.inFlight = m.inFlight.WithLabelValues(name)
	if name == "" {
		return rm // requests refused before routing are neither retried nor shed
	}
	rm.retries = m.retries.WithLabelValues(name, "sent")
	rm.retriesDenied = m.retries.WithLabelValues(name, "budget_exhausted")
	rm.shed = m.shed.WithLabelValues(name)
	return rm
}

// routesChanged records which routes a reload removed or brought back, and
// drops the series of routes removed more than routeRetention ago.
func (m *metrics) routesChanged(before, after map[string]bool, now time.Time) {
	if m.removed == nil {
		m.removed = make(map[string]time.Time)
	}
	for name := range before {
		if !after[name] {
			m.removed[name] = now
		}
	}
	for name, at := range m.removed {
		switch {
		case after[name]:
			delete(m.removed, name)
		case now.Sub(at) >= routeRetention:
			m.forget(name)
			delete(m.removed, name)
		}
	}
}

// forget drops the series of a route.
func (m *metrics) forget(name string) {
	for _, c := range statusClasses {
		m.requests.DeleteLabelValues(name, c)
	}
	m.duration.DeleteLabelValues(name)
	m.inFlight.DeleteLabelValues(name)
	m.retries.DeletePartialMatch(prometheus.Labels{"route": name})
	m.shed.DeleteLabelValues(name)
	m.cacheRequests.DeletePartialMatch(prometheus.Labels{"route": name})
	m.tunnels.DeletePartialMatch(prometheus.Labels{"route": name})
}

func (rm *routeMetrics) count(status int) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	rm.byClass[c].Inc()
}

// backendCollector reports the balancer's per-backend counters of the live
// table at scrape time.
type backendCollector struct {
	tables func() *Table

	upstreamRequests, upstreamErrors, backendHealthy, backendInFlight *prometheus.Desc
	backendLatency, backendEjected, backendEjections, poolBackends    *prometheus.Desc
	poolQueued, poolWaits, poolOverloaded                             *prometheus.Desc
}

func newBackendCollector(tables func() *Table) *backendCollector {
	return &backendCollector{
		tables: tables,
		upstreamRequests: prometheus.NewDesc("sluice_upstream_requests_total",
			"Requests sent to a backend.", []string{"pool", "backend"}, nil),
		upstreamErrors: prometheus.NewDesc("sluice_upstream_errors_total",
			"Failed upstream exchanges by kind: connect, timeout, other (bad or broken response).", []string{"pool", "backend", "kind"}, nil),
		backendHealthy: prometheus.NewDesc("sluice_backend_healthy",
			"1 when the backend is taking traffic, 0 when health checks took it out.", []string{"pool", "backend"}, nil),
		backendInFlight: prometheus.NewDesc("sluice_backend_in_flight",
			"Requests in flight to a backend.", []string{"pool", "backend"}, nil),
		backendLatency: prometheus.NewDesc("sluice_backend_latency_ewma_seconds",
			"Decaying average latency of a backend's successful exchanges, as p2c_ewma weighs it.", []string{"pool", "backend"}, nil),
		backendEjected: prometheus.NewDesc("sluice_backend_ejected",
			"1 while passive outlier detection holds the backend out.", []string{"pool", "backend"}, nil),
		backendEjections: prometheus.NewDesc("sluice_backend_ejections_total",
			"Times passive outlier detection ejected a backend (consecutive 5xx, connect failures or timeouts).", []string{"pool", "backend"}, nil),
		poolQueued: prometheus.NewDesc("sluice_pool_queued",
			"Requests waiting for a place on a pool whose circuit breaker caps are full.", []string{"pool"}, nil),
		poolWaits: prometheus.NewDesc("sluice_pool_queue_waits_total",
			"Requests that had to wait in a pool's circuit breaker queue.", []string{"pool"}, nil),
		poolOverloaded: prometheus.NewDesc("sluice_pool_overloaded_total",
			"Requests the circuit breaker refused with 503 (queue full, or the wait ran out).", []string{"pool"}, nil),
		poolBackends: prometheus.NewDesc("sluice_pool_backends",
			"Backends of a pool, by state: healthy (taking traffic) or total.", []string{"pool", "state"}, nil),
	}
}

func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.upstreamRequests
	ch <- c.upstreamErrors
	ch <- c.backendHealthy
	ch <- c.backendInFlight
	ch <- c.backendLatency
	ch <- c.backendEjected
	ch <- c.poolBackends
	ch <- c.backendEjections
	ch <- c.poolQueued
	ch <- c.poolWaits
	ch <- c.poolOverloaded
}

func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.tables()
	if t == nil {
		return
	}
	for _, p := range t.poolList {
		healthyCount := 0
		for _, b := range p.pool.Backends() {
			st := b.Stats()
			name, addr := p.pool.Name(), st.Addr
			if st.Healthy {
				healthyCount++
			}
			ch <- prometheus.MustNewConstMetric(c.backendLatency, prometheus.GaugeValue, st.LatencyEWMA.Seconds(), name, addr)
			ch <- prometheus.MustNewConstMetric(c.backendEjected, prometheus.GaugeValue, boolGauge(st.Ejected), name, addr)
			ch <- prometheus.MustNewConstMetric(c.backendEjections, prometheus.CounterValue, float64(st.Ejections), name, addr)
			ch <- prometheus.MustNewConstMetric(c.upstreamRequests, prometheus.CounterValue, float64(st.Requests), name, addr)
			ch <- prometheus.MustNewConstMetric(c.upstreamErrors, prometheus.CounterValue, float64(st.ConnectErrors), name, addr, "connect")
			ch <- prometheus.MustNewConstMetric(c.upstreamErrors, prometheus.CounterValue, float64(st.TimeoutErrors), name, addr, "timeout")
			ch <- prometheus.MustNewConstMetric(c.upstreamErrors, prometheus.CounterValue, float64(st.OtherErrors), name, addr, "other")
			ch <- prometheus.MustNewConstMetric(c.backendHealthy, prometheus.GaugeValue, boolGauge(st.Healthy), name, addr)
			ch <- prometheus.MustNewConstMetric(c.backendInFlight, prometheus.GaugeValue, float64(st.InFlight), name, addr)
		}
		ch <- prometheus.MustNewConstMetric(c.poolBackends, prometheus.GaugeValue, float64(healthyCount), p.pool.Name(), "healthy")
		ch <- prometheus.MustNewConstMetric(c.poolBackends, prometheus.GaugeValue, float64(len(p.pool.Backends())), p.pool.Name(), "total")
		ps := p.pool.Stats()
		ch <- prometheus.MustNewConstMetric(c.poolQueued, prometheus.GaugeValue, float64(ps.Queued), p.pool.Name())
		ch <- prometheus.MustNewConstMetric(c.poolWaits, prometheus.CounterValue, float64(ps.Waits), p.pool.Name())
		ch <- prometheus.MustNewConstMetric(c.poolOverloaded, prometheus.CounterValue, float64(ps.Overloaded), p.pool.Name())
	}
}

func boolGauge(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
