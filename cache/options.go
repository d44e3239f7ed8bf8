package cache

import (
	"errors"
	"fmt"
	"time"
)

// Defaults applied by WithDefaults to zero fields.
const (
	DefaultMemory          = 256 << 20
	DefaultMaxEntry        = 1 << 20
	DefaultKeepStale       = time.Minute
	DefaultLockTimeout     = 5 * time.Second
	DefaultLeasePoll       = 10 * time.Millisecond
	DefaultRedisTimeout    = 20 * time.Millisecond
	DefaultWriteTimeout    = 250 * time.Millisecond
	DefaultWriteQueue      = 4096
	DefaultWriters         = 2
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = time.Second
	DefaultPurgeChannel    = "sluice:purge"
)

// Options configure the cache of one gateway instance: L1 (Local), L2
// (Redis) and their coordination (Tiered). The zero value of every field
// means "use the default" given in its comment; call WithDefaults before use
// (the constructors do) and Validate to check. Byte sizes are int64, so
// the configuration accepts "256MiB".
type Options struct {
	// Memory bounds L1 in bytes, counted as Entry.Size (contents plus a
	// fixed overhead per entry). Default 256 MiB. The process uses more: see
	// doc.go for the measured overhead (about 5% at this size).
	Memory int64 `mapstructure:"memory"`

	// MaxEntry is the largest response body stored, in bytes, for routes
	// that do not set their own. Default 1 MiB. Must not exceed Memory.
	MaxEntry int64 `mapstructure:"max_entry"`

	// Counters is how many keys L1's admission policy tracks the frequency
	// of. Default Memory/256, which is 10× the entries of 2.5 KiB average
	// size ristretto recommends; each costs about 3 bytes. Raise it when
	// entries are much smaller.
	Counters int `mapstructure:"counters"`

	// KeepStale is how long an entry that has a validator (ETag or
	// Last-Modified) is kept after it went stale, so it can be revalidated
	// with a 304 instead of refetched. Default 1m; entries with a longer
	// stale-while-revalidate or stale-if-error window keep that instead.
	// Negative: keep none beyond their windows.
	KeepStale time.Duration `mapstructure:"keep_stale"`

	// LockTimeout bounds how long a request waits for another request's
	// fill of the same key, here or on another instance, before fetching
	// itself. Default 5s (nginx's proxy_cache_lock_timeout); set it near
	// the slowest cached route's p99, since waiting costs little when the
	// fill is on its way.
	LockTimeout time.Duration `mapstructure:"lock_timeout"`

	// LeaseTTL is how long a cluster-wide fill lease lives if its holder
	// never releases it (crashed, or lost Redis). Default LockTimeout.
	LeaseTTL time.Duration `mapstructure:"lease_ttl"`

	// LeasePoll is how often an instance that lost the lease looks in L2 for
	// the holder's result. Default 10ms; it waits at most LockTimeout/2, so
	// that its own waiters still find it filling before they give up.
	LeasePoll time.Duration `mapstructure:"lease_poll"`

	// RedisTimeout bounds every Redis read on the request path (L2 get,
	// lease, poll). Default 20ms. A slower answer is a miss.
	RedisTimeout time.Duration `mapstructure:"redis_timeout"`

	// WriteTimeout bounds each round trip of a batch of asynchronous L2
	// writes (the writes between two purges, one purge). Default 250ms.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`

	// WriteQueue is how many L2 writes may wait; more are dropped and
	// counted (Stats.WriteDrops). Default 4096, about 2 s of a busy
	// instance's misses at 2,000 fills/s; it holds entries, not copies.
	WriteQueue int `mapstructure:"write_queue"`

	// Writers is how many goroutines send L2 writes, each in pipelines of
	// what is queued. Default 2. Writes of one key always go through the
	// same writer, in order.
	Writers int `mapstructure:"writers"`

	// BreakerFailures is how many Redis failures in a row open the breaker,
	// which then skips Redis for BreakerCooldown before one probe. Default 5.
	BreakerFailures int `mapstructure:"breaker_failures"`

	// BreakerCooldown is how long an open breaker skips Redis. Default 1s.
	BreakerCooldown time.Duration `mapstructure:"breaker_cooldown"`

	// PurgeChannel is the Redis pub/sub channel purges are broadcast on.
	// Default "sluice:purge". Instances that share a Redis and its cache
	// must share it.
	PurgeChannel string `mapstructure:"purge_channel"`

	// Now is the clock of HTTP freshness: ages, Date, stored-at. Default
	// time.Now. Timeouts and the breaker use real time.
	Now func() time.Time `mapstructure:"-"`

	// OnBreaker, if set, is called when the Redis breaker opens after
	// Redis had been answering (true) and when Redis answers again (false):
	// once per outage, not for each probe that fails during one. It must
	// not block: it runs on the call that saw the change. Default: none.
	OnBreaker func(open bool) `mapstructure:"-"`
}

