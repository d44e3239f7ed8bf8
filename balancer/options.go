package balancer

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Policy names accepted in Options.Policy.
const (
	PolicyRoundRobin         = "round_robin"
	PolicyWeightedRoundRobin = "weighted_round_robin"
	PolicyLeastConn          = "least_conn"
	PolicyP2CEWMA            = "p2c_ewma"
	PolicyConsistentHash     = "consistent_hash"
)

// Defaults applied by WithDefaults to zero fields.
const (
	DefaultPolicy              = PolicyP2CEWMA
	DefaultTimeout             = 5 * time.Second
	DefaultConnectTimeout      = time.Second
	DefaultMaxConnsPerBackend  = 512
	DefaultMaxIdleConnDuration = 30 * time.Second
	DefaultMaxResponseBody     = 64 << 20
	DefaultBufferResponse      = 64 << 10
	DefaultStreamTimeout       = time.Minute
	DefaultWeight              = 1
	DefaultHashKey             = "client"
	DefaultHashLoadFactor      = 1.25
	DefaultDNSRefresh          = 30 * time.Second

	DefaultHealthCheckInterval = time.Second
	DefaultHealthCheckTimeout  = 500 * time.Millisecond
	DefaultHealthCheckRise     = 2
	DefaultHealthCheckFall     = 3

	DefaultConsecutiveFailures = 5
	DefaultBaseEjectionTime    = 30 * time.Second
	DefaultMaxEjectionTime     = 5 * time.Minute
	DefaultMaxEjectionPercent  = 50

	DefaultMaxQueue     = 128
	DefaultQueueTimeout = 250 * time.Millisecond

	DefaultPipelineConns        = 8
	DefaultPipelineBatchDelay   = 50 * time.Microsecond
	DefaultPipelineSlowResponse = 10 * time.Millisecond
	// MaxPipelineDepth bounds upstream.pipeline.depth: past a few dozen,
	// deeper pipelines only lengthen the queue behind a slow response.
	MaxPipelineDepth = 64
)

// Off, given to an option whose documented default is on
// (outlier_detection.consecutive_failures, circuit_breaker.max_queue),
// turns that feature off. Zero cannot say it: zero means "the default".
const Off = -1

