package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/cache"
	"github.com/sluice-gw/sluice/config"
)

// Options are what the caller supplies besides the configuration.
type Options struct {
	// Logger receives start-up, reload, health and error logs. Nil means
	// slog.Default().
	Logger *slog.Logger
	// AccessLogOutput overrides where the access log goes (tests). Nil means
	// the configured access_log.path.
	AccessLogOutput io.Writer
	// Resolver looks up the names among the pools' backends (dns.go). Nil
	// means net.DefaultResolver.
	Resolver Resolver
}

// Server is one running gateway: the front listener, the admin listener and
// the live Table. Create it with New, run it with Serve, change its
// configuration with Reload, stop it with Shutdown (at once) or Terminate
// (after server.shutdown_delay, as SIGTERM does).
type Server struct {
	log      *slog.Logger
	metrics  *metrics
	table    atomic.Pointer[Table]
	requests sync.Pool // *request
	access   *accessLog

	upstreamFailures *failureLog
	// rdb is the Redis client shared by the cache and the rate limits, nil
	// without redis.addrs. Fixed at New: redis changes need a restart.
	rdb redis.UniversalClient
	// cache serves cache-enabled routes; built at New (cache.* settings
	// need a restart).
	cache *cacheStore
	// refreshes counts background cache refreshes, which Shutdown lets
	// finish (within its deadline) before it retires backends and closes
	// the cache and Redis under them.
	refreshes sync.WaitGroup
	refreshMu sync.Mutex // orders refreshes.Add against Shutdown's Wait
	// adminToken is the bearer token admin writes need; "" refuses them.
	adminToken atomic.Pointer[string]
	// refusedHeads holds the verdict on request heads refused before their
	// body was read (headerReceived), keyed by the head, until refuse
	// answers them. Only refused requests touch it.
	refusedHeads   sync.Map
	maxRequestBody int // server.max_request_body, fixed at New like the listener
	// writeTimeout is server.write_timeout, which bounds each piece of a
	// streamed response (stream.go); streams are those in progress.
	writeTimeout time.Duration
	streams      streamSet
	// bufferRequest is server.buffer_request; readTimeout is
	// server.read_timeout, which bounds each wait for a streamed request
	// body (reqbody.go). Fixed at New like the listener.
	bufferRequest int
	readTimeout   time.Duration
	// active counts requests in the gateway while server.max_concurrency
	// is set, for shedding (shed.go).
	active atomic.Int64

	idPrefix string
	unparsed atomic.Uint64 // ids of requests fasthttp could not parse

	// Fixed at New: what Serve logs, without reading cfg, which Reload
	// replaces under mu.
	scheme, adminListen string

	mu   sync.Mutex // serialises Reload, runtime changes and Shutdown
	cfg  *config.Config
	cert atomic.Pointer[tls.Certificate]

	// runtime holds the admin API's backend changes and what the backends'
	// names resolve to, applied to cfg by every table build; guarded by mu.
	runtime  *runtimeState
	resolver Resolver

	front    *fasthttp.Server
	frontLn  net.Listener
	admin    *adminServer
	draining atomic.Bool // Shutdown was called
	started  atomic.Bool
	// closing is set by BeginShutdown: /readyz fails and every response
	// carries Connection: close.
	closing atomic.Bool
	// conns counts open front connections (countConn), which Shutdown waits
	// on while clients move off.
	conns atomic.Int64
	// drainQuiet and drainIdleMax bound that wait (moveOff); tests shorten
	// or lengthen them.
	drainQuiet, drainIdleMax time.Duration
	// tunnels are the upgraded connections open now (tunnel.go), which
	// Shutdown drains and a reload leaves alone.
	tunnels tunnelSet
}