// WithDefaults returns a copy of o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Memory == 0 {
		o.Memory = DefaultMemory
	}
	if o.MaxEntry == 0 {
		o.MaxEntry = min(DefaultMaxEntry, o.Memory)
	}
	if o.Counters == 0 {
		o.Counters = int(max(o.Memory/256, 1024))
	}
	if o.KeepStale == 0 {
		o.KeepStale = DefaultKeepStale
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = o.LockTimeout
	}
	if o.LeasePoll == 0 {
		o.LeasePoll = DefaultLeasePoll
	}
	if o.RedisTimeout == 0 {
		o.RedisTimeout = DefaultRedisTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.WriteQueue == 0 {
		o.WriteQueue = DefaultWriteQueue
	}
	if o.Writers == 0 {
		o.Writers = DefaultWriters
	}
	if o.BreakerFailures == 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerCooldown == 0 {
		o.BreakerCooldown = DefaultBreakerCooldown
	}
	if o.PurgeChannel == "" {
		o.PurgeChannel = DefaultPurgeChannel
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports every problem of o as completed by WithDefaults (a zero
// field is never an error, a negative one is), joined with errors.Join.
// Messages start with the key path relative to the cache section, in YAML
// names ("max_entry: ...").
func (o *Options) Validate() error {
	d := o.WithDefaults()
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Err: fmt.Errorf(format, args...)})
	}
	positive := func(name string, v int64) {
		if v < 0 {
			add(name, "%d must not be negative", v)
		}
	}
	positive("memory", d.Memory)
	positive("max_entry", d.MaxEntry)
	positive("counters", int64(d.Counters))
	positive("write_queue", int64(d.WriteQueue))
	positive("writers", int64(d.Writers))
	positive("breaker_failures", int64(d.BreakerFailures))
	if d.Memory > 0 && d.MaxEntry > d.Memory {
		add("max_entry", "%d is larger than memory (%d)", d.MaxEntry, d.Memory)
	}
	for _, t := range []struct {
		name string
		v    time.Duration
	}{
		{"lock_timeout", d.LockTimeout}, {"lease_ttl", d.LeaseTTL}, {"lease_poll", d.LeasePoll},
		{"redis_timeout", d.RedisTimeout}, {"write_timeout", d.WriteTimeout},
		{"breaker_cooldown", d.BreakerCooldown},
	} {
		if t.v < 0 {
			add(t.name, "%s must not be negative", t.v)
		}
	}
	if d.LeasePoll > 0 && d.LockTimeout > 0 && d.LeasePoll >= d.LockTimeout/2 {
		add("lease_poll", "%s must be less than half of lock_timeout (%s)", d.LeasePoll, d.LockTimeout)
	}
	return errors.Join(errs...)
}

// DefaultHeuristicMax is the default cap on the freshness a Last-Modified
// earns (RouteOptions.HeuristicMax): a resource unchanged for ten hours or
// more is reused for an hour before the origin is asked again, with its
// validator. Short on purpose: an API's answers change without notice, and
// an operator who knows better sets default_ttl or the origin max-age.
const DefaultHeuristicMax = time.Hour