// Options configure one pool. The zero value of every field means "use the
// default" given in its comment; call WithDefaults before use and Validate to
// check the result.
type Options struct {
	// Policy chooses a backend for each request: "p2c_ewma" (default: the
	// cheaper of two random backends by in-flight × latency average, which
	// sends less to a backend that turns slow), "round_robin",
	// "weighted_round_robin" (smooth weighted, as nginx does), "least_conn"
	// (fewest requests in flight, ties taken in turn so load spreads) or
	// "consistent_hash" (the same hash_key to the same backend, with
	// bounded loads).
	Policy string `mapstructure:"policy"`

	// HashKey is what consistent_hash hashes: "client" (default, the
	// client's identity), "header:NAME", "cookie:NAME", "query:NAME" or
	// "path:N" (the N-th path segment, from 1). Requests without it are
	// placed as p2c_ewma would. Other policies ignore it.
	HashKey string `mapstructure:"hash_key"`

	// HashLoadFactor is consistent_hash's bound on load: a backend takes a
	// key only while its requests in flight are below this many times its
	// share of the pool's, else the key goes to the next backend on the
	// ring. Default 1.25, at least 1. Lower spreads load more evenly and
	// moves more keys off their backend under load; 2 moves keys only from
	// a backend at twice the mean.
	HashLoadFactor float64 `mapstructure:"hash_load_factor"`

	// SlowStart, when above 0, ramps up the share of a backend that comes
	// back after being out (health checks or outlier ejection), from 10%
	// linearly to 100% over this long, so its cold caches and connection
	// pools are not hit with a full share at once. Default 0 (off);
	// 30s-60s suits backends that warm up (JIT, caches). Backends that are
	// up when the gateway starts get their full share at once.
	SlowStart time.Duration `mapstructure:"slow_start"`

	// Backends are the servers of the pool, in order. At least one is
	// required.
	Backends []BackendOptions `mapstructure:"backends"`

	// DNSRefresh is how often the gateway looks up again the names among
	// Backends (an addr whose host is not an IP, or an srv). Default 30s;
	// lower it (5s) where instances come and go quickly, since a new one
	// gets no traffic until the next lookup finds it. Pools without names
	// ignore it.
	DNSRefresh time.Duration `mapstructure:"dns_refresh"`

	// HealthCheck probes each backend in the background.
	HealthCheck HealthCheckOptions `mapstructure:"health_check"`

	// Timeout bounds the whole upstream exchange: connect, write the request,
	// read the response. Default 5s. A request that runs past it gets 504.
	Timeout time.Duration `mapstructure:"timeout"`

	// ConnectTimeout bounds the TCP connect to a backend. Default 1s (or
	// Timeout, when that is shorter); keep it
	// well under Timeout so a dead backend costs a retry, not the deadline.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`

	// MaxConnsPerBackend caps the connections kept open to each backend.
	// Default 512. A request that finds every connection busy waits for one
	// until its Timeout.
	MaxConnsPerBackend int `mapstructure:"max_conns_per_backend"`

	// MaxIdleConnDuration closes a pooled upstream connection that has been
	// idle this long. Default 30s; keep it below the backends' own keep-alive
	// timeout so the gateway, not the backend, closes idle connections.
	MaxIdleConnDuration time.Duration `mapstructure:"max_idle_conn_duration"`

	// MaxResponseBody is the largest response body, in bytes, the gateway
	// accepts from a backend. Default 64 MiB; a larger body is answered 502.
	MaxResponseBody int64 `mapstructure:"max_response_body"`

	// BufferResponse is the largest response body read whole before it is
	// sent on. Default 64 KiB. A larger body, or one of unknown length
	// (chunked, or ended by the backend closing), streams to the client as
	// it arrives, with memory bounded per connection: it is never cached,
	// and the connection goes back to the pool only once the body has been
	// read to its end. Buffered answers are the fast path (one write, no
	// per-piece work) and the only cacheable ones; raise it to about the
	// route's cache max_entry when larger answers should be cached.
	BufferResponse int64 `mapstructure:"buffer_response"`

	// StreamTimeout bounds the wait for the next piece of a streamed
	// response body (the whole exchange up to the response head is
	// Timeout's). Default 1m; keep it above the interval of an event
	// stream's keep-alive comments.
	StreamTimeout time.Duration `mapstructure:"stream_timeout"`

	// Outlier ejects a backend that keeps failing real requests, without
	// waiting for the active health check (outlier_detection).
	Outlier OutlierOptions `mapstructure:"outlier_detection"`

	// CircuitBreaker caps the requests in flight and queues the excess
	// for a short while (circuit_breaker).
	CircuitBreaker CircuitBreakerOptions `mapstructure:"circuit_breaker"`
	// Upstream tunes how requests travel to the backends.
	Upstream UpstreamOptions `mapstructure:"upstream"`
}

// UpstreamOptions tune the upstream exchanges of a pool.
type UpstreamOptions struct {
	// Pipeline turns on HTTP/1.1 pipelining to the pool's backends. Off by
	// default.
	Pipeline PipelineOptions `mapstructure:"pipeline"`
}