// New builds a Server from a validated configuration and opens its
// listeners, so that the addresses are known (and a busy port is reported)
// before Serve. Health checks start at once.
func New(cfg *config.Config, o Options) (*Server, error) {
	s := &Server{log: o.Logger, cfg: cfg, idPrefix: newIDPrefix(), drainQuiet: drainQuiet, drainIdleMax: drainIdleMax,
		runtime: newRuntimeState(), resolver: o.Resolver}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	s.requests.New = newRequest
	s.upstreamFailures = newFailureLog(s.log)
	s.maxRequestBody = int(cfg.Server.MaxRequestBody)
	s.writeTimeout = cfg.Server.WriteTimeout
	s.bufferRequest, s.readTimeout = int(cfg.Server.BufferRequest), cfg.Server.ReadTimeout
	s.metrics = newMetrics(s.table.Load)
	s.metrics.reg.MustRegister(newLimitCollector(s.table.Load), newTunnelsActive(s.tunnels.active))

	s.rdb = newRedisClient(cfg.Redis, s.log)
	var err error
	if s.cache, err = newCacheStore(cfg, s.rdb, s.log); err != nil {
		s.closeRedis()
		return nil, err
	}
	s.metrics.reg.MustRegister(newCacheCollector(func() (cache.Stats, bool) { return s.cache.Stats(), true }))
	s.runtime.syncNames(s.resolver, cfg, s.log)
	t, err := s.build(cfg, nil)
	if err != nil {
		s.closeRedis()
		return nil, err
	}
	started := false
	defer func() {
		if !started { // release what was built before the failure
			t.retire(nil)
			s.closeAccessLog()
			s.closeRedis()
		}
	}()
	cert, err := readCert(cfg)
	if err != nil {
		return nil, err
	}
	tok, err := readAdminToken(cfg)
	if err != nil {
		return nil, err
	}
	s.adminToken.Store(&tok)
	s.cert.Store(cert)
	if cfg.AccessLog.Enabled {
		w := o.AccessLogOutput
		if w == nil {
			if w, err = openAccessLog(cfg.AccessLog.Path); err != nil {
				return nil, err
			}
		}
		s.access = newAccessLog(w, int(cfg.AccessLog.Buffer), s.metrics.accessDropped)
	}

	s.front = &fasthttp.Server{
		Handler:        s.serveFront,
		ErrorHandler:   s.handleParseError,
		ExpectHandler:  s.expect,
		HeaderReceived: s.headerReceived,

		ReadTimeout:        cfg.Server.ReadTimeout,
		WriteTimeout:       cfg.Server.WriteTimeout,
		IdleTimeout:        cfg.Server.IdleTimeout,
		MaxRequestBodySize: int(cfg.Server.MaxRequestBody),
		// Bodies over server.buffer_request stream to the backend
		// (reqbody.go); without that, fasthttp reads every body whole.
		StreamRequestBody: cfg.Server.BufferRequest < cfg.Server.MaxRequestBody,
		ReadBufferSize:    int(cfg.Server.MaxHeaderBytes),

		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		DisablePreParseMultipartForm:  true,
		CloseOnShutdown:               true,
		// fasthttp reads no clock for the request time: the gateway reads it
		// once, in acquire (request.start), and uses it for the route
		// deadline too. Do not use ctx.Time: it would read the clock again.
		LazyRequestTime: true,
		ConnState:       func(_ net.Conn, st fasthttp.ConnState) { s.countConn(st) },
		// Off on purpose: with it on, fasthttp's error text no longer tells a
		// long request line (414) from large headers (431). fasthttp's own
		// messages go to the debug log only.
		SecureErrorLogMessage: false,
		Logger:                fasthttpLogger{s.log},
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	readBuf := s.front.ReadBufferSize
	if readBuf <= 0 {
		readBuf = 4096 // fasthttp's default
	}
	yl := yieldListener{Listener: ln, slack: deadlineSlack(cfg.Server), readBuf: readBuf}
	ln = yl
	if cfg.TLS.CertFile != "" {
		ln = tlsListener{yieldListener: yl, config: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
		}}
	}
	s.frontLn = ln
	s.scheme, s.adminListen = "http", cfg.Admin.Listen
	if cfg.TLS.CertFile != "" {
		s.scheme = "https"
	}
	if cfg.Admin.Listen != "" {
		if s.admin, err = newAdminServer(s, cfg.Admin.Listen); err != nil {
			ln.Close()
			return nil, err
		}
	}

	started = true
	s.table.Store(t)
	t.start()
	go s.refreshNames()
	s.metrics.reloadOK.Add(0)
	s.metrics.lastReload.SetToCurrentTime()
	return s, nil
}

