package config

import (
	"time"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/cache"
	"github.com/sluice-gw/sluice/ratelimit"
)

// Config is the whole gateway configuration: one YAML file, overridden by
// SLUICE_* environment variables. Start from Default (Load does) so that
// every field below holds its documented default unless the file or the
// environment says otherwise.
type Config struct {
	// Listen is the host:port of the public HTTP listener.
	// Default "127.0.0.1:8080"; must not be empty.
	Listen string `mapstructure:"listen"`

	// TLS turns the public listener into HTTPS when both files are set.
	// Default: both empty (plain HTTP).
	TLS TLS `mapstructure:"tls"`

	// Admin is the listener for health, metrics and the admin API.
	Admin Admin `mapstructure:"admin"`

	// Server holds the limits and timeouts of the public listener.
	Server Server `mapstructure:"server"`

	// Log configures the process log (not the access log).
	Log Log `mapstructure:"log"`

	// AccessLog configures the one-line-per-request log.
	AccessLog AccessLog `mapstructure:"access_log"`

	// Pools maps a pool name to its backends and balancing options. At least
	// one pool is required. Names are case-insensitive: the YAML loader folds
	// map keys to lower case, so Load refuses two names that differ only in
	// case (one would silently replace the other) and lower-cases every
	// Route.Pool to match. Zero option fields take balancer's defaults (Load
	// applies them).
	Pools map[string]balancer.Options `mapstructure:"pools"`

	// Redis is the server (one address) or Redis Cluster (several) that
	// every gateway instance shares: the cache's second tier, cluster-wide
	// rate limits, purges. Default: none; the gateway then runs on its
	// embedded defaults (L1 cache only, limits local to each instance) and
	// says so at start-up.
	Redis Redis `mapstructure:"redis"`

	// Cache bounds the in-process cache (L1) and tunes the shared one. Only
	// routes with cache.enabled use it. Zero fields take cache's defaults
	// (memory 256MiB, max_entry 1MiB).
	Cache cache.Options `mapstructure:"cache"`

	// RateLimits maps a limit name to its definition; routes refer to
	// limits by name. Default none.
	RateLimits map[string]RateLimit `mapstructure:"rate_limits"`

	// Routes are matched by specificity, not by order: among the routes
	// whose Match accepts a request, the most specific wins (exact host >
	// wildcard host, the longer suffix first > any host; then exact path >
	// longer path prefix; then a route with methods > one without; then more
	// header conditions > fewer). Order only breaks the remaining ties: the
	// earlier route wins. At least one route is required. The rules are
	// validated where they are compiled, in gateway/internal/route (reached
	// through gateway.Check), not by Validate.
	Routes []Route `mapstructure:"routes"`

	// Warnings lists what Load accepted but doubts, for the caller to print
	// or log: a SLUICE_ variable that names no setting. It is never read
	// from the file.
	Warnings []string `mapstructure:"-"`
}

// TLS names a certificate and its private key, both PEM files. Set both or
// neither; Validate loads them as a pair so a mismatch is caught before the
// listener starts (and before a reload swaps anything).
type TLS struct {
	// CertFile is the certificate chain, leaf first. Default "" (no TLS).
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the private key of the leaf. Default "" (no TLS).
	KeyFile string `mapstructure:"key_file"`
}

// Admin configures the admin listener.
type Admin struct {
	// Listen is the host:port of the admin listener. Default
	// "127.0.0.1:9901" (loopback only, since the admin API can change state);
	// "" disables it. Must differ from Config.Listen.
	Listen string `mapstructure:"listen"`
	// TokenFile holds the bearer token that admin writes (purge, …) must
	// carry in "Authorization: Bearer <token>". Default "": every admin
	// write is refused with 403. Reads stay open on the admin listener.
	// The file is read at start-up and on each reload; surrounding
	// whitespace is ignored.
	TokenFile string `mapstructure:"token_file"`
}