// RouteOptions are a route's cache settings as configured
// (routes[i].cache).
type RouteOptions struct {
	// Enabled turns caching on for the route. Default false.
	Enabled bool `mapstructure:"enabled"`
	// DefaultTTL is the freshness lifetime given to responses without
	// explicit expiry (no s-maxage, max-age or Expires) whose status is
	// cacheable by default. Default 0: such responses are never fresh.
	DefaultTTL time.Duration `mapstructure:"default_ttl"`
	// HeuristicMax caps the freshness a response without explicit expiry
	// earns from its Last-Modified when default_ttl is 0: a tenth of the
	// time between Last-Modified and its Date (RFC 9111 §4.2.2), for
	// status codes cacheable by default and public responses. nil (unset):
	// DefaultHeuristicMax; 0 turns it off.
	HeuristicMax *time.Duration `mapstructure:"heuristic_max"`
	// StaleIfError is how long past its freshness a stored response may
	// answer when the backend fails to (no response: refused, closed,
	// timed out; or 500, 502, 503, 504), as if it had said
	// stale-if-error (RFC 5861 §4). RFC 9111 §4.2.4 lets a cache that cannot
	// reach the origin serve stale; this is the operator's bound on it. It
	// applies only to responses that were fresh for some time, and never
	// to one with must-revalidate, proxy-revalidate, no-cache or s-maxage,
	// or to a request with no-cache; a longer stale-if-error from the
	// response or the request wins. Default 0: off, as in nginx, since a
	// stale answer the origin did not allow is the operator's call.
	StaleIfError time.Duration `mapstructure:"stale_if_error"`
	// MaxEntry is the largest response body stored for the route, in
	// bytes. Default Options.MaxEntry. Larger responses pass through
	// uncached.
	MaxEntry int64 `mapstructure:"max_entry"`
	// Key lists request values added to the route's keys:
	// "header:<name>", "cookie:<name>" or "query:<name>". Default none.
	Key []string `mapstructure:"key"`
}

// Validate reports every problem of o, with key paths relative to the
// route's cache section ("key[1]: ...").
func (o *RouteOptions) Validate() error {
	var errs []error
	if o.DefaultTTL < 0 {
		errs = append(errs, &FieldError{Path: "default_ttl", Err: fmt.Errorf("%s must not be negative", o.DefaultTTL)})
	}
	if o.HeuristicMax != nil && *o.HeuristicMax < 0 {
		errs = append(errs, &FieldError{Path: "heuristic_max", Err: fmt.Errorf("%s must not be negative", *o.HeuristicMax)})
	}
	if o.StaleIfError < 0 {
		errs = append(errs, &FieldError{Path: "stale_if_error", Err: fmt.Errorf("%s must not be negative", o.StaleIfError)})
	}
	if o.MaxEntry < 0 {
		errs = append(errs, &FieldError{Path: "max_entry", Err: fmt.Errorf("%d must not be negative", o.MaxEntry)})
	}
	seen := make(map[string]int, len(o.Key))
	for i, k := range o.Key {
		p, err := ParseKeyPart(k)
		if err != nil {
			errs = append(errs, &FieldError{Path: fmt.Sprintf("key[%d]", i), Err: err})
			continue
		}
		if first, dup := seen[p.String()]; dup {
			errs = append(errs, &FieldError{Path: fmt.Sprintf("key[%d]", i), Err: fmt.Errorf("%q repeats key[%d]", k, first)})
		}
		seen[p.String()] = i
	}
	return errors.Join(errs...)
}

// NewPolicy compiles a route's options, taking unset values from the
// cache's options.
func NewPolicy(o RouteOptions, defaults Options) (*Policy, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	d := defaults.WithDefaults()
	p := &Policy{Heuristic: Heuristic{Fixed: o.DefaultTTL, LastModifiedMax: DefaultHeuristicMax},
		StaleIfError: o.StaleIfError, MaxEntry: o.MaxEntry}
	if o.HeuristicMax != nil {
		p.Heuristic.LastModifiedMax = *o.HeuristicMax
	}
	if p.MaxEntry == 0 {
		p.MaxEntry = d.MaxEntry
	}
	if p.MaxEntry > d.Memory {
		return nil, &FieldError{Path: "max_entry", Err: fmt.Errorf("%d is larger than cache memory (%d)", p.MaxEntry, d.Memory)}
	}
	for _, k := range o.Key {
		part, _ := ParseKeyPart(k)
		p.Key = append(p.Key, part)
	}
	return p, nil
}

// FieldError is one problem with one option. Path is the option's YAML name
// ("max_entry", "key[1]"), so that the config package can prefix the path of
// the section without reading the message.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }
