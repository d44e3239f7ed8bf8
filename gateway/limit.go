package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
	"github.com/sluice-gw/sluice/ratelimit"
)

// The rate-limit step (DESIGN.md "The request path", step 4): after routing,
// each limit of the route builds the client's key from the request and asks
// its ratelimit.Limiter, which never waits on the network. The first limit
// that refuses answers 429; a request must pass them all.

// limitDeps is what a Table's limits are built on and that outlives every
// Table: the Server's Redis client (nil without redis.addrs) and its logger
// (nil for a dry run, which logs nothing).
type limitDeps struct {
	rdb redis.UniversalClient
	log *slog.Logger
}

// tableLimit is one configured limit as a Table holds it.
type tableLimit struct {
	name    string
	lim     ratelimit.Limiter
	def     config.RateLimit // as configured: a reload compares the key with it
	parts   []keyPart
	ip6Bits int
	shared  bool   // missing: shared; otherwise a request without the key is refused
	policy  []byte // this limit's RateLimit-Policy member, `"name";q=…;w=…`

	// Reasons of the 429s, JSON-safe (writeError does not escape).
	deniedReason, missingReason string
}

// keyPart is one part of a limit's client key, ready for the request path.
type keyPart struct {
	ratelimit.KeyPart
	lower string // header name in lower case, for httpsafe.EqualFold
}

// routeLimits are the limits of one route.
type routeLimits struct {
	list    []routeLimit // in the order of the route's rate_limits
	headers bool         // rate_limit_headers: allowed responses carry them too
	policy  []byte       // RateLimit-Policy of an allowed response: every member
}

// routeLimit is one limit of a route and what it counted there.
type routeLimit struct {
	*tableLimit
	counts *limitCounts
}

// limitCounts are the decisions one limit took for one route. A reload that
// keeps both hands them to the new Table, so the counters go on.
type limitCounts struct {
	allowed, denied atomic.Uint64
}

// Client keys. Each part of a key is written as its length in decimal, a
// colon and its value ("11:203.0.113.7"), parts one after the other: a
// value can never run into the next, so "a"+"bc" and "ab"+"c" are two
// clients. A value longer than maxKeyValue is replaced by "#" and the hex of
// the first 16 bytes of its SHA-256, which bounds the memory a client costs
// whatever it sends (BytesPerKey plus at most about 70 bytes a part).
// Requests without the key that share one bucket (missing: shared) use
// missingKey, which starts with a letter where every real key starts with
// a digit.
const (
	maxKeyValue = 64
	missingKey  = "missing"
)

// Response fields of the limit step. The RateLimit ones are set as spelled
// (SetCanonical): fasthttp writes a name it normalises as "Ratelimit-Policy",
// which the gateway's own 429 would get and a proxied answer would not.
const (
	hdrRetryAfter      = "Retry-After"
	hdrRateLimitPolicy = "RateLimit-Policy"
	hdrRateLimit       = "RateLimit"
)

// limit runs the route's limits in order and answers 429 for the first that
// refuses. The decisions of a route with rate_limit_headers are kept in rq
// for writeLimitHeaders. Nothing here waits on Redis, and nothing allocates
// once the client is known.
func (s *Server) limit(rq *request) bool {
	rl := &rq.route.limits
	rq.decisions = rq.decisions[:0]
	for i := range rl.list {
		l := &rl.list[i]
		key, ok := l.appendKey(rq.limitBuf[:0], rq)
		if !ok {
			if !l.shared {
				l.counts.denied.Add(1)
				s.writeError(rq, fasthttp.StatusTooManyRequests, l.missingReason)
				return false
			}
			key = append(key[:0], missingKey...)
		}
		rq.limitBuf = key
		d := l.lim.Allow(key)
		if !d.Allowed {
			l.counts.denied.Add(1)
			s.refuseOverLimit(rq, l.tableLimit, d)
			return false
		}
		l.counts.allowed.Add(1)
		if rl.headers {
			rq.decisions = append(rq.decisions, d)
		}
	}
	return true
}

