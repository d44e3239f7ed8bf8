package gateway

import (
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/config"
)

// Shares of server.max_concurrency past which each priority is shed. Low
// priority work goes first, leaving headroom for the rest; high priority is
// shed only at the limit itself.
var shedShare = map[string]float64{
	config.PriorityLow:    0.75,
	config.PriorityNormal: 0.90,
	"":                    0.90,
	config.PriorityHigh:   1.0,
}

// shedThreshold is how many requests may be in the gateway for a route of
// priority to be admitted; 0 means no limit.
func shedThreshold(maxConcurrency int, priority string) int64 {
	if maxConcurrency <= 0 {
		return 0
	}
	n := int64(float64(maxConcurrency) * shedShare[priority])
	return max(n, 1)
}

// admit counts the request against server.max_concurrency and sheds it with
// 503 when the gateway is past its route's share. Shedding at once, rather
// than queueing, is what keeps the latency of admitted requests bounded: a
// queue would only add waiting to every request behind it.
func (s *Server) admit(rq *request) bool {
	limit := rq.route.shedAt
	if limit == 0 {
		return true
	}
	rq.admitted = true // finish gives the place back, admitted or shed
	if s.active.Add(1) <= limit {
		return true
	}
	rq.route.m.shed.Inc()
	rq.errKind = "shed"
	rq.ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	s.writeError(rq, fasthttp.StatusServiceUnavailable, "gateway overloaded")
	return false
}
