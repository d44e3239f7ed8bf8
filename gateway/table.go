package gateway

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/cache"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
	"github.com/sluice-gw/sluice/gateway/internal/route"
)

// Table is one compiled configuration: the route matcher, the routes and the
// pools they forward to, and the request-hygiene settings. It is immutable
// once built; a reload builds a new Table and swaps it in atomically, so a
// request sees one configuration from start to end.
type Table struct {
	matcher  *route.Table
	routes   []*Route // index = matcher index
	pools    map[string]*tablePool
	poolList []*tablePool // sorted by name, for stable admin output and scrapes

	limits    map[string]*tableLimit // rate_limits by name (limit.go)
	limitList []*tableLimit          // sorted by name, for scrapes

	safe             httpsafe.Options
	trusted          []netip.Prefix
	allowUnderscores bool // server.allow_underscores_in_headers
	anyCache         bool // some route caches: unsafe requests invalidate
	loaded           time.Time
}

// Route is the runtime form of one configured route.
type Route struct {
	name        string
	stripPrefix []byte
	// pools is the route's pool, or its shards in order (then sharded is
	// set and shardKey says where the key is read).
	pools    []*routePool
	sharded  bool
	shardKey balancer.KeySource
	timeout  time.Duration // all attempts together
	retry    retryPolicy
	shedAt   int64       // shed when more requests than this are in the gateway; 0: never
	limits   routeLimits // rate_limits, checked after routing (limit.go)
	m        routeMetrics
	cache    *cache.Policy // nil: the route does not cache
	cm       *cacheMetrics // nil when cache is
	upgrade  *upgradeRule  // nil: Upgrade is removed like any hop-by-hop field (upgrade.go)
}

type tablePool struct {
	pool    *balancer.Pool
	checker *balancer.Checker
	// hashKey is where a consistent_hash pool reads its key; hashed is
	// false for the other policies, which take none.
	hashKey balancer.KeySource
	hashed  bool
	latency prometheus.Observer // sluice_upstream_duration_seconds{pool}
	// origins says where each backend came from, by address (dynamic.go);
	// nil for a table Check builds.
	origins map[string]backendOrigin
}

// routePool is one pool as a route sends to it: the pool and the route's
// retry budget there, so that one route's retries cannot spend another's.
type routePool struct {
	*tablePool
	budget *balancer.RetryBudget
}

// buildTable compiles cfg. Pools of prev whose name is unchanged hand their
// backends over (connections, health and counters carry over for every
// unchanged address), and so do limits whose name and key are unchanged
// (their clients' state; buildLimits). Nothing is started: the caller starts
// health checks after the swap.
func buildTable(cfg *config.Config, prev *Table, m *metrics, onHealth func(pool, addr string, healthy bool, reason string), deps limitDeps) (*Table, error) {
	t := &Table{
		pools: make(map[string]*tablePool, len(cfg.Pools)),
		safe: httpsafe.Options{
			MergeSlashes:      cfg.Server.MergeSlashes,
			AllowEncodedSlash: cfg.Server.AllowEncodedSlash,
			AllowMatrixParams: cfg.Server.AllowMatrixParams,
			MaxURILength:      int(cfg.Server.MaxURILength),
		},
		allowUnderscores: cfg.Server.AllowUnderscoresInHeaders,
		loaded:           time.Now(),
	}
	for _, s := range cfg.Server.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %w", err)
		}
		t.trusted = append(t.trusted, p)
	}

	names := make([]string, 0, len(cfg.Pools))
	for name := range cfg.Pools {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		o := cfg.Pools[name].WithDefaults()
		var old *balancer.Pool
		if prev != nil && prev.pools[name] != nil {
			old = prev.pools[name].pool
		}
		p, err := balancer.NewPool(name, o, old)
		if err != nil {
			return nil, fmt.Errorf("pools.%s: %w", name, err)
		}
		if o.Upstream.Pipeline.Enabled() && deps.log != nil {
			logPipelineOff(deps.log, name, p)
		}
		tp := &tablePool{pool: p, latency: m.upstreamDuration.WithLabelValues(name)}
		if deps.log != nil {
			p.OnEjection(ejectionLogger(deps.log, name))
		}
		if tp.hashKey, tp.hashed, err = poolHashKey(o); err != nil {
			return nil, fmt.Errorf("pools.%s.hash_key: %w", name, err)
		}
		if o.HealthCheck.Path != "" {
			targets := make([]balancer.Target, 0, len(p.Backends()))
			for _, b := range p.Backends() {
				targets = append(targets, b)
			}
			poolName := name
			tp.checker = balancer.NewChecker(o.HealthCheck, targets, func(addr string, healthy bool, reason string) {
				onHealth(poolName, addr, healthy, reason)
			})
		}
		t.pools[name] = tp
		t.poolList = append(t.poolList, tp)
	}

	rules := make([]route.Rule, len(cfg.Routes))
	t.routes = make([]*Route, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		rules[i] = route.Rule{
			Host:       rc.Match.Host,
			PathPrefix: rc.Match.PathPrefix,
			Path:       rc.Match.Path,
			Methods:    rc.Match.Methods,
		}
		for k, v := range rc.Match.Headers {
			rules[i].Headers = append(rules[i].Headers, [2]string{k, v})
		}
		sort.Slice(rules[i].Headers, func(a, b int) bool { return rules[i].Headers[a][0] < rules[i].Headers[b][0] })
		r := &Route{
			name:        rc.Name,
			stripPrefix: []byte(strings.TrimSuffix(rc.StripPrefix, "/")),
			timeout:     rc.Timeout,
			shedAt:      shedThreshold(cfg.Server.MaxConcurrency, rc.Priority),
			m:           m.forRoute(rc.Name),
		}
		t.routes[i] = r
		if err := t.routePools(r, &rc, i); err != nil {
			return nil, err
		}
		if r.timeout == 0 {
			r.timeout = r.pools[0].pool.Options().Timeout
		}
		r.retry = newRetryPolicy(rc.Retries, r.timeout)
		if len(rc.Upgrade) > 0 {
			r.upgrade = newUpgradeRule(&rc, m.tunnelsForRoute(rc.Name))
		}
		if rc.Cache.Enabled {
			p, err := cache.NewPolicy(rc.Cache, cfg.Cache)
			if err != nil {
				return nil, fmt.Errorf("routes[%d].cache: %w", i, err)
			}
			t.routes[i].cache, t.routes[i].cm = p, m.cacheForRoute(rc.Name)
			t.anyCache = true
		}
	}
	matcher, err := route.Compile(rules)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	t.matcher = matcher
	if err := t.buildLimits(cfg, prev, deps); err != nil {
		return nil, err
	}
	return t, nil
}