// refuseOverLimit answers 429 for limit l's refusal d: the JSON error, when
// to retry, and l's RateLimit-Policy and RateLimit members.
func (s *Server) refuseOverLimit(rq *request, l *tableLimit, d ratelimit.Decision) {
	s.writeError(rq, fasthttp.StatusTooManyRequests, l.deniedReason)
	h := &rq.ctx.Response.Header
	rq.limitBuf = ratelimit.AppendRetryAfter(rq.limitBuf[:0], d)
	h.SetBytesV(hdrRetryAfter, rq.limitBuf)
	h.SetCanonical([]byte(hdrRateLimitPolicy), l.policy)
	rq.limitBuf = ratelimit.AppendRateLimit(rq.limitBuf[:0], l.name, d)
	h.SetCanonical([]byte(hdrRateLimit), rq.limitBuf)
}

// writeLimitHeaders gives an allowed response of a route with
// rate_limit_headers its RateLimit-Policy and RateLimit fields (one member
// per limit, from the decisions limit took), replacing any the backend
// sent. It does nothing for other routes. Call it once the response is
// final, whether proxied or served from the cache, after anything that
// copies stored fields into it.
func (s *Server) writeLimitHeaders(rq *request) {
	if rq.route == nil || !rq.route.limits.headers || len(rq.decisions) == 0 {
		return
	}
	rl := &rq.route.limits
	h := &rq.ctx.Response.Header
	httpsafe.DelResponseField(h, "ratelimit-policy")
	httpsafe.DelResponseField(h, "ratelimit")
	h.SetCanonical([]byte(hdrRateLimitPolicy), rl.policy)
	b := rq.limitBuf[:0]
	for i, d := range rq.decisions {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = ratelimit.AppendRateLimit(b, rl.list[i].name, d)
	}
	rq.limitBuf = b
	h.SetCanonical([]byte(hdrRateLimit), b)
}

// appendKey appends the client key of rq for limit l to dst. It reports
// false, with dst as it was, when the request lacks a part of it: no such
// header, query parameter or cookie, an empty value, or several copies with
// different values (backends disagree on which copy counts, so a client
// could otherwise pick a fresh bucket with a decoy copy).
func (l *tableLimit) appendKey(dst []byte, rq *request) ([]byte, bool) {
	start := len(dst)
	for i := range l.parts {
		p := &l.parts[i]
		from := len(dst)
		var ok bool
		switch p.Source {
		case ratelimit.KeyIP:
			dst, ok = appendClientIP(dst, rq.client, l.ip6Bits)
		case ratelimit.KeyHeader:
			dst, ok = appendHeaderValue(dst, &rq.ctx.Request.Header, p.lower)
		case ratelimit.KeyQuery:
			dst, ok = appendQueryValue(dst, rq.query, p.Name)
		case ratelimit.KeyCookie:
			dst, ok = appendCookieValue(dst, &rq.ctx.Request.Header, p.Name)
		}
		if !ok {
			return dst[:start], false
		}
		dst = framePart(dst, from)
	}
	return dst, true
}

// appendClientIP appends the client's address, an IPv6 one cut to bits
// ("2001:db8:1:2::/64").
func appendClientIP(dst []byte, a netip.Addr, bits int) ([]byte, bool) {
	if !a.IsValid() {
		return dst, false
	}
	if a.Is6() && bits < 128 {
		if p, err := a.Prefix(bits); err == nil {
			return p.AppendTo(dst), true
		}
	}
	return a.AppendTo(dst), true
}

// appendHeaderValue appends the value of the request field lower (a
// lower-case name).
func appendHeaderValue(dst []byte, h *fasthttp.RequestHeader, lower string) ([]byte, bool) {
	start, found := len(dst), false
	for k, v := range h.All() {
		if len(v) == 0 || !httpsafe.EqualFold(k, lower) {
			continue
		}
		if !found {
			dst, found = append(dst, v...), true
		} else if !bytes.Equal(dst[start:], v) {
			return dst[:start], false
		}
	}
	return dst, found
}