// Redis names the shared Redis and how long a request may wait for it.
type Redis struct {
	// Addrs: one host:port is a single server, several are the seed nodes
	// of a Redis Cluster. Default empty (no Redis).
	Addrs []string `mapstructure:"addrs"`
	// Timeout bounds every Redis call made on behalf of a request (an L2
	// cache read) and the dial. Default 20ms: a cache that waits longer
	// than a backend would answer is no cache.
	Timeout time.Duration `mapstructure:"timeout"`
	// Username and Password authenticate (Redis ACL). Default none.
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	// DB selects the database of a single server. Default 0; must be 0
	// with a Cluster.
	DB int `mapstructure:"db"`
}

// RateLimit is one named limit: how fast (ratelimit.Options: rate, burst,
// scope, …) and whom it counts (Key).
type RateLimit struct {
	ratelimit.Options `mapstructure:",squash"`
	// Key says what identifies a client: "ip" (default: the peer, or the
	// client a trusted proxy speaks for; never a raw header),
	// "header:NAME", "query:NAME", "cookie:NAME", or several joined with
	// "+" ("ip+header:X-API-Key"), which count each combination apart.
	Key string `mapstructure:"key"`
	// IP6Prefix limits IPv6 clients per network of this many bits, since
	// one host usually holds a whole /64. Default 64; 128 counts each
	// address apart. IPv4 clients are always counted per address.
	IP6Prefix int `mapstructure:"ip6_prefix"`
	// Missing decides for a request without the key (no such header,
	// say): "deny" (default, 429) or "shared" (all such requests share
	// one bucket). Never unlimited.
	Missing string `mapstructure:"missing"`
}

// Server holds the limits and timeouts of the public listener. Durations
// must not be negative; zero means what each field says. Sizes must be
// positive.
type Server struct {
	// ReadTimeout bounds reading one whole request, headers and body.
	// Default 10s; 0 disables it.
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// WriteTimeout bounds writing one whole response. Default 10s; 0
	// disables it.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long between
	// requests. Default 60s; keep it above the idle timeout of the L4
	// balancer in front so the balancer, not the gateway, closes first.
	// 0 does not disable it: fasthttp then uses ReadTimeout.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxRequestBody is the largest request body accepted; a larger one is
	// answered 413. Default 4MiB.
	MaxRequestBody Size `mapstructure:"max_request_body"`
	// BufferRequest is the largest request body read whole before the
	// request goes on. Default 4MiB, the default MaxRequestBody: nothing
	// streams until MaxRequestBody is raised above it (to accept uploads,
	// say). A longer body streams to the backend as it arrives, still
	// bounded by MaxRequestBody, and is not retried once its first byte has
	// left. Rule of thumb: 1MiB where uploads are large and common.
	BufferRequest Size `mapstructure:"buffer_request"`
	// MaxHeaderBytes bounds the request line plus headers; more is answered
	// 431. Default 16KiB, which fits large cookies and JWTs.
	MaxHeaderBytes Size `mapstructure:"max_header_bytes"`
	// MaxURILength bounds the request target; longer is answered 414.
	// Default 8KiB.
	MaxURILength Size `mapstructure:"max_uri_length"`
	// MergeSlashes routes "//a///b" as "/a/b" and sends it upstream that way.
	// Default true.
	MergeSlashes bool `mapstructure:"merge_slashes"`
	// AllowEncodedSlash lets %2F and %5C through in a path. Default false:
	// such a path is refused with 400, because backends disagree on whether
	// an encoded slash separates segments, which lets a request dodge a
	// prefix route.
	AllowEncodedSlash bool `mapstructure:"allow_encoded_slash"`
	// AllowMatrixParams lets ';' through in a path ("/app;jsessionid=1",
	// "/a;v=2/b"). Default false: such a path is refused with 400, because
	// servlet containers (Tomcat, Jetty) drop ";params" from a segment
	// before matching, so "/admin;x" would reach /admin on the backend
	// while the gateway routed it as another path.
	AllowMatrixParams bool `mapstructure:"allow_matrix_params"`
	// AllowUnderscoresInHeaders forwards header fields whose names contain
	// "_". Default false: they are dropped, as nginx does, because CGI-style
	// backends read X_Forwarded_For as X-Forwarded-For, which would let a
	// client forge the headers the gateway sets.
	AllowUnderscoresInHeaders bool `mapstructure:"allow_underscores_in_headers"`
	// TrustedProxies are CIDRs or single IPs whose X-Forwarded-* headers are
	// kept; from anyone else those headers are replaced. Default empty
	// (trust nobody).
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// MaxConcurrency is the most requests the gateway handles at once.
	// Past a share of it, routes are shed with 503 and Retry-After by
	// priority: "low" routes at 75% of it, "normal" at 90%, "high" at 100%.
	// Shedding early keeps the latency of admitted requests bounded instead
	// of letting every request queue. Default 0: no limit.
	MaxConcurrency int `mapstructure:"max_concurrency"`
	// DrainTimeout is how long after SIGTERM the process exits anyway,
	// ShutdownDelay included: in-flight requests still running then are
	// cut. Default 30s; keep it below the orchestrator's kill grace period
	// (Kubernetes: 30s by default, so raise that too). 0 means no wait at
	// all: in-flight requests are cut at once.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
	// ShutdownDelay is how long SIGTERM keeps serving before it stops
	// accepting: /readyz fails at once, so that load balancers take the
	// instance out, and every response carries Connection: close, so that
	// keep-alive clients move to another instance one request at a time.
	// Default 0s (drain at once: right for a single instance, tests and
	// development). Behind a load balancer set it to what the balancer needs
	// to notice: its readiness interval times its failure threshold plus
	// one interval, typically 5-10s (Kubernetes endpoints also take a few
	// seconds to update). It counts towards DrainTimeout, so it must be
	// shorter than that: the drain gets what is left.
	ShutdownDelay time.Duration `mapstructure:"shutdown_delay"`
}