// routePools resolves the pool, or the shards, of route r (routes[i]).
func (t *Table) routePools(r *Route, rc *config.Route, i int) error {
	names := []string{rc.Pool}
	if len(rc.Shards.Pools) > 0 {
		names = rc.Shards.Pools
		key, err := balancer.ParseKeySource(rc.Shards.Key)
		if err != nil {
			return fmt.Errorf("routes[%d].shards.key: %w", i, err)
		}
		r.sharded, r.shardKey = true, key
	}
	rt := rc.Retries.WithDefaults()
	for _, name := range names {
		tp := t.pools[name]
		if tp == nil {
			return fmt.Errorf("routes[%d]: unknown pool %q", i, name)
		}
		budget := balancer.NewRetryBudget(float64(*rt.Budget), *rt.MinPerSecond)
		r.pools = append(r.pools, &routePool{tablePool: tp, budget: budget})
	}
	return nil
}

// start begins the health checks of t's pools.
func (t *Table) start() {
	for _, tp := range t.poolList {
		if tp.checker != nil {
			tp.checker.Start()
		}
	}
}

// retire stops t's health checks and closes the idle connections of backends
// that next no longer uses, and stops its limiters' background work (see
// closeLimits). In-flight requests on t finish normally.
func (t *Table) retire(next *Table) {
	t.closeLimits()
	for name, tp := range t.pools {
		if tp.checker != nil {
			tp.checker.Stop()
		}
		var np *balancer.Pool
		if next != nil && next.pools[name] != nil {
			np = next.pools[name].pool
		}
		tp.pool.Retire(np)
	}
}

func (t *Table) routeNames() map[string]bool {
	names := make(map[string]bool, len(t.routes))
	for _, r := range t.routes {
		names[r.name] = true
	}
	return names
}

// trustedPeer reports whether addr may set X-Forwarded-* for its clients.
func (t *Table) trustedPeer(addr netip.Addr) bool {
	for _, p := range t.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// logPipelineOff logs, once per backend, that pipelining to it was turned
// off and why (balancer.Backend.OnPipelineOff).
func logPipelineOff(log *slog.Logger, pool string, p *balancer.Pool) {
	for _, b := range p.Backends() {
		b.OnPipelineOff(func(addr string, reason error) {
			log.Warn("pipelining to a backend turned off; its requests take ordinary connections",
				"pool", pool, "backend", addr, "reason", reason)
		})
	}
}
