package gateway

import (
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/config"
)

// retryOn is a set of the failure kinds of config.Retries.On, one bit each,
// so that the request path tests membership without a slice walk. Statuses
// are kept apart, in statusSet.
type retryOn uint8

const (
	retryConnect retryOn = 1 << iota
	retryTimeout
	retryReset
	retryStatus // the backend answered with a status of the route's set
)

var retryOnNames = map[string]retryOn{
	config.RetryOnConnect: retryConnect,
	config.RetryOnTimeout: retryTimeout,
	config.RetryOnReset:   retryReset,
}

// statusSet is a set of 5xx status codes, one bit per code.
type statusSet [2]uint64

func (s *statusSet) add(code int) {
	if i := code - 500; i >= 0 && i < 100 {
		s[i/64] |= 1 << (i % 64)
	}
}

func (s *statusSet) has(code int) bool {
	i := code - 500
	return i >= 0 && i < 100 && s[i/64]&(1<<(i%64)) != 0
}

// retryPolicy is a route's config.Retries, compiled.
type retryPolicy struct {
	attempts int
	on       retryOn
	statuses statusSet
	perTry   time.Duration // 0: each attempt may use what is left of the route's timeout
}

// newRetryPolicy compiles rt (validated by config) for a route whose
// exchanges have timeout in all.
func newRetryPolicy(rt config.Retries, timeout time.Duration) retryPolicy {
	rt = rt.WithDefaults()
	p := retryPolicy{attempts: rt.Attempts, perTry: rt.PerTryTimeout}
	for _, name := range rt.On {
		if bit, ok := retryOnNames[name]; ok {
			p.on |= bit
			continue
		}
		p.on |= retryStatus
		if name == config.RetryOn5xx {
			for code := 500; code < 600; code++ {
				p.statuses.add(code)
			}
			continue
		}
		code, _ := strconv.Atoi(name) // config accepts only 500-599 here
		p.statuses.add(code)
	}
	if p.on&retryTimeout != 0 && p.perTry == 0 && p.attempts > 1 {
		// With no per-try bound the first attempt would spend the whole
		// deadline, and "timeout" would never be retried.
		p.perTry = timeout / time.Duration(p.attempts)
	}
	return p
}

// deadline is when the attempt starting now must end: the per-try bound, or
// the route's deadline when that comes first.
func (p *retryPolicy) deadline(now, routeDeadline time.Time) time.Time {
	if p.perTry > 0 {
		if d := now.Add(p.perTry); d.Before(routeDeadline) {
			return d
		}
	}
	return routeDeadline
}

// condition names what became of an attempt as config.Retries.On does: 0
// when the attempt succeeded with an answer the route does not retry.
func (p *retryPolicy) condition(err error, status int) retryOn {
	switch {
	case err == nil:
		if p.statuses.has(status) {
			return retryStatus
		}
		return 0
	case errors.Is(err, balancer.ErrConnect):
		return retryConnect
	case errors.Is(err, balancer.ErrTimeout):
		return retryTimeout
	}
	return retryReset
}

// hdrIdempotencyKey marks a request the client says may be applied twice
// with one effect (draft-ietf-httpapi-idempotency-key-header).
const hdrIdempotencyKey = "Idempotency-Key"

// mayRetry reports whether the route retries an attempt that ended in cond.
// A failed connect sent nothing, so any request may go again; anything else
// may have reached the backend, and is sent again only when repeating it is
// harmless: an idempotent method or an Idempotency-Key.
func (p *retryPolicy) mayRetry(cond retryOn, req *fasthttp.Request) bool {
	if cond == 0 || p.on&cond == 0 {
		return false
	}
	if cond == retryConnect {
		return true
	}
	return balancer.Idempotent(req) || len(req.Header.Peek(hdrIdempotencyKey)) > 0
}