// PipelineOptions configure HTTP/1.1 pipelining (RFC 9112 §9.3.2): GET, HEAD
// and OPTIONS requests without a body share a few connections per backend
// and are written in batches, their responses read back in order. It costs
// a backend's slowest response to the requests queued behind it (SlowResponse
// bounds that), and it needs backends that really support pipelining: one
// that closes pipelined connections or answers out of framing has it turned
// off, and every request then takes an ordinary connection. Everything
// else (requests with bodies, other methods, upgrades) always does.
type PipelineOptions struct {
	// Depth is the most requests waiting for their response on one
	// pipelined connection. 0 (default) turns pipelining off; 8 is a good
	// start. At most MaxPipelineDepth.
	Depth int `mapstructure:"depth"`
	// Conns is the most pipelined connections per backend, opened as load
	// needs them. Default 8: with Depth 8 that carries 64 requests at once;
	// a request that finds every one full or stalled takes an ordinary
	// connection.
	Conns int `mapstructure:"conns"`
	// BatchDelay is how long a connection's writer waits for more requests
	// to join a batch while earlier ones are still unanswered; an idle
	// connection writes at once, so it adds no latency at low load. Default
	// 50µs, the window the prototype measured best at.
	BatchDelay time.Duration `mapstructure:"batch_delay"`
	// SlowResponse is head-of-line protection: a connection whose oldest
	// unanswered response has been awaited this long takes no new requests
	// until it arrives. Default 10ms; keep it a few times the backend's
	// usual response time.
	SlowResponse time.Duration `mapstructure:"slow_response"`
}

// Enabled reports whether pipelining is on.
func (o PipelineOptions) Enabled() bool { return o.Depth > 0 }

// WithDefaults returns a copy of o with every zero field set to its
// documented default; with pipelining off it returns o unchanged.
func (o PipelineOptions) WithDefaults() PipelineOptions {
	if !o.Enabled() {
		return o
	}
	if o.Conns == 0 {
		o.Conns = DefaultPipelineConns
	}
	if o.BatchDelay == 0 {
		o.BatchDelay = DefaultPipelineBatchDelay
	}
	if o.SlowResponse == 0 {
		o.SlowResponse = DefaultPipelineSlowResponse
	}
	return o
}

// OutlierOptions configure passive health: a backend whose exchanges fail
// ConsecutiveFailures times in a row (5xx, connect failure, timeout) is
// ejected for a while, then let back. Each ejection lasts
// BaseEjectionTime × the backend's ejection level, capped at
// MaxEjectionTime; the level grows by one per ejection and falls by one for
// every BaseEjectionTime the backend spends back in the pool, so a backend
// that flaps stays out longer and one that recovers is forgiven.
type OutlierOptions struct {
	// ConsecutiveFailures in a row eject a backend. Default 5; Off (-1)
	// turns passive ejection off. Lower reacts faster and ejects more on a
	// burst of errors a backend passes on from its own dependencies.
	ConsecutiveFailures int `mapstructure:"consecutive_failures"`
	// BaseEjectionTime is the first ejection's length and the step of the
	// following ones. Default 30s.
	BaseEjectionTime time.Duration `mapstructure:"base_ejection_time"`
	// MaxEjectionTime caps one ejection. Default 5m; at least
	// BaseEjectionTime.
	MaxEjectionTime time.Duration `mapstructure:"max_ejection_time"`
	// MaxEjectionPercent of the pool's backends may be ejected at once,
	// rounded down but at least one in a pool of two or more (a single
	// backend is only ejected at 100). Default 50: when half the pool
	// fails the fault is rarely the backends', and ejecting more would
	// pile the load on the few left.
	MaxEjectionPercent int `mapstructure:"max_ejection_percent"`
}

// CircuitBreakerOptions cap the load the gateway puts on a pool. A backend
// at its cap is not picked; when every healthy backend is at its cap, or the
// pool is at MaxRequests, a request waits in a FIFO queue for a place, up to
// QueueTimeout and never past its own deadline, and is refused with
// ErrOverloaded (503) when the queue is full or the wait runs out. Below the
// caps nothing waits and nothing locks.
//
// The caps are off by default: the connection limit (max_conns_per_backend)
// already bounds each backend, a request finding every connection busy
// waiting for one until its deadline. Set MaxRequestsPerBackend to
// max_conns_per_backend or below to turn that long wait into a choice of
// another backend, or a quick 503.
type CircuitBreakerOptions struct {
	// MaxRequestsPerBackend caps the requests in flight on one backend.
	// Default 0: no cap.
	MaxRequestsPerBackend int `mapstructure:"max_requests_per_backend"`
	// MaxRequests caps the requests in flight on the whole pool. Default 0:
	// no cap.
	MaxRequests int `mapstructure:"max_requests"`
	// MaxQueue is how many requests may wait for a place at once. Default
	// 128; Off (-1) refuses at once. A queue absorbs bursts shorter than
	// QueueTimeout; a longer one only adds latency before the 503.
	MaxQueue int `mapstructure:"max_queue"`
	// QueueTimeout is the longest a request waits for a place. Default
	// 250ms: about the time a backend at its cap takes to finish a few
	// typical requests, short against clients' own timeouts.
	QueueTimeout time.Duration `mapstructure:"queue_timeout"`
}

