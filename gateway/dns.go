package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/config"
)

// Resolver is what the gateway asks about the names among a pool's
// backends. *net.Resolver implements it; tests give one that talks to a DNS
// server on loopback.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
}

// errNoAddresses is an answer without a usable address. It counts as a
// failed lookup: a DNS outage often looks like an empty answer, and it must
// not empty a pool.
var errNoAddresses = errors.New("no addresses in the answer")

// isDNSName reports whether the backend entry e is resolved by the gateway:
// an srv, or an addr whose host is a name rather than an IP.
func isDNSName(e balancer.BackendOptions) bool {
	if e.SRV != "" {
		return true
	}
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return false // Validate refused it already
	}
	_, err = netip.ParseAddr(host)
	return err != nil
}

// dnsName is how a name entry is shown and logged: the srv, or the addr.
func dnsName(e balancer.BackendOptions) string {
	if e.SRV != "" {
		return e.SRV
	}
	return e.Addr
}

// lookupBackends returns the backend addresses (ip:port, sorted, without
// duplicates) that the name entry e stands for: every A and AAAA address of
// an addr's host with its port, or every address of the lowest-priority
// targets of an srv with the target's port. An answer without address is
// errNoAddresses.
func lookupBackends(ctx context.Context, r Resolver, e balancer.BackendOptions) ([]string, error) {
	var out []string
	if e.SRV != "" {
		var err error
		if out, err = lookupSRV(ctx, r, e.SRV); err != nil {
			return nil, err
		}
	} else {
		host, port, err := net.SplitHostPort(e.Addr)
		if err != nil {
			return nil, err
		}
		if out, err = lookupHost(ctx, r, host, port, nil); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errNoAddresses
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// lookupSRV resolves the targets of the lowest priority of name. Targets of
// higher priorities are backups in SRV's model; a pool has its own ways of
// leaving out dead backends (health checks), so they are not used. A
// target that does not resolve fails the whole lookup, so that the last
// good set is kept rather than a partial one.
func lookupSRV(ctx context.Context, r Resolver, name string) ([]string, error) {
	_, records, err := r.LookupSRV(ctx, "", "", name)
	if err != nil && len(records) == 0 {
		return nil, err
	}
	var best []*net.SRV
	for _, rec := range records {
		if rec.Target == "." || rec.Port == 0 {
			continue // "." means "no service here" (RFC 2782)
		}
		if len(best) > 0 && rec.Priority > best[0].Priority {
			continue
		}
		if len(best) > 0 && rec.Priority < best[0].Priority {
			best = best[:0]
		}
		best = append(best, rec)
	}
	var out []string
	for _, rec := range best {
		port := fmt.Sprint(rec.Port)
		if out, err = lookupHost(ctx, r, rec.Target, port, out); err != nil {
			return nil, fmt.Errorf("target %s: %w", rec.Target, err)
		}
	}
	return out, nil
}

// lookupHost appends host's addresses with port to dst.
func lookupHost(ctx context.Context, r Resolver, host, port string, dst []string) ([]string, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return append(dst, net.JoinHostPort(ip.String(), port)), nil
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		dst = append(dst, net.JoinHostPort(ip.String(), port))
	}
	return dst, nil
}

// dnsLookupTimeout bounds one name's lookup, an srv's targets included.
const dnsLookupTimeout = 5 * time.Second

// dnsIdleWake is the longest the refresh loop sleeps, so that it notices
// Shutdown (which it learns of from Server.draining) within a second.
const dnsIdleWake = time.Second

// nameKey names one name entry of one pool.
type nameKey struct{ pool, name string }

// nameState is what one name entry last resolved to. Guarded by Server.mu.
type nameState struct {
	entry balancer.BackendOptions
	every time.Duration // the pool's dns_refresh
	due   time.Time     // when to look it up again
	// addrs is the last good answer, sorted; nil before the first. A failed
	// or empty lookup keeps it: a DNS outage must not empty a pool.
	addrs []string
	// err is the last lookup's error, nil after a good answer; kept so that
	// a failure is logged when it starts and when it ends, not every time.
	err error
}

// lookupResult is one lookup's answer.
type lookupResult struct {
	addrs []string
	err   error
}

// lookupAll resolves entries concurrently, each within dnsLookupTimeout.
func lookupAll(r Resolver, entries []balancer.BackendOptions) []lookupResult {
	out := make([]lookupResult, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), dnsLookupTimeout)
			defer cancel()
			out[i].addrs, out[i].err = lookupBackends(ctx, r, e)
		})
	}
	wg.Wait()
	return out
}