// Log configures the process log.
type Log struct {
	// Level is the least severe level written: debug, info (default), warn
	// or error.
	Level string `mapstructure:"level"`
	// Format is json (default) or text.
	Format string `mapstructure:"format"`
}

// AccessLog configures the access log.
type AccessLog struct {
	// Enabled turns it on. Default false.
	Enabled bool `mapstructure:"enabled"`
	// Path is "stdout" (default), "stderr" or a file path, opened for
	// appending. The file's directory must exist.
	Path string `mapstructure:"path"`
	// Buffer is the size of the write buffer; entries are written
	// asynchronously and flushed when it fills or on a timer. Default 64KiB.
	Buffer Size `mapstructure:"buffer"`
}

// Route sends the requests its Match accepts to one pool.
type Route struct {
	// Name identifies the route in logs and metrics. Required, unique.
	Name string `mapstructure:"name"`
	// Match says which requests the route takes.
	Match Match `mapstructure:"match"`
	// StripPrefix is removed from the path before it is sent upstream. It
	// must be a prefix of Match.PathPrefix (or Match.Path) ending at a
	// segment boundary. Default "" (send the path unchanged).
	StripPrefix string `mapstructure:"strip_prefix"`
	// Pool names the pool that serves the route. Required.
	Pool string `mapstructure:"pool"`
	// Cache turns the cache on for the route's GET and HEAD requests.
	// Default off.
	Cache cache.RouteOptions `mapstructure:"cache"`
	// RateLimits names the limits of rate_limits a request must all pass,
	// checked after routing and before the cache (a cache hit counts).
	// Default none.
	RateLimits []string `mapstructure:"rate_limits"`
	// RateLimitHeaders adds the RateLimit-Policy and RateLimit headers to
	// allowed responses too (denied ones always carry them). Default false.
	RateLimitHeaders bool `mapstructure:"rate_limit_headers"`
	// Shards sends each request to one of several pools by a key taken
	// from the request, instead of to Pool (set exactly one of the two).
	Shards Shards `mapstructure:"shards"`
	// Timeout bounds the whole upstream exchange, every attempt included.
	// Default: the timeout of the route's pool.
	Timeout time.Duration `mapstructure:"timeout"`
	// Retries says when a failed exchange is tried again on another
	// backend.
	Retries Retries `mapstructure:"retries"`
	// Priority decides which routes the gateway sheds first when it is over
	// server.max_concurrency: "low" first, then "normal" (default), "high"
	// last.
	Priority string `mapstructure:"priority"`
	// Upgrade lists the protocols (Upgrade tokens, case-insensitive, e.g.
	// websocket) whose handshake the route forwards and, after a checked
	// 101, tunnels byte for byte. Default none: Connection: upgrade and
	// Upgrade are removed like any hop-by-hop field and the request is
	// answered as an ordinary one.
	Upgrade []string `mapstructure:"upgrade"`
	// Tunnel bounds the tunnels of the route's upgraded connections.
	Tunnel Tunnel `mapstructure:"tunnel"`
}