// BackendOptions name one server of a pool, or, through DNS, several.
type BackendOptions struct {
	// Addr is host:port of the backend, e.g. "127.0.0.1:9001". A host that
	// is a name ("orders.svc:8080") stands for every address it resolves
	// to (A and AAAA), looked up again every DNSRefresh. Exactly one of
	// Addr and SRV is required.
	Addr string `mapstructure:"addr"`
	// SRV is a DNS SRV name ("_orders._tcp.svc.local") whose targets and
	// ports are the backends, looked up again every DNSRefresh; only the
	// targets of the lowest priority are used, all with Weight (the
	// records' own weights are ignored). Exactly one of Addr and SRV is
	// required.
	SRV string `mapstructure:"srv"`
	// Weight is the backend's relative share for weighted_round_robin,
	// p2c_ewma (its cost is divided by it) and consistent_hash (its share
	// of the ring and of the load bound); round_robin and least_conn ignore
	// it. A name's or SRV's addresses all get it. Default 1; 0 is "default",
	// negative is an error.
	Weight int `mapstructure:"weight"`
}

// Validate reports every problem of b, each a *FieldError whose path is
// the key inside the backend ("addr", "srv", "weight"), joined with
// errors.Join; nil when b is usable.
func (b BackendOptions) Validate() error {
	var errs []error
	add := func(path string, err error) { errs = append(errs, &FieldError{Path: path, Err: err}) }
	switch {
	case b.Addr != "" && b.SRV != "":
		add("srv", errors.New("set addr or srv, not both"))
	case b.SRV != "":
		if err := validateSRV(b.SRV); err != nil {
			add("srv", err)
		}
	default:
		if err := validateAddr(b.Addr); err != nil {
			add("addr", err)
		}
	}
	if b.Weight < 0 {
		add("weight", fmt.Errorf("%d must not be negative", b.Weight))
	}
	return errors.Join(errs...)
}

// key identifies a backend entry for the duplicate check: two entries with
// the same key would build the same backends.
func (b BackendOptions) key() string {
	if b.SRV != "" {
		return "srv " + strings.ToLower(strings.TrimSuffix(b.SRV, "."))
	}
	return b.Addr
}

// HealthCheckOptions configure active health checking. With an empty Path no
// probes are sent and every backend is considered healthy.
type HealthCheckOptions struct {
	// Path is requested with GET on each backend; any 2xx or 3xx answer is a
	// pass. Empty (default) disables active checks.
	Path string `mapstructure:"path"`
	// Interval between probes of one backend. Default 1s.
	Interval time.Duration `mapstructure:"interval"`
	// Timeout of one probe. Default 500ms, or half of Interval when that is
	// shorter; must be less than Interval.
	Timeout time.Duration `mapstructure:"timeout"`
	// Rise is how many passes in a row bring an unhealthy backend back.
	// Default 2.
	Rise int `mapstructure:"rise"`
	// Fall is how many failures in a row take a healthy backend out.
	// Default 3.
	Fall int `mapstructure:"fall"`
}

