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
	DefaultDNSRefresh          = 30 * time.Second

	DefaultHealthCheckInterval = time.Second
	DefaultHealthCheckTimeout  = 500 * time.Millisecond
	DefaultHealthCheckRise     = 2
	DefaultHealthCheckFall     = 3
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
	// Weight is used by weighted_round_robin; the other policies ignore it.
	// A name's or SRV's addresses all get it. Default 1; 0 is "default",
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
	return errors.Join(errs...)
}

const maxInt = int64(^uint(0) >> 1)

func notNegative(errs *[]error, key string, d time.Duration) {
	if d < 0 {
		*errs = append(*errs, &FieldError{Path: key, Err: fmt.Errorf("%v must not be negative", d)})
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
