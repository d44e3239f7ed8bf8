package ratelimit

import (
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter decides whether one client's request may pass one named limit.
// Local and Global implement it; New chooses between them.
type Limiter interface {
	// Allow takes one request from the allowance of the client named by key
	// and says whether it may pass. It never blocks on the network and does
	// not allocate once the key is known. key is only read during the call.
	Allow(key []byte) Decision

	// State is what Allow would answer for key, without taking anything and
	// without creating state for an unknown key: for the admin endpoint.
	State(key []byte) Decision

	// Policy is the limit's quota for the RateLimit-Policy header.
	Policy() Policy

	// Stats is a snapshot of the limit's counters, for metrics.
	Stats() Stats

	// Close stops background work. A closed limiter must not be used, except
	// one whose state a newer limiter took over (see New), which keeps
	// answering and for which Close does nothing.
	Close()
}

// Decision is the answer for one request.
type Decision struct {
	// Allowed says whether the request may pass.
	Allowed bool
	// Limit is the size of the client's allowance: the Burst (the quota q
	// of the RateLimit-Policy header).
	Limit int
	// Remaining is what is left of the allowance after this request (r of
	// the RateLimit header). For a global limit it is this instance's
	// estimate, from its local allowance and the cluster-wide level seen at
	// its last sync.
	Remaining int
	// ResetAfter is the time until the allowance is full again (t of the
	// RateLimit header).
	ResetAfter time.Duration
	// RetryAfter is, for a refused request, the time until one request
	// would pass again (the Retry-After header); zero when Allowed.
	RetryAfter time.Duration
}

// Policy is a limit written as a quota and a window, as the RateLimit-Policy
// header wants it: Quota requests may be sent at once, and an exhausted
// quota refills completely in Window, so the sustained rate is Quota/Window.
type Policy struct {
	Quota  int
	Window time.Duration
}

// policyOf is the Policy of a token bucket: its burst, and the time it takes
// to refill from empty.
func policyOf(perSecond float64, burst int) Policy {
	return Policy{Quota: burst, Window: seconds(float64(burst) / perSecond)}
}

// Stats are a limit's counters since its state was created (a reload that
// keeps the state keeps counting). Sync fields are zero for a Local.
type Stats struct {
	Allowed   uint64 // requests allowed
	Denied    uint64 // requests refused
	Keys      int    // clients tracked now
	Evictions uint64 // clients dropped, idle or to stay under MaxKeys

	Degraded    bool          // Redis unreachable: enforcing this instance's share
	Instances   int           // instances seen alive through Redis (1 until known)
	SyncRounds  uint64        // reconciliations with Redis attempted
	SyncErrors  uint64        // of which failed or timed out
	SyncLatency time.Duration // total time spent in them (divide by SyncRounds)
}

// New builds the limiter opts describes: a *Local for scope local, a *Global
// for scope global. A global limit without Redis (rdb nil) is a *Local
// enforcing the whole limit on each instance; the gateway should say so at
// start-up.
//
// On a reload pass the limiter that served the same Name before as prev
// (nil otherwise): when its scope is unchanged its state carries over, so
// clients keep what they had used, and a changed rate or burst applies at
// once. prev keeps answering requests still running on the old routing
// table; Close it afterwards as usual.
func New(opts Options, rdb redis.UniversalClient, prev Limiter) (Limiter, error) {
	o := opts.WithDefaults()
	if o.Scope == ScopeGlobal && rdb != nil {
		p, _ := prev.(*Global)
		return NewGlobal(o, rdb, p)
	}
	p, _ := prev.(*Local)
	return NewLocal(o, p)
}

func validated(opts Options) (Options, Rate, error) {
	o := opts.WithDefaults()
	if err := o.Validate(); err != nil {
		return o, Rate{}, fmt.Errorf("rate limit %q: %w", o.Name, err)
	}
	r, _ := ParseRate(o.Rate)
	return o, r, nil
}

// seconds converts a number of seconds to a Duration, saturating.
func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	if s >= float64(math.MaxInt64)/1e9 {
		return math.MaxInt64
	}
	return time.Duration(s * 1e9)
}

// bucketDecision is the Decision of a token bucket holding tokens after the
// request.
func bucketDecision(allowed bool, tokens, perSecond float64, burst int) Decision {
	if tokens > float64(burst) {
		tokens = float64(burst)
	}
	d := Decision{Allowed: allowed, Limit: burst}
	if tokens > 0 {
		d.Remaining = int(tokens)
	}
	d.ResetAfter = seconds((float64(burst) - tokens) / perSecond)
	if !allowed {
		d.RetryAfter = seconds((1 - tokens) / perSecond)
	}
	return d
}

// BytesPerKey bounds the heap a Local keeps per client key of up to 16
// bytes (an IPv4 address, an IPv6 /64 prefix): its token bucket and last
// use, the key, its map slot. About 170 bytes are measured with 1,000,000
// clients; the test of that checks the bound.
const BytesPerKey = 224
