package cache

import "time"

// NotStored says why a response is not stored; StoreOK means it may be.
type NotStored uint8

// Reasons for not storing a response.
const (
	StoreOK                 NotStored = iota
	NotStoredMethod                   // the request method is not GET
	NotStoredStatus                   // 1xx, 206, 304, or a status not cacheable by default without explicit freshness
	NotStoredNoStore                  // no-store in the request or the response
	NotStoredPrivate                  // private (a shared cache must not store it)
	NotStoredAuthorization            // the request had Authorization and the response did not allow sharing (§3.5)
	NotStoredSetCookie                // Set-Cookie: never stored, by policy
	NotStoredVaryStar                 // Vary: *
	NotStoredMustUnderstand           // must-understand with a status code this cache does not implement
	NotStoredNoFreshness              // stale at once, with no validator and no stale-* window: useless
	NotStoredTooLarge                 // the body is over max_entry, or was not buffered
	NotStoredFailed                   // the origin failed (no response)
	NotStoredRange                    // a 416, or a 206 whose body is not the part it names
	NotStoredVaryChanged              // a 304 changed the Vary of the response it revalidated
	NotStoredMalformed                // Cache-Control could not be read whole (CacheControl.Malformed)
	NotStoredConnection               // the response's Connection named an end-to-end field, removed before the cache saw it
)

var notStoredNames = [...]string{
	StoreOK:                 "",
	NotStoredMethod:         "method",
	NotStoredStatus:         "status",
	NotStoredRange:          "range",
	NotStoredNoStore:        "no-store",
	NotStoredPrivate:        "private",
	NotStoredAuthorization:  "authorization",
	NotStoredSetCookie:      "set-cookie",
	NotStoredVaryStar:       "vary-star",
	NotStoredMustUnderstand: "must-understand",
	NotStoredNoFreshness:    "no-freshness",
	NotStoredTooLarge:       "too-large",
	NotStoredFailed:         "failed",
	NotStoredVaryChanged:    "vary-changed",
	NotStoredMalformed:      "malformed-cache-control",
	NotStoredConnection:     "connection",
}

// String is a short lower-case name fit for a metric label or a
// Cache-Status detail; "" for StoreOK.
func (n NotStored) String() string {
	if int(n) < len(notStoredNames) {
		return notStoredNames[n]
	}
	return "unknown"
}

