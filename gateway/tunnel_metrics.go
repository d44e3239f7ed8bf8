package gateway

import "github.com/prometheus/client_golang/prometheus"

// Tunnels are counted once each, when they end or when their handshake
// fails, in sluice_tunnels_total{route,result}; the open ones are
// sluice_tunnels_active, read from the server's tunnel set at scrape time.
// Each upgrade route resolves its children when the table is built.

// Results of a handshake that did not become a tunnel.
const (
	resultRefused       = "refused"        // the backend answered without switching (its answer was passed on)
	resultBadHandshake  = "bad_handshake"  // a 101 that failed the checks (502)
	resultUpstreamError = "upstream_error" // no backend, connect failure, timeout, broken answer
)

func newTunnelCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_tunnels_total",
		Help: "Upgrade handshakes by route and result: how a tunnel ended (closed, idle_timeout, max_duration, shutdown) or why none opened (refused, bad_handshake, upstream_error).",
	}, []string{"route", "result"})
}

func newTunnelsActive(active func() int64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_tunnels_active",
		Help: "Upgraded connections (WebSocket and others) being tunnelled now.",
	}, func() float64 { return float64(active()) })
}

// tunnelMetrics are one upgrade route's children of sluice_tunnels_total.
type tunnelMetrics struct {
	closed, idle, maxLife, shutdown      prometheus.Counter
	refused, badHandshake, upstreamError prometheus.Counter
}

func (m *metrics) tunnelsForRoute(name string) tunnelMetrics {
	c := func(result string) prometheus.Counter { return m.tunnels.WithLabelValues(name, result) }
	return tunnelMetrics{
		closed: c(resultClosed), idle: c(resultIdle), maxLife: c(resultMaxLife), shutdown: c(resultShutdown),
		refused: c(resultRefused), badHandshake: c(resultBadHandshake), upstreamError: c(resultUpstreamError),
	}
}

// result is the counter of how a tunnel ended.
func (tm *tunnelMetrics) result(reason string) prometheus.Counter {
	switch reason {
	case resultIdle:
		return tm.idle
	case resultMaxLife:
		return tm.maxLife
	case resultShutdown:
		return tm.shutdown
	}
	return tm.closed
}