// appendQueryValue appends the decoded value of the query parameter name
// from query, the raw query of the request target.
func appendQueryValue(dst, query []byte, name string) ([]byte, bool) {
	start, end := len(dst), -1
	for len(query) > 0 {
		pair := query
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			query = nil
		}
		k, v := pair, []byte(nil)
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		if len(v) == 0 {
			continue
		}
		mark := len(dst)
		dst = fasthttp.AppendUnquotedArg(dst, k) // decoded into the scratch after the value
		match := string(dst[mark:]) == name
		dst = dst[:mark]
		if !match {
			continue
		}
		dst = fasthttp.AppendUnquotedArg(dst, v)
		if end < 0 {
			end = len(dst)
			continue
		}
		same := bytes.Equal(dst[start:end], dst[end:])
		dst = dst[:end]
		if !same {
			return dst[:start], false
		}
	}
	return dst, end > start
}

// appendCookieValue appends the value of the cookie name.
func appendCookieValue(dst []byte, h *fasthttp.RequestHeader, name string) ([]byte, bool) {
	start, found := len(dst), false
	for k, v := range h.Cookies() {
		if len(v) == 0 || string(k) != name {
			continue
		}
		if !found {
			dst, found = append(dst, v...), true
		} else if !bytes.Equal(dst[start:], v) {
			return dst[:start], false
		}
	}
	return dst, found
}

// framePart turns the value appended to dst at from into one part of a
// key: hashed when longer than maxKeyValue, then prefixed with its length.
func framePart(dst []byte, from int) []byte {
	if len(dst)-from > maxKeyValue {
		sum := sha256.Sum256(dst[from:])
		dst = append(dst[:from], '#')
		dst = hex.AppendEncode(dst, sum[:16])
	}
	n := len(dst) - from
	var num [24]byte
	pre := strconv.AppendInt(num[:0], int64(n), 10)
	pre = append(pre, ':')
	dst = append(dst, pre...)
	copy(dst[from+len(pre):], dst[from:from+n])
	copy(dst[from:], pre)
	return dst
}

// keyOf builds the key of limit l from the values an operator gives, one
// per part in order (an address for ip, a value for the others), as the
// request path would build it. No values is the bucket shared by requests
// without the key, for a limit with missing: shared.
func (l *tableLimit) keyOf(values []string) ([]byte, error) {
	if len(values) == 0 {
		if !l.shared {
			return nil, fmt.Errorf("limit %s needs key=%s (requests without it are refused, not counted)", l.name, l.def.Key)
		}
		return []byte(missingKey), nil
	}
	if len(values) != len(l.parts) {
		return nil, fmt.Errorf("limit %s has a key of %d parts (%s): give key= once for each, in order", l.name, len(l.parts), l.def.Key)
	}
	var dst []byte
	for i, p := range l.parts {
		from := len(dst)
		v := values[i]
		if v == "" {
			return nil, fmt.Errorf("key part %d (%s) is empty", i+1, p.source())
		}
		if p.Source == ratelimit.KeyIP {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("key part %d (ip): %w", i+1, err)
			}
			dst, _ = appendClientIP(dst, a.Unmap(), l.ip6Bits)
		} else {
			dst = append(dst, v...)
		}
		dst = framePart(dst, from)
	}
	return dst, nil
}

func (p keyPart) source() string {
	switch p.Source {
	case ratelimit.KeyHeader:
		return "header:" + p.Name
	case ratelimit.KeyQuery:
		return "query:" + p.Name
	case ratelimit.KeyCookie:
		return "cookie:" + p.Name
	}
	return "ip"
}