// CacheableByDefault reports whether a status code is heuristically
// cacheable (RFC 9110 §15.1): 200 203 204 206 300 301 308 404 405 410 414
// 501. Other codes are stored only with explicit freshness.
func CacheableByDefault(status int) bool {
	switch status {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understood reports whether this cache implements the caching rules of a
// status code, for must-understand (RFC 9111 §5.2.2.3). Partial content is
// excluded: only some partial responses are stored, and none is combined.
func understood(status int) bool {
	return status != 206 && CacheableByDefault(status)
}

// Storable reports whether a shared cache may store a response (RFC 9111 §3),
// and if not, why. method is the request's; req its Cache-Control;
// authorization whether it carried Authorization. heuristic is the route's
// heuristic freshness.
//
// Beyond the RFC, by policy: only GET responses are stored (a HEAD fill has
// no body to serve a GET), a 206 only when it holds one byte range of a
// known length (m.Range: it is stored as a partial entry, which answers
// the ranges inside it and nothing else, §3.4; parts are not combined), a response with
// Set-Cookie is not (one user's cookie must never reach another), and a
// response that would be stale at once with no validator to revalidate it
// and no stale-* window is not (it could never be served).
func Storable(method []byte, req *CacheControl, authorization bool, m *Meta, heuristic Heuristic) NotStored {
	cc := &m.CacheControl
	switch {
	case string(method) != "GET":
		return NotStoredMethod
	case m.Status < 200 || m.Status > 599 || m.Status == 206 && !m.Range.OK || m.Status == 304:
		// Outside 100-599 a status is invalid (RFC 9110 §15): a 5xx to a client.
		return NotStoredStatus
	case cc.MustUnderstand && !understood(m.Status):
		return NotStoredMustUnderstand
	case cc.NoStore && !cc.MustUnderstand, req.NoStore:
		// must-understand with an understood status overrides no-store (§5.2.2.3).
		return NotStoredNoStore
	case cc.Malformed:
		return NotStoredMalformed
	case cc.Private:
		return NotStoredPrivate
	case authorization && !cc.Public && !cc.SMaxAge.Set && !cc.MustRevalidate:
		return NotStoredAuthorization
	case m.SetCookie:
		return NotStoredSetCookie
	case m.VaryStar:
		return NotStoredVaryStar
	}
	explicit := cc.Public || cc.MaxAge.Set || cc.SMaxAge.Set || m.HasExpires
	if !explicit && !CacheableByDefault(m.Status) {
		return NotStoredStatus
	}
	if Lifetime(m, heuristic) == 0 && len(m.ETag) == 0 && m.LastModified.IsZero() &&
		cc.StaleIfError.Seconds == 0 && cc.StaleWhileRevalidate.Seconds == 0 {
		return NotStoredNoFreshness
	}
	return StoreOK
}

// Heuristic is how a route gives freshness to a response that gives none
// (RFC 9111 §4.2.2), when its status is cacheable by default or it is
// marked public.
type Heuristic struct {
	// Fixed, when positive, is the lifetime given (a route's default_ttl).
	Fixed time.Duration
	// LastModifiedMax, when positive and Fixed is not, caps the lifetime
	// a Last-Modified earns: LastModifiedFraction of the time from it to
	// the response's Date, as §4.2.2 suggests (an unchanged resource
	// likely stays so for a while). 0: no such heuristic.
	LastModifiedMax time.Duration
}

// LastModifiedFraction is the share of a response's age at its Date since
// Last-Modified given as its heuristic lifetime: RFC 9111 §4.2.2's
// "typical setting", and Squid's and the browsers' default.
const LastModifiedFraction = 0.1

// Lifetime is the freshness lifetime of a response in a shared cache (RFC
// 9111 §4.2.1): s-maxage, else max-age, else Expires minus Date (the
// response time when Date is missing). With none of them, h gives a
// heuristic lifetime to status codes cacheable by default and to responses
// marked public (§4.2.2).
func Lifetime(m *Meta, h Heuristic) time.Duration {
	cc := &m.CacheControl
	switch {
	case cc.SMaxAge.Set:
		return cc.SMaxAge.Duration()
	case cc.MaxAge.Set:
		return cc.MaxAge.Duration()
	case m.HasExpires:
		if m.Expires.IsZero() {
			return 0
		}
		return max(0, m.Expires.Sub(m.dateOrResponseTime()))
	case !CacheableByDefault(m.Status) && !cc.Public:
		return 0
	case h.Fixed > 0:
		return h.Fixed
	case h.LastModifiedMax > 0 && !m.LastModified.IsZero():
		since := m.dateOrResponseTime().Sub(m.LastModified)
		return min(h.LastModifiedMax, max(0, time.Duration(float64(since)*LastModifiedFraction)).Truncate(time.Second))
	}
	return 0
}

// dateOrResponseTime is the response's Date, or when it came without one,
// the time it was received.
func (m *Meta) dateOrResponseTime() time.Time {
	if m.Date.IsZero() {
		return m.ResponseTime
	}
	return m.Date
}

// InitialAge is the corrected initial age of a response (RFC 9111 §4.2.3):
// the larger of its apparent age (response time minus Date) and its Age
// field plus the time the exchange took.
func InitialAge(m *Meta) time.Duration {
	var apparent time.Duration
	if !m.Date.IsZero() {
		apparent = max(0, m.ResponseTime.Sub(m.Date))
	}
	delay := max(0, m.ResponseTime.Sub(m.RequestTime))
	return max(apparent, m.Age.Duration()+delay)
}

// CurrentAge is a stored response's age at now (RFC 9111 §4.2.3): its
// corrected initial age plus the time it has been resident.
func CurrentAge(initialAge time.Duration, responseTime, now time.Time) time.Duration {
	return initialAge + max(0, now.Sub(responseTime))
}

// Decision is how a stored response may be used for a request.
type Decision uint8

// Decisions of Usable.
const (
	// Fresh: serve it.
	Fresh Decision = iota
	// StaleWhileRevalidate: serve it stale and refresh it in the background
	// (RFC 5861 §3).
	StaleWhileRevalidate
	// StaleAccepted: serve it stale; the request's max-stale accepts it
	// (RFC 9111 §5.2.1.2).
	StaleAccepted
	// Revalidate: the response is stale, or marked no-cache; ask the origin
	// (conditionally, when it has validators) before using it.
	Revalidate
	// RevalidateRequested: the response is fresh but the request's no-cache,
	// max-age or min-fresh asks for a newer or validated one.
	RevalidateRequested
)

// Usable decides how a stored response with the given freshness lifetime,
// current age and directives may answer a request with directives req (RFC
// 9111 §4.2, §5.2; RFC 5861).
//
// Stale responses are served only with the request's max-stale or the
// response's stale-while-revalidate, and never when the response says
// must-revalidate or proxy-revalidate (§5.2.2.2, §5.2.2.8). s-maxage implies
// proxy-revalidate in a shared cache (§5.2.2.10), which rules out max-stale;
// an explicit stale-while-revalidate or stale-if-error from the origin still
// applies, since the origin asked for it. Windows are exclusive: with
// stale-while-revalidate=30 a response is served for less than 30 s past its
// lifetime.
func Usable(lifetime, age time.Duration, resp, req *CacheControl) Decision {
	if resp.NoCache {
		return Revalidate
	}
	if req.NoCache {
		return RevalidateRequested
	}
	tooOld := req.MaxAge.Set && age > req.MaxAge.Duration()
	if age < lifetime {
		if tooOld || (req.MinFresh.Set && lifetime-age < req.MinFresh.Duration()) {
			return RevalidateRequested
		}
		return Fresh
	}
	if tooOld {
		return Revalidate
	}
	staleness := age - lifetime
	strict := resp.MustRevalidate || resp.ProxyRevalidate
	if !strict && !resp.SMaxAge.Set {
		if req.MaxStale.Set && staleness <= req.MaxStale.Duration() ||
			!req.MaxStale.Set && req.MaxStaleAny {
			return StaleAccepted
		}
	}
	if !strict && staleness < resp.StaleWhileRevalidate.Duration() && !req.MinFresh.Set {
		return StaleWhileRevalidate
	}
	return Revalidate
}

// StaleIfError reports whether a stored response may be served, stale,
// because the origin failed (no response, or 500, 502, 503, 504) while it
// was being revalidated (RFC 5861 §4). The window is the larger of the
// response's and the request's stale-if-error and, where it applies
// (routeWindow), the route's own (configured); must-revalidate,
// proxy-revalidate and a response no-cache forbid it, and so does a request
// no-cache unless the request itself carries stale-if-error.
func StaleIfError(lifetime, age time.Duration, resp, req *CacheControl, configured time.Duration) bool {
	if resp.MustRevalidate || resp.ProxyRevalidate || resp.NoCache {
		return false
	}
	if req.NoCache && !req.StaleIfError.Set {
		return false
	}
	window := max(resp.StaleIfError.Duration(), req.StaleIfError.Duration(), routeWindow(lifetime, resp, req, configured))
	return max(0, age-lifetime) < window
}

// routeWindow is the part of a route's configured stale-if-error window
// that a stored response and a request allow. None for a response that was
// never fresh (the origin asked for every use to be checked) or that
// carries s-maxage (which implies proxy-revalidate in a shared cache, RFC
// 9111 §5.2.2.10), must-revalidate, proxy-revalidate or no-cache, nor for a
// request with no-cache; only the origin's or the client's own
// stale-if-error overrides those. The origin's or the client's own
// stale-if-error caps it: the operator's window is a default for when
// neither said how much staleness it accepts.
func routeWindow(lifetime time.Duration, resp, req *CacheControl, configured time.Duration) time.Duration {
	if configured <= 0 || lifetime <= 0 || resp.SMaxAge.Set ||
		resp.MustRevalidate || resp.ProxyRevalidate || resp.NoCache || req != nil && req.NoCache {
		return 0
	}
	if resp.StaleIfError.Set {
		configured = min(configured, resp.StaleIfError.Duration())
	}
	if req != nil && req.StaleIfError.Set {
		configured = min(configured, req.StaleIfError.Duration())
	}
	return configured
}

// OriginFailed reports whether a fill counts as an error for stale-if-error:
// no response at all, 500, 502, 503 or 504 (RFC 5861 §4), or a status
// outside 100-599, which a client takes as a 5xx (RFC 9110 §15).
func OriginFailed(status int) bool {
	switch status {
	case 0, 500, 502, 503, 504:
		return true
	}
	return status > 599
}