// WithDefaults returns a copy of o with every zero field set to its
// documented default. It never changes o, not even the Backends slice it
// shares with the caller.
func (o Options) WithDefaults() Options {
	if o.Policy == "" {
		o.Policy = DefaultPolicy
	}
	if o.HashKey == "" {
		o.HashKey = DefaultHashKey
	}
	if o.HashLoadFactor == 0 {
		o.HashLoadFactor = DefaultHashLoadFactor
	}
	if o.Backends != nil {
		backends := make([]BackendOptions, len(o.Backends))
		copy(backends, o.Backends)
		for i := range backends {
			if backends[i].Weight == 0 {
				backends[i].Weight = DefaultWeight
			}
		}
		o.Backends = backends
	}
	o.HealthCheck = o.HealthCheck.WithDefaults()
	if o.DNSRefresh == 0 {
		o.DNSRefresh = DefaultDNSRefresh
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ConnectTimeout == 0 {
		// A short pool timeout bounds the connect too, so the default never
		// contradicts an explicit timeout.
		o.ConnectTimeout = DefaultConnectTimeout
		if o.Timeout > 0 && o.Timeout < o.ConnectTimeout {
			o.ConnectTimeout = o.Timeout
		}
	}
	if o.MaxConnsPerBackend == 0 {
		o.MaxConnsPerBackend = DefaultMaxConnsPerBackend
	}
	if o.MaxIdleConnDuration == 0 {
		o.MaxIdleConnDuration = DefaultMaxIdleConnDuration
	}
	if o.MaxResponseBody == 0 {
		o.MaxResponseBody = DefaultMaxResponseBody
	}
	if o.BufferResponse == 0 {
		o.BufferResponse = DefaultBufferResponse
	}
	if o.StreamTimeout == 0 {
		o.StreamTimeout = DefaultStreamTimeout
	}
	o.Upstream.Pipeline = o.Upstream.Pipeline.WithDefaults()
	o.Outlier = o.Outlier.WithDefaults()
	o.CircuitBreaker = o.CircuitBreaker.WithDefaults()
	return o
}

// WithDefaults returns a copy of o with every zero field set to its
// documented default.
func (o OutlierOptions) WithDefaults() OutlierOptions {
	if o.ConsecutiveFailures == 0 {
		o.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if o.BaseEjectionTime == 0 {
		o.BaseEjectionTime = DefaultBaseEjectionTime
	}
	if o.MaxEjectionTime == 0 {
		// Never below an explicit base, so that setting only the base is
		// never an error.
		o.MaxEjectionTime = max(DefaultMaxEjectionTime, o.BaseEjectionTime)
	}
	if o.MaxEjectionPercent == 0 {
		o.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	return o
}

// Enabled reports whether passive ejection is on.
func (o OutlierOptions) Enabled() bool { return o.ConsecutiveFailures > 0 }

// WithDefaults returns a copy of o with every zero field set to its
// documented default.
func (o CircuitBreakerOptions) WithDefaults() CircuitBreakerOptions {
	if o.MaxQueue == 0 {
		o.MaxQueue = DefaultMaxQueue
	}
	if o.QueueTimeout == 0 {
		o.QueueTimeout = DefaultQueueTimeout
	}
	return o
}

// WithDefaults returns a copy of o with every zero field set to its
// documented default.
func (o HealthCheckOptions) WithDefaults() HealthCheckOptions {
	if o.Interval == 0 {
		o.Interval = DefaultHealthCheckInterval
	}
	if o.Timeout == 0 {
		// With a short interval the default timeout is half of it, so that
		// setting only the interval is never an error.
		o.Timeout = DefaultHealthCheckTimeout
		if o.Interval > 0 && o.Interval/2 < o.Timeout {
			o.Timeout = o.Interval / 2
		}
	}
	if o.Rise == 0 {
		o.Rise = DefaultHealthCheckRise
	}
	if o.Fall == 0 {
		o.Fall = DefaultHealthCheckFall
	}
	return o
}

// FieldError is one problem with one option of a pool. Path is relative to
// the pool, in YAML names ("backends[1].addr", "health_check.timeout"), so
// that the config package prefixes "pools.<name>." to it without reading the
// message.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every problem of o, as completed by WithDefaults (so a zero
// field is never an error, a negative one is), joined with errors.Join, each
// a *FieldError ("backends[1].addr: missing port in address ..."). It
// returns nil when o is usable.
func (o *Options) Validate() error {
	d := o.WithDefaults()
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Err: fmt.Errorf(format, args...)})
	}

	switch d.Policy {
	case PolicyRoundRobin, PolicyWeightedRoundRobin, PolicyLeastConn, PolicyP2CEWMA, PolicyConsistentHash:
	default:
		add("policy", "unknown policy %q (want %s, %s, %s, %s or %s)", d.Policy,
			PolicyRoundRobin, PolicyWeightedRoundRobin, PolicyLeastConn, PolicyP2CEWMA, PolicyConsistentHash)
	}
	if _, err := ParseKeySource(d.HashKey); err != nil {
		errs = append(errs, &FieldError{Path: "hash_key", Err: err})
	}
	if !(d.HashLoadFactor >= 1) || math.IsInf(d.HashLoadFactor, 1) { // !(>=) also catches NaN
		add("hash_load_factor", "%v must be a number of at least 1", d.HashLoadFactor)
	}
	notNegative(&errs, "slow_start", d.SlowStart)

	if len(d.Backends) == 0 {
		add("backends", "at least one backend is required")
	}
	seen := make(map[string]int, len(d.Backends))
	for i, b := range d.Backends {
		at := fmt.Sprintf("backends[%d]", i)
		bad := false
		for _, err := range unjoin(b.Validate()) {
			var fe *FieldError
			if errors.As(err, &fe) {
				bad = bad || fe.Path != "weight"
				errs = append(errs, &FieldError{Path: at + "." + fe.Path, Err: fe.Err})
			}
		}
		if bad {
			continue
		}
		if first, dup := seen[b.key()]; dup {
			field := ".addr"
			if b.SRV != "" {
				field = ".srv"
			}
			add(at+field, "duplicate of backends[%d]", first)
		} else {
			seen[b.key()] = i
		}
	}
	notNegative(&errs, "dns_refresh", d.DNSRefresh)

	hc := d.HealthCheck
	if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
		add("health_check.path", "%q must start with \"/\"", hc.Path)
	}
	notNegative(&errs, "health_check.interval", hc.Interval)
	notNegative(&errs, "health_check.timeout", hc.Timeout)
	if hc.Interval > 0 && hc.Timeout > 0 && hc.Timeout >= hc.Interval {
		add("health_check.timeout", "%v must be less than interval %v", hc.Timeout, hc.Interval)
	}
	if hc.Rise < 0 {
		add("health_check.rise", "%d must not be negative", hc.Rise)
	}
	if hc.Fall < 0 {
		add("health_check.fall", "%d must not be negative", hc.Fall)
	}

	notNegative(&errs, "timeout", d.Timeout)
	notNegative(&errs, "connect_timeout", d.ConnectTimeout)
	if d.Timeout > 0 && d.ConnectTimeout > d.Timeout {
		add("connect_timeout", "%v must not exceed timeout %v", d.ConnectTimeout, d.Timeout)
	}
	if d.MaxConnsPerBackend < 0 {
		add("max_conns_per_backend", "%d must not be negative", d.MaxConnsPerBackend)
	}
	notNegative(&errs, "max_idle_conn_duration", d.MaxIdleConnDuration)
	if d.MaxResponseBody < 0 {
		add("max_response_body", "%d must not be negative", d.MaxResponseBody)
	} else if d.MaxResponseBody > maxInt {
		add("max_response_body", "%d is larger than this platform allows (%d)", d.MaxResponseBody, maxInt)
	}
	if d.BufferResponse < 0 {
		add("buffer_response", "%d must not be negative", d.BufferResponse)
	} else if d.BufferResponse > maxInt {
		add("buffer_response", "%d is larger than this platform allows (%d)", d.BufferResponse, maxInt)
	}
	notNegative(&errs, "stream_timeout", d.StreamTimeout)

	od := d.Outlier
	offOrPositive(&errs, "outlier_detection.consecutive_failures", od.ConsecutiveFailures)
	notNegative(&errs, "outlier_detection.base_ejection_time", od.BaseEjectionTime)
	notNegative(&errs, "outlier_detection.max_ejection_time", od.MaxEjectionTime)
	if od.BaseEjectionTime > 0 && od.MaxEjectionTime > 0 && od.MaxEjectionTime < od.BaseEjectionTime {
		add("outlier_detection.max_ejection_time", "%v must not be less than base_ejection_time %v",
			od.MaxEjectionTime, od.BaseEjectionTime)
	}
	if od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
		add("outlier_detection.max_ejection_percent", "%d must be between 1 and 100", od.MaxEjectionPercent)
	}

	cb := d.CircuitBreaker
	if cb.MaxRequestsPerBackend < 0 {
		add("circuit_breaker.max_requests_per_backend", "%d must not be negative", cb.MaxRequestsPerBackend)
	}
	if cb.MaxRequests < 0 {
		add("circuit_breaker.max_requests", "%d must not be negative", cb.MaxRequests)
	}
	offOrPositive(&errs, "circuit_breaker.max_queue", cb.MaxQueue)
	notNegative(&errs, "circuit_breaker.queue_timeout", cb.QueueTimeout)
	pl := d.Upstream.Pipeline
	if pl.Depth < 0 || pl.Depth > MaxPipelineDepth {
		add("upstream.pipeline.depth", "%d must be between 0 (off) and %d", pl.Depth, MaxPipelineDepth)
	}
	if pl.Conns < 0 {
		add("upstream.pipeline.conns", "%d must not be negative", pl.Conns)
	}
	notNegative(&errs, "upstream.pipeline.batch_delay", pl.BatchDelay)
	notNegative(&errs, "upstream.pipeline.slow_response", pl.SlowResponse)
	return errors.Join(errs...)
}

