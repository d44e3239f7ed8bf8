package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Scopes accepted in Options.Scope.
const (
	ScopeLocal  = "local"
	ScopeGlobal = "global"
)

// Defaults applied by WithDefaults to zero fields.
const (
	DefaultScope        = ScopeLocal
	DefaultMaxKeys      = 1_000_000
	DefaultSyncInterval = 100 * time.Millisecond
)

// Options configure one named limit. The zero value of every field means
// "use the default" given in its comment; New calls WithDefaults and
// Validate.
type Options struct {
	// Name identifies the limit: in the RateLimit headers, in Redis keys
	// (sluice:rl:{<name>:<client>}) and in logs. Letters, digits and "_-.:"
	// only, so it needs no quoting anywhere. Required. The config package
	// fills it from the map key of rate_limits.
	Name string `mapstructure:"-"`

	// Rate is the sustained rate: "<count>/<unit>", where the unit is s, m,
	// h or a Go duration: "100/s", "6000/m", "10/h", "500/10s". Required.
	Rate string `mapstructure:"rate"`

	// Burst is how many requests a client may send at once: the size of its
	// token bucket. A plain count, not a size. Default: the count of Rate
	// (100 for "100/s"), which lets a client spend a whole period's worth at
	// once; about 2 × the per-second rate suits most APIs.
	Burst int `mapstructure:"burst"`

	// Scope is "local" (default: every instance enforces the limit on its own,
	// so a client spread over N instances gets up to N times the limit) or
	// "global" (the limit holds across every instance, through Redis).
	Scope string `mapstructure:"scope"`

	// MaxKeys bounds the clients a limit tracks at once on one instance.
	// Default 1,000,000, rounded up to a multiple of 256 (the shards). A
	// local key costs at most BytesPerKey (224 bytes; about 170 measured),
	// so the default bounds a local limit at 224 MB. Size it to the
	// distinct clients expected within the time a bucket takes to refill
	// (Burst / rate), times 2: beyond it, clients are evicted while their
	// bucket is not yet full, each gaining at most one burst.
	MaxKeys int `mapstructure:"max_keys"`

	// FailClosed refuses every request of a global limit while Redis cannot
	// be reached, instead of falling back to this instance's share of the
	// limit. Default false.
	FailClosed bool `mapstructure:"fail_closed"`

	// SyncInterval is how often a global limit reconciles with Redis (a key
	// whose local allowance runs out syncs earlier). Default 100ms; each
	// client active on an instance costs one Redis script call per interval
	// and instance. Shorter intervals tighten the limit, longer ones cost
	// Redis less.
	SyncInterval time.Duration `mapstructure:"sync_interval"`

	// SyncTimeout bounds one exchange with Redis (a pipeline of up to 512
	// clients); one that takes longer puts the limit in degraded mode.
	// Default 2 × SyncInterval. No request ever waits on it.
	SyncTimeout time.Duration `mapstructure:"sync_timeout"`

	// InstanceID names this gateway instance in Redis, where instances
	// heartbeat so each knows how many share a global limit. Default: a
	// random id per process. It must differ between instances.
	InstanceID string `mapstructure:"-"`

	// Now is the clock. Nil means time.Now. Tests inject their own.
	Now func() time.Time `mapstructure:"-"`

	// Logger receives one line when a global limit enters degraded mode and
	// one when it leaves it. Nil means slog.Default().
	Logger *slog.Logger `mapstructure:"-"`
}

// WithDefaults returns a copy of o with every zero field set to its
// documented default. A Rate that does not parse leaves Burst at zero, for
// Validate to report.
func (o Options) WithDefaults() Options {
	if o.Burst == 0 {
		if r, err := ParseRate(o.Rate); err == nil {
			o.Burst = r.N
		}
	}
	if o.Scope == "" {
		o.Scope = DefaultScope
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = 2 * o.SyncInterval
	}
	return o
}