// Addr is the front listener's address.
func (s *Server) Addr() net.Addr { return s.frontLn.Addr() }

// AdminAddr is the admin listener's address, or nil when it is disabled.
func (s *Server) AdminAddr() net.Addr {
	if s.admin == nil {
		return nil
	}
	return s.admin.ln.Addr()
}

// Serve answers requests until Shutdown. It returns nil after a clean
// shutdown.
func (s *Server) Serve() error {
	s.started.Store(true)
	if s.admin != nil {
		go s.admin.serve()
	}
	t := s.table.Load()
	s.log.Info("sluice listening", "addr", s.frontLn.Addr().String(), "scheme", s.scheme,
		"admin", s.adminListen, "routes", len(t.routes), "pools", len(t.pools))
	err := s.front.Serve(s.frontLn)
	if s.draining.Load() {
		return nil
	}
	return err
}

// Reload applies a new configuration: a new Table is built (backends of
// unchanged addresses carried over) and swapped in atomically. On error
// nothing changes and the old configuration keeps serving. Settings that are
// bound to the listening socket (listen, admin.listen, server timeouts and
// limits, access_log) need a restart; a change to them is logged.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return errors.New("reload: server is shutting down")
	}
	// Read the certificate first: a reload that fails must change nothing,
	// and building the table hands backends over from the running one.
	cert, err := readCert(cfg)
	if err != nil {
		s.metrics.reloadFailed.Inc()
		return fmt.Errorf("reload: %w", err)
	}
	tok, err := readAdminToken(cfg)
	if err != nil {
		s.metrics.reloadFailed.Inc()
		return fmt.Errorf("reload: %w", err)
	}
	// The runtime changes (admin API, DNS answers) apply to the new file
	// too; names it adds are resolved now, names it drops forgotten once it
	// is in use (s.cfg is the running file whether this reload succeeds or
	// not).
	defer func() { s.runtime.prune(s.cfg) }()
	s.runtime.syncNames(s.resolver, cfg, s.log)
	old := s.table.Load()
	t, err := s.build(cfg, old)
	if err != nil {
		s.metrics.reloadFailed.Inc()
		return fmt.Errorf("reload: %w", err)
	}
	if cert != nil {
		s.cert.Store(cert)
	}
	s.adminToken.Store(&tok)
	warnRestartOnly(s.log, s.cfg, cfg)
	s.swap(old, t)
	s.metrics.routesChanged(old.routeNames(), t.routeNames(), time.Now())
	s.cfg = cfg
	s.metrics.reloadOK.Inc()
	s.metrics.lastReload.SetToCurrentTime()
	s.log.Info("configuration reloaded", "routes", len(t.routes), "pools", len(t.pools))
	return nil
}

// ReloadFailed counts and logs a configuration that could not be loaded, so
// that callers reading files report failures the same way Reload does.
func (s *Server) ReloadFailed(err error) {
	s.metrics.reloadFailed.Inc()
	s.log.Error("configuration not reloaded; keeping the running one", "error", err)
}

// Shutdown stops accepting connections and drains the open ones: each
// answers its next or current request with Connection: close and closes;
// the idle ones are closed once the clients still sending have moved off
// (shutdown.go). Open tunnels (WebSocket) run on until they end or ctx
// expires, which closes them (tunnelset.go). It then releases everything and
// returns when all is done or ctx expires. It begins the shutdown (BeginShutdown) if that was not done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.draining.CompareAndSwap(false, true) {
		return nil
	}
	s.BeginShutdown()
	s.log.Info("draining: no new connections, finishing in-flight requests")
	// Closing the listener ourselves, before fasthttp's shutdown, stops
	// accepting without closing the idle connections yet (fasthttp closes
	// them at once); it also makes a Serve that had not yet registered the
	// listener with fasthttp return.
	_ = s.frontLn.Close()
	s.moveOff(ctx)
	err := s.front.ShutdownWithContext(ctx)
	if errors.Is(err, net.ErrClosed) { // fasthttp closing our listener again
		err = nil
	}
	// Tunnels are not connections fasthttp waits for: they run until they
	// end on their own or the deadline closes them.
	s.tunnels.drain(ctx)
	// Streams still running at the drain deadline are cut: the client sees
	// a truncated body (its connection closes before the end).
	if n := s.streams.cut(); n > 0 {
		s.log.Warn("drain deadline: cut streams in progress", "streams", n)
	}
	if s.admin != nil {
		s.admin.close()
	}
	s.waitRefreshes(ctx)
	if t := s.table.Load(); t != nil {
		t.retire(nil)
	}
	s.closeAccessLog()
	s.closeRedis()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// closeRedis closes the shared Redis client, after everything that uses it