// Tunnel bounds an upgraded connection once the backend has switched
// protocols.
type Tunnel struct {
	// IdleTimeout closes a tunnel through which no byte has gone either
	// way for this long. Default 60s; WebSocket clients that ping every
	// 30s or so stay open.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxDuration closes a tunnel this long after it opened, busy or not.
	// Default 0: no limit.
	MaxDuration time.Duration `mapstructure:"max_duration"`
}

// DefaultTunnelIdleTimeout is Tunnel.IdleTimeout's default.
const DefaultTunnelIdleTimeout = 60 * time.Second

// WithDefaults returns t with every zero field that has a default set to it.
func (t Tunnel) WithDefaults() Tunnel {
	if t.IdleTimeout == 0 {
		t.IdleTimeout = DefaultTunnelIdleTimeout
	}
	return t
}

// Shards maps each request to one pool of a list by a key of the request.
// Keys are spread with jump consistent hashing, the same on every gateway
// instance: appending a pool to Pools moves about 1/(n+1) of the keys, all
// of them to the new pool, and no key moves between the old pools. Removing
// or reordering pools moves most keys, so grow a shard map only by
// appending.
type Shards struct {
	// Key is where the shard key is read: "header:NAME", "cookie:NAME",
	// "query:NAME", "path:N" (the N-th path segment, from 1) or "client"
	// (the client identity). Required with Pools.
	Key string `mapstructure:"key"`
	// Pools are the shards, in order. The order is part of the mapping.
	Pools []string `mapstructure:"pools"`
}

// Retry conditions accepted in Retries.On, besides a status code from 500
// to 599.
const (
	RetryOnConnect = "connect" // the connection could not be opened: nothing was sent
	RetryOnTimeout = "timeout" // the attempt ran out of its per-try time
	RetryOnReset   = "reset"   // the backend closed or broke the exchange, or its answer was malformed
	RetryOn5xx     = "5xx"     // any status from 500 to 599
)

// Retries configures retries of one route. A retry always goes to another
// backend than the attempt before, within the route's one Timeout. Requests
// that may already have reached a backend (everything but a failed connect)
// are retried only when their method is idempotent (GET, HEAD, OPTIONS,
// TRACE, PUT, DELETE) or they carry an Idempotency-Key header.
type Retries struct {
	// Attempts is the most tries of one request, the first included.
	// Default 2 (one retry); 1 turns retries off.
	Attempts int `mapstructure:"attempts"`
	// On lists what is retried: connect, timeout, reset, 5xx, or a status
	// code from 500 to 599 (502, 503, ...). Default [connect, reset].
	On []string `mapstructure:"on"`
	// Budget caps retries at this share of the route's requests over the
	// last 10 seconds (plus MinPerSecond), so that retries cannot multiply
	// an outage. nil (unset): DefaultRetryBudget, 20%. 0 is honoured: only
	// MinPerSecond retries are allowed, and with MinPerSecond 0 too none at
	// all (attempts: 1 says that more plainly). A pointer, like
	// cache.RouteOptions.HeuristicMax, because zero is a setting here, not
	// "the default".
	Budget *Ratio `mapstructure:"budget"`
	// MinPerSecond retries are always allowed, whatever the budget, so that
	// a quiet route still retries. nil (unset): DefaultRetryMinPerSecond,
	// 3. 0 is honoured: retries are bounded by Budget alone, so a quiet
	// route may not retry at all.
	MinPerSecond *int `mapstructure:"min_per_second"`
	// PerTryTimeout bounds each attempt; a try that runs out may be retried
	// (with "timeout" in On) if the route's Timeout has time left. Default:
	// none (each attempt may use what is left of Timeout), or Timeout /
	// Attempts when On has "timeout", which would otherwise never fire.
	PerTryTimeout time.Duration `mapstructure:"per_try_timeout"`
}

