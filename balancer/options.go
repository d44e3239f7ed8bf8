package balancer

import (
	"errors"
	"fmt"
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
)

// Defaults applied by WithDefaults to zero fields.
const (
	DefaultPolicy              = PolicyRoundRobin
	DefaultTimeout             = 5 * time.Second
	DefaultConnectTimeout      = time.Second
	DefaultMaxConnsPerBackend  = 512
	DefaultMaxIdleConnDuration = 30 * time.Second
	DefaultMaxResponseBody     = 64 << 20
	DefaultWeight              = 1

	DefaultHealthCheckInterval = time.Second
	DefaultHealthCheckTimeout  = 500 * time.Millisecond
	DefaultHealthCheckRise     = 2
	DefaultHealthCheckFall     = 3

	DefaultPipelineConns        = 8
	DefaultPipelineBatchDelay   = 50 * time.Microsecond
	DefaultPipelineSlowResponse = 10 * time.Millisecond
	// MaxPipelineDepth bounds upstream.pipeline.depth: past a few dozen,
	// deeper pipelines only lengthen the queue behind a slow response.
	MaxPipelineDepth = 64
)

// Options configure one pool. The zero value of every field means "use the
// default" given in its comment; call WithDefaults before use and Validate to
// check the result.
type Options struct {
	// Policy chooses a backend for each request: "round_robin" (default),
	// "weighted_round_robin" (smooth weighted, as nginx does) or "least_conn"
	// (fewest requests in flight, ties taken in turn so load spreads).
	Policy string `mapstructure:"policy"`

	// Backends are the servers of the pool, in order. At least one is
	// required.
	Backends []BackendOptions `mapstructure:"backends"`

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

// BackendOptions name one server of a pool.
type BackendOptions struct {
	// Addr is host:port of the backend, e.g. "127.0.0.1:9001". Required.
	Addr string `mapstructure:"addr"`
	// Weight is used by weighted_round_robin; the other policies ignore it.
	// Default 1; 0 is "default", negative is an error.
	Weight int `mapstructure:"weight"`
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
	o.Upstream.Pipeline = o.Upstream.Pipeline.WithDefaults()
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
	case PolicyRoundRobin, PolicyWeightedRoundRobin, PolicyLeastConn:
	default:
		add("policy", "unknown policy %q (want %s, %s or %s)", d.Policy,
			PolicyRoundRobin, PolicyWeightedRoundRobin, PolicyLeastConn)
	}

	if len(d.Backends) == 0 {
		add("backends", "at least one backend is required")
	}
	seen := make(map[string]int, len(d.Backends))
	for i, b := range d.Backends {
		at := fmt.Sprintf("backends[%d]", i)
		if err := validateAddr(b.Addr); err != nil {
			errs = append(errs, &FieldError{Path: at + ".addr", Err: err})
		} else if first, dup := seen[b.Addr]; dup {
			add(at+".addr", "duplicate of backends[%d]", first)
		} else {
			seen[b.Addr] = i
		}
		if b.Weight < 0 {
			add(at+".weight", "%d must not be negative", b.Weight)
		}
	}

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

// validateAddr accepts host:port with a non-empty host and a numeric port in
// 1-65535. Names are allowed (resolved when a connection is dialled).
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