// has stopped.
func (s *Server) closeRedis() {
	if s.cache != nil {
		s.cache.close()
	}
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
}

// closeAccessLog writes out the queued lines and stops the writer. s.access
// stays set: after a drain deadline handlers may still be running, and a line
// they queue after this is dropped, never a crash.
func (s *Server) closeAccessLog() {
	if s.access != nil {
		s.access.close()
	}
}

func (s *Server) healthChanged(pool, addr string, healthy bool, reason string) {
	if healthy {
		s.log.Info("backend healthy", "pool", pool, "backend", addr, "probe", reason)
	} else {
		s.log.Warn("backend unhealthy", "pool", pool, "backend", addr, "probe", reason)
	}
}

// readCert loads the configured certificate, or returns nil without TLS.
func readCert(cfg *config.Config) (*tls.Certificate, error) {
	if cfg.TLS.CertFile == "" {
		return nil, nil
	}
	c, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &c, nil
}

func openAccessLog(path string) (io.Writer, error) {
	switch path {
	case "", "stdout":
		return os.Stdout, nil
	case "stderr":
		return os.Stderr, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("access_log.path: %w", err)
	}
	return f, nil
}

// warnRestartOnly logs settings that a reload cannot apply to a running
// listener.
func warnRestartOnly(log *slog.Logger, old, cfg *config.Config) {
	if old.Listen != cfg.Listen {
		log.Warn("listen changed; takes effect after a restart", "running", old.Listen, "configured", cfg.Listen)
	}
	if old.Admin.Listen != cfg.Admin.Listen {
		log.Warn("admin.listen changed; takes effect after a restart", "running", old.Admin.Listen, "configured", cfg.Admin.Listen)
	}
	if (old.TLS.CertFile == "") != (cfg.TLS.CertFile == "") {
		log.Warn("tls enabled/disabled; takes effect after a restart")
	}
	if old.Server.ReadTimeout != cfg.Server.ReadTimeout || old.Server.WriteTimeout != cfg.Server.WriteTimeout ||
		old.Server.IdleTimeout != cfg.Server.IdleTimeout || old.Server.MaxRequestBody != cfg.Server.MaxRequestBody ||
		old.Server.BufferRequest != cfg.Server.BufferRequest ||
		old.Server.MaxHeaderBytes != cfg.Server.MaxHeaderBytes {
		log.Warn("server timeouts or limits changed; take effect after a restart")
	}
	if !reflect.DeepEqual(old.Redis, cfg.Redis) {
		log.Warn("redis changed; takes effect after a restart")
	}
	if old.Cache.Memory != cfg.Cache.Memory || old.Cache.MaxEntry != cfg.Cache.MaxEntry {
		log.Warn("cache settings changed; take effect after a restart (route cache settings apply now)")
	}
	if old.AccessLog != cfg.AccessLog {
		log.Warn("access_log changed; takes effect after a restart")
	}
}

// fasthttpLogger routes fasthttp's own messages into slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "msg", fmt.Sprintf(format, args...))
}

// waitRefreshes waits for background cache refreshes until ctx is done. A
// refresh is bounded by its route's timeout, so this is short.
func (s *Server) waitRefreshes(ctx context.Context) {
	// draining is set: once the lock has been through, no refresh is added.
	s.refreshMu.Lock()
	s.refreshMu.Unlock() // an empty critical section on purpose
	done := make(chan struct{})
	go func() {
		s.refreshes.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