// FieldError is one problem with one option of a limit. Path is the YAML
// name of the option ("rate", "burst"), so that the config package prefixes
// "rate_limits.<name>." to it without reading the message.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every problem of o, as completed by WithDefaults (so a
// zero field is never an error, a negative one is), joined with errors.Join,
// each a *FieldError ("rate: invalid rate \"100\": ..."). It returns nil when
// o is usable.
func (o *Options) Validate() error {
	d := o.WithDefaults()
	var errs []error
	add := func(path string, err error) { errs = append(errs, &FieldError{Path: path, Err: err}) }

	if err := validateName(d.Name); err != nil {
		add("name", err)
	}
	if _, err := ParseRate(d.Rate); err != nil {
		add("rate", err)
	}
	switch {
	case d.Burst < 0:
		add("burst", fmt.Errorf("%d must not be negative", d.Burst))
	case d.Burst > maxBurst:
		add("burst", fmt.Errorf("%d is more than %d", d.Burst, maxBurst))
	}
	switch d.Scope {
	case ScopeLocal, ScopeGlobal:
	default:
		add("scope", fmt.Errorf("unknown scope %q (want %s or %s)", d.Scope, ScopeLocal, ScopeGlobal))
	}
	if d.MaxKeys < 0 {
		add("max_keys", fmt.Errorf("%d must not be negative", d.MaxKeys))
	}
	if d.SyncInterval < 0 {
		add("sync_interval", fmt.Errorf("%v must not be negative", d.SyncInterval))
	} else if d.SyncInterval < minSyncInterval {
		add("sync_interval", fmt.Errorf("%v is shorter than %v", d.SyncInterval, minSyncInterval))
	}
	if d.SyncTimeout < 0 {
		add("sync_timeout", fmt.Errorf("%v must not be negative", d.SyncTimeout))
	}
	return errors.Join(errs...)
}

const (
	maxBurst        = 1 << 30
	minSyncInterval = 10 * time.Millisecond
)

func validateName(name string) error {
	if name == "" {
		return errors.New("is required")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_-.:", c) >= 0) {
			return fmt.Errorf("%q has %q: use letters, digits and _-.: only", name, c)
		}
	}
	return nil
}

// Rate is N requests per period Per.
type Rate struct {
	N   int
	Per time.Duration
}

// PerSecond is the rate in requests per second.
func (r Rate) PerSecond() float64 { return float64(r.N) / r.Per.Seconds() }

// String writes r as ParseRate reads it: "100/s", "6000/m", "10/h",
// "500/10s".
func (r Rate) String() string {
	switch r.Per {
	case time.Second:
		return strconv.Itoa(r.N) + "/s"
	case time.Minute:
		return strconv.Itoa(r.N) + "/m"
	case time.Hour:
		return strconv.Itoa(r.N) + "/h"
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String()
}

const rateSyntax = "want <count>/<unit>, such as 100/s, 6000/m, 10/h or 500/10s"

// ParseRate reads "<count>/<unit>": a whole count of at least 1, a slash,
// and s, m, h or a Go duration of at least 1ms ("100/s", "6000/m", "10/h",
// "500/10s"). Spaces around the parts are allowed.
func ParseRate(s string) (Rate, error) {
	count, unit, ok := strings.Cut(s, "/")
	if !ok {
		if strings.TrimSpace(s) == "" {
			return Rate{}, fmt.Errorf("is required: %s", rateSyntax)
		}
		return Rate{}, fmt.Errorf("invalid rate %q: no \"/\": %s", s, rateSyntax)
	}
	count, unit = strings.TrimSpace(count), strings.TrimSpace(unit)
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return Rate{}, fmt.Errorf("invalid rate %q: count %q is not a whole number of at least 1: %s", s, count, rateSyntax)
	}
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		per, err = time.ParseDuration(unit)
		if err != nil || unit == "" || unit[0] < '0' || unit[0] > '9' {
			return Rate{}, fmt.Errorf("invalid rate %q: unknown unit %q: %s", s, unit, rateSyntax)
		}
		if per < time.Millisecond {
			return Rate{}, fmt.Errorf("invalid rate %q: period %v is shorter than 1ms", s, per)
		}
	}
	if float64(n)/per.Seconds() > math.MaxInt32 {
		return Rate{}, fmt.Errorf("invalid rate %q: more than %d per second", s, math.MaxInt32)
	}
	return Rate{N: n, Per: per}, nil
}