// syncNames adds to st every name among cfg's backends that it does not
// know yet and resolves those at once, so that the table built next starts
// with their addresses. Names it knows keep their state (they are refreshed
// by refreshNames); forgetting the names cfg no longer has is prune's job,
// once cfg is in use.
func (st *runtimeState) syncNames(r Resolver, cfg *config.Config, log *slog.Logger) {
	var fresh []nameKey
	var entries []balancer.BackendOptions
	for pool, o := range cfg.Pools {
		every := o.WithDefaults().DNSRefresh
		for _, e := range o.Backends {
			if !isDNSName(e) {
				continue
			}
			k := nameKey{pool, dnsName(e)}
			if ns := st.names[k]; ns != nil {
				ns.entry, ns.every = e, every
				continue
			}
			st.names[k] = &nameState{entry: e, every: every}
			fresh = append(fresh, k)
			entries = append(entries, e)
		}
	}
	now := time.Now()
	for i, res := range lookupAll(r, entries) {
		ns := st.names[fresh[i]]
		ns.due = now.Add(ns.every)
		ns.record(fresh[i], res, log)
	}
}

// prune forgets the names cfg's pools no longer have.
func (st *runtimeState) prune(cfg *config.Config) {
	for k, ns := range st.names {
		o, ok := cfg.Pools[k.pool]
		if !ok || !slices.Contains(o.Backends, ns.entry) {
			delete(st.names, k)
		}
	}
}

// record applies a lookup's answer to ns, logs what changed, and reports
// whether the addresses changed (the pool must be rebuilt).
func (ns *nameState) record(k nameKey, res lookupResult, log *slog.Logger) (changed bool) {
	if res.err != nil {
		if ns.err == nil {
			kept := "the last addresses are kept"
			if ns.addrs == nil && ns.entry.SRV == "" {
				kept = "the name itself is dialled until it resolves"
			} else if ns.addrs == nil {
				kept = "it gives no backend until it resolves"
			}
			log.Warn("backend name does not resolve; "+kept, "who", "dns", "pool", k.pool, "name", k.name,
				"addresses", len(ns.addrs), "error", res.err)
		}
		ns.err = res.err
		return false
	}
	if ns.err != nil && ns.addrs != nil {
		log.Info("backend name resolves again", "who", "dns", "pool", k.pool, "name", k.name)
	}
	ns.err = nil
	if slices.Equal(ns.addrs, res.addrs) {
		return false
	}
	added, removed := diff(ns.addrs, res.addrs)
	if ns.addrs == nil {
		log.Info("backend name resolved", "who", "dns", "pool", k.pool, "name", k.name,
			"addresses", len(res.addrs), "backends", res.addrs)
	} else {
		log.Info("backend name changed", "who", "dns", "pool", k.pool, "name", k.name,
			"addresses", len(res.addrs), "added", added, "removed", removed)
	}
	ns.addrs = res.addrs
	return true
}

// diff returns what is in b and not in a, and what is in a and not in b;
// both are sorted.
func diff(a, b []string) (added, removed []string) {
	for _, x := range b {
		if _, found := slices.BinarySearch(a, x); !found {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			removed = append(removed, x)
		}
	}
	return added, removed
}

// refreshNames looks up again every name whose dns_refresh has passed and
// rebuilds the table when an answer changed a pool. It is the gateway's
// only DNS traffic after start-up (requests never resolve anything) and
// runs until Shutdown, in one goroutine per Server. Lookups run without
// s.mu, so a slow DNS server delays neither reloads nor admin changes.
func (s *Server) refreshNames() {
	for {
		s.mu.Lock()
		if s.draining.Load() {
			s.mu.Unlock()
			return
		}
		now := time.Now()
		var due []nameKey
		var entries []balancer.BackendOptions
		wake := now.Add(dnsIdleWake)
		for k, ns := range s.runtime.names {
			if !ns.due.After(now) {
				ns.due = now.Add(ns.every)
				due = append(due, k)
				entries = append(entries, ns.entry)
			}
			if ns.due.Before(wake) {
				wake = ns.due
			}
		}
		s.mu.Unlock()

		if len(due) == 0 {
			time.Sleep(time.Until(wake))
			continue
		}
		results := lookupAll(s.resolver, entries)
		s.mu.Lock()
		changed := false
		for i, k := range due {
			// A reload may have dropped or changed the name meanwhile.
			if ns := s.runtime.names[k]; ns != nil && ns.entry == entries[i] {
				changed = ns.record(k, results[i], s.log) || changed
			}
		}
		if changed {
			if err := s.applyRuntime(); err != nil && !errors.Is(err, errShuttingDown) {
				s.log.Error("backends not changed after a DNS answer", "who", "dns", "error", err)
			}
		}
		s.mu.Unlock()
	}
}

// unresolved describes, by key path, each name among cfg's backends whose
// last lookup failed, for `sluice validate`.
func (st *runtimeState) unresolved(cfg *config.Config) []string {
	var out []string
	for _, pool := range slices.Sorted(maps.Keys(cfg.Pools)) {
		for i, e := range cfg.Pools[pool].Backends {
			ns := st.names[nameKey{pool, dnsName(e)}]
			if ns == nil || ns.err == nil {
				continue
			}
			key, then := "addr", "the gateway dials the name itself until it resolves"
			if e.SRV != "" {
				key, then = "srv", "it gives no backend until it resolves"
			}
			out = append(out, fmt.Sprintf("pools.%s.backends[%d].%s: %q does not resolve now (%v); %s",
				pool, i, key, dnsName(e), ns.err, then))
		}
	}
	return out
}
