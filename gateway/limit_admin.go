package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/sluice-gw/sluice/ratelimit"
)

// limitStateView is the JSON shape of GET /admin/ratelimits/{limit}?key=…:
// one client's allowance as this instance sees it, without spending any.
type limitStateView struct {
	Limit  string `json:"limit"`
	Scope  string `json:"scope"` // local, or global (through Redis)
	Key    string `json:"key"`   // the client's key as the limiter stores it
	Policy string `json:"policy"`

	Allowed           bool    `json:"allowed"` // would the next request pass
	Quota             int     `json:"quota"`   // the burst
	Remaining         int     `json:"remaining"`
	ResetAfterSeconds float64 `json:"reset_after_seconds"` // until the allowance is full
	RetryAfterSeconds float64 `json:"retry_after_seconds"` // until one request passes; 0 when allowed
	Degraded          bool    `json:"degraded"`            // Redis unreachable: deciding by this instance's share
}

// limitState answers GET /admin/ratelimits/{limit}?key=…: the state of one
// client of a limit of the live table. key is given once per part of the
// limit's key, in order (an address for ip, the value for header, query or
// cookie parts); an IPv6 address is cut to ip6_prefix as on the request
// path. Without key, a limit with missing: shared shows the bucket shared by
// requests that lack the key. An unknown client has a full allowance.
func (s *Server) limitState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	l := s.table.Load().limits[r.PathValue("limit")]
	if l == nil {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "no rate limit named " + r.PathValue("limit")})
		return
	}
	key, err := l.keyOf(r.URL.Query()["key"])
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	d := l.lim.State(key)
	scope, degraded := ratelimit.ScopeLocal, false
	if g, ok := l.lim.(*ratelimit.Global); ok {
		scope, degraded = ratelimit.ScopeGlobal, g.Degraded()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(limitStateView{
		Limit: l.name, Scope: scope, Key: string(key), Policy: string(l.policy),
		Allowed: d.Allowed, Quota: d.Limit, Remaining: d.Remaining,
		ResetAfterSeconds: d.ResetAfter.Seconds(), RetryAfterSeconds: d.RetryAfter.Seconds(),
		Degraded: degraded,
	})
}