// buildLimits builds t's limits from cfg and gives each route its own, after
// the rest of the Table: a limit of prev with the same name and key hands
// over its state (clients keep what they used; a changed rate applies at
// once), which stops prev's sync loop, so nothing may fail after it. Every
// definition is checked before the first limiter is built.
func (t *Table) buildLimits(cfg *config.Config, prev *Table, deps limitDeps) error {
	names := make([]string, 0, len(cfg.RateLimits))
	for name := range cfg.RateLimits {
		names = append(names, name)
	}
	slices.Sort(names)
	t.limits = make(map[string]*tableLimit, len(names))
	for _, name := range names {
		l, err := newTableLimit(name, cfg.RateLimits[name])
		if err != nil {
			return fmt.Errorf("rate_limits.%s: %w", name, err)
		}
		t.limits[name] = l
		t.limitList = append(t.limitList, l)
	}
	for _, l := range t.limitList {
		var old *tableLimit
		if prev != nil {
			old = prev.limits[l.name]
		}
		var prevLim ratelimit.Limiter
		if old != nil && sameClients(old.def, l.def) {
			prevLim = old.lim
		}
		opts := l.def.Options
		opts.Logger = deps.log
		lim, err := ratelimit.New(opts, deps.rdb, prevLim)
		if err != nil { // checked above: cannot happen
			t.closeLimits()
			return fmt.Errorf("rate_limits.%s: %w", l.name, err)
		}
		l.lim = lim
		l.policy = ratelimit.AppendPolicy(nil, l.name, lim.Policy())
		o := l.def.WithDefaults()
		if deps.log != nil && deps.rdb == nil && o.Scope == ratelimit.ScopeGlobal &&
			(old == nil || old.def.WithDefaults().Scope != ratelimit.ScopeGlobal) {
			deps.log.Warn("rate limit has scope global but no redis is configured: it is enforced per instance, so N instances admit up to N times the limit",
				"limit", l.name, "rate", o.Rate, "burst", o.Burst)
		}
	}

	prevRoutes := map[string]*Route{}
	if prev != nil {
		for _, r := range prev.routes {
			prevRoutes[r.name] = r
		}
	}
	for i, rc := range cfg.Routes {
		r := t.routes[i]
		r.limits.headers = rc.RateLimitHeaders
		for _, name := range rc.RateLimits {
			l := t.limits[name]
			counts := &limitCounts{}
			if pr := prevRoutes[rc.Name]; pr != nil {
				for _, pl := range pr.limits.list {
					if pl.name == name {
						counts = pl.counts
					}
				}
			}
			if len(r.limits.policy) > 0 {
				r.limits.policy = append(r.limits.policy, ", "...)
			}
			r.limits.policy = append(r.limits.policy, l.policy...)
			r.limits.list = append(r.limits.list, routeLimit{tableLimit: l, counts: counts})
		}
	}
	return nil
}

// newTableLimit prepares limit name, without building its limiter. def is
// as config.Load completed and validated it (key, ip6_prefix and missing
// checked there, by key path); the options are checked again here, by the
// rule ratelimit owns, only because every limiter must be known to build
// before the first takes over its predecessor's state, which cannot be
// undone.
func newTableLimit(name string, def config.RateLimit) (*tableLimit, error) {
	def.Name = name
	if err := def.Options.Validate(); err != nil {
		return nil, err
	}
	parts, err := ratelimit.ParseKey(def.Key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	l := &tableLimit{
		name:         name,
		def:          def,
		ip6Bits:      def.IP6Prefix,
		shared:       def.Missing == config.MissingShared,
		deniedReason: "rate limit " + name + " exceeded",
	}
	var sources []string
	for _, p := range parts {
		kp := keyPart{KeyPart: p}
		if p.Source == ratelimit.KeyHeader {
			kp.lower = strings.ToLower(p.Name)
		}
		l.parts = append(l.parts, kp)
		sources = append(sources, kp.source())
	}
	l.missingReason = jsonSafe("rate limit " + name + ": the request lacks its client key (" + strings.Join(sources, "+") + ")")
	return l, nil
}

// sameClients reports whether two definitions of a limit name their clients
// alike, so that the state of one is valid for the other.
func sameClients(a, b config.RateLimit) bool {
	return a.Key == b.Key && a.IP6Prefix == b.IP6Prefix
}

// jsonSafe escapes s for the inside of a JSON string: query parameter names
// come from the configuration and may hold anything.
func jsonSafe(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// closeLimits stops the background work of t's limiters. A limiter whose
// state a newer Table took over keeps serving that Table: Close does nothing
// for it.
func (t *Table) closeLimits() {
	for _, l := range t.limitList {
		if l.lim != nil {
			l.lim.Close()
		}
	}
}