const maxInt = int64(^uint(0) >> 1)

func notNegative(errs *[]error, key string, d time.Duration) {
	if d < 0 {
		*errs = append(*errs, &FieldError{Path: key, Err: fmt.Errorf("%v must not be negative", d)})
	}
}

// offOrPositive reports a count that is neither Off nor positive (after
// WithDefaults, zero is no longer possible).
func offOrPositive(errs *[]error, key string, n int) {
	if n < 0 && n != Off {
		*errs = append(*errs, &FieldError{Path: key, Err: fmt.Errorf("%d must be positive, or -1 (off)", n)})
	}
}

// unjoin returns the members of an errors.Join result (nil for nil).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// validateSRV accepts a DNS name (letters, digits, "-", "_", "." between
// non-empty labels), which is what an SRV query takes: no port, no scheme.
func validateSRV(name string) error {
	trimmed := strings.TrimSuffix(name, ".")
	if trimmed == "" {
		return errors.New("empty name")
	}
	if net.ParseIP(trimmed) != nil {
		return fmt.Errorf("%q is an IP address, want a DNS name such as _orders._tcp.svc.local", name)
	}
	for _, label := range strings.Split(trimmed, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a DNS name (empty or over-long label)", name)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a DNS name (character %q); want e.g. _orders._tcp.svc.local, with no port", name, c)
			}
		}
	}
	return nil
}

// validateAddr accepts host:port with a non-empty host and a numeric port in
// 1-65535. A host that is a name is resolved by the gateway (see
// BackendOptions.Addr).
func validateAddr(addr string) error {
	if addr == "" {
		return errors.New("required (host:port)")
	}
	if strings.Contains(addr, "://") {
		return fmt.Errorf("%q is a URL, want host:port", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("%s %q", ae.Err, addr) // ae.Err ends "in address"
		}
		return fmt.Errorf("%w", err)
	}
	if host == "" {
		return fmt.Errorf("missing host in address %q", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port %q in address %q (want 1-65535)", port, addr)
	}
	return nil
}