// Defaults of Retries.
const (
	DefaultRetryAttempts     = 2
	DefaultRetryBudget       = Ratio(0.2)
	DefaultRetryMinPerSecond = 3
)

// WithDefaults returns r with every unset field set to its default: a zero
// Attempts, a nil On, a nil Budget or MinPerSecond. Budget and MinPerSecond
// are never nil afterwards.
func (r Retries) WithDefaults() Retries {
	if r.Attempts == 0 {
		r.Attempts = DefaultRetryAttempts
	}
	if r.On == nil {
		r.On = []string{RetryOnConnect, RetryOnReset}
	}
	if r.Budget == nil {
		r.Budget = new(DefaultRetryBudget)
	}
	if r.MinPerSecond == nil {
		r.MinPerSecond = new(DefaultRetryMinPerSecond)
	}
	return r
}

// Route priorities (Route.Priority).
const (
	PriorityLow    = "low"
	PriorityNormal = "normal"
	PriorityHigh   = "high"
)

// Match is the request predicate of a route. Every set field must match.
// gateway/internal/route defines and checks what each field accepts; this
// is a summary.
type Match struct {
	// Host is "" (any host), an exact name ("api.example.com"), a wildcard
	// with a leading "*." ("*.example.com" stands for hosts under
	// example.com, not example.com itself) or an IPv6 address in brackets.
	// Compared without regard to case; no port, no userinfo.
	Host string `mapstructure:"host"`
	// PathPrefix matches whole path segments: "/api/orders" matches
	// "/api/orders" and "/api/orders/7", not "/api/ordersX". At most one of
	// PathPrefix and Path may be set; with neither, Load sets PathPrefix to
	// "/" (every path).
	PathPrefix string `mapstructure:"path_prefix"`
	// Path matches exactly this path.
	Path string `mapstructure:"path"`
	// Methods lists accepted methods, compared case-sensitively. Default
	// empty (any). A non-token, a lower-case method and CONNECT are refused;
	// a method outside the IANA registry ("GETT") is accepted with a
	// warning.
	Methods []string `mapstructure:"methods"`
	// Headers must all be present with exactly these values (the first
	// value of each header, byte for byte; a value must not be empty, which
	// a request could not tell from absent). Names compare without regard to
	// case; Load stores them lower-cased and refuses two names that differ
	// only in case.
	Headers map[string]string `mapstructure:"headers"`
}

// Default returns the configuration that Load starts from: every documented
// default, with no pools and no routes (so it does not validate by itself).
func Default() Config {
	return Config{
		Listen: "127.0.0.1:8080",
		Admin:  Admin{Listen: "127.0.0.1:9901"},
		Server: Server{
			ReadTimeout:    10 * time.Second,
			WriteTimeout:   10 * time.Second,
			IdleTimeout:    60 * time.Second,
			MaxRequestBody: 4 * MiB,
			BufferRequest:  4 * MiB,
			MaxHeaderBytes: 16 * KiB,
			MaxURILength:   8 * KiB,
			MergeSlashes:   true,
			DrainTimeout:   30 * time.Second,
		},
		Redis:     Redis{Timeout: 20 * time.Millisecond},
		Log:       Log{Level: "info", Format: "json"},
		AccessLog: AccessLog{Path: "stdout", Buffer: 64 * KiB},
	}
}
