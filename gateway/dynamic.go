package gateway

import (
	"errors"
	"fmt"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/config"
)

// Where a backend of a running pool came from, as /admin/pools shows it.
const (
	sourceConfig = "config" // listed in the file by address
	sourceAdmin  = "admin"  // added through POST /admin/pools/{pool}/backends
	sourceDNS    = "dns"    // an address a name (addr or srv) of the file resolved to
)

// errShuttingDown refuses a runtime change once Shutdown has begun.
var errShuttingDown = errors.New("the gateway is shutting down")

// backendOrigin says where one backend of a built pool came from.
type backendOrigin struct {
	source string
	name   string // the name it was resolved from, for sourceDNS
}

// runtimeState is what changed at run time on top of the configuration
// file: backends added and removed through the admin API, and what the
// names among the backends resolve to. Every table is built from the file
// with this applied (Server.build), so a runtime change rebuilds the table
// the way a reload does (unchanged backends carried over, health checks
// restarted), and a reload keeps the runtime changes. Guarded by Server.mu.
type runtimeState struct {
	pools map[string]*poolChanges
	names map[nameKey]*nameState // dns.go
}

// poolChanges are the admin API's changes to one pool.
type poolChanges struct {
	added    []balancer.BackendOptions // in the order added
	removed  map[string]bool           // addresses taken out, whatever their source
	removing map[string]bool           // addresses draining before their removal
}

func newRuntimeState() *runtimeState {
	return &runtimeState{pools: map[string]*poolChanges{}, names: map[nameKey]*nameState{}}
}

func (st *runtimeState) pool(name string) *poolChanges {
	pc := st.pools[name]
	if pc == nil {
		pc = &poolChanges{removed: map[string]bool{}, removing: map[string]bool{}}
		st.pools[name] = pc
	}
	return pc
}

// apply returns cfg with the runtime state applied to its pools, and where
// each backend of each pool came from. cfg is not changed; the copy shares
// everything but Pools. A name stands for the addresses it last resolved
// to; a name that never resolved stands for itself (dialled by name, as a
// name was before the gateway resolved names), so a DNS outage at start-up
// does not take the gateway down. A pool left with no backend is an error.
func (st *runtimeState) apply(cfg *config.Config) (*config.Config, map[string]map[string]backendOrigin, error) {
	out := *cfg
	out.Pools = make(map[string]balancer.Options, len(cfg.Pools))
	origins := make(map[string]map[string]backendOrigin, len(cfg.Pools))
	for name, o := range cfg.Pools {
		pc := st.pools[name]
		from := map[string]backendOrigin{}
		var list []balancer.BackendOptions
		add := func(b balancer.BackendOptions, src backendOrigin) {
			if _, dup := from[b.Addr]; dup || pc != nil && pc.removed[b.Addr] {
				return
			}
			from[b.Addr] = src
			list = append(list, balancer.BackendOptions{Addr: b.Addr, Weight: b.Weight})
		}
		for _, e := range o.Backends {
			if !isDNSName(e) {
				add(e, backendOrigin{source: sourceConfig})
				continue
			}
			ns := st.names[nameKey{name, dnsName(e)}]
			if ns == nil || ns.addrs == nil {
				if e.SRV == "" {
					add(e, backendOrigin{source: sourceConfig})
				}
				continue
			}
			for _, a := range ns.addrs {
				add(balancer.BackendOptions{Addr: a, Weight: e.Weight}, backendOrigin{source: sourceDNS, name: dnsName(e)})
			}
		}
		if pc != nil {
			for _, e := range pc.added {
				add(e, backendOrigin{source: sourceAdmin})
			}
		}
		if len(list) == 0 {
			return nil, nil, &config.FieldError{Path: "pools." + name + ".backends",
				Err: fmt.Errorf("no backend left: its srv names have no targets yet, or the admin API removed the others")}
		}
		o.Backends = list
		out.Pools[name] = o
		origins[name] = from
	}
	return &out, origins, nil
}

// build compiles cfg with the runtime state applied, handing over prev's
// backends. The caller holds s.mu.
func (s *Server) build(cfg *config.Config, prev *Table) (*Table, error) {
	eff, origins, err := s.runtime.apply(cfg)
	if err != nil {
		return nil, err
	}
	t, err := buildTable(eff, prev, s.metrics, s.healthChanged, limitDeps{s.rdb, s.log})
	if err != nil {
		return nil, err
	}
	for name, tp := range t.pools {
		tp.origins = origins[name]
	}
	return t, nil
}

// swap makes t the live table in place of old. The old checkers stop
// before the new ones start, so a late verdict of an old checker cannot
// contradict the new one. The caller holds s.mu.
func (s *Server) swap(old, t *Table) {
	s.table.Store(t)
	old.retire(t)
	t.start()
}

// applyRuntime rebuilds the live table from the running configuration and
// the runtime state, after a runtime change. The caller holds s.mu.
func (s *Server) applyRuntime() error {
	if s.draining.Load() {
		return errShuttingDown
	}
	old := s.table.Load()
	t, err := s.build(s.cfg, old)
	if err != nil {
		return err
	}
	s.swap(old, t)
	return nil
}
