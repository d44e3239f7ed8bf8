package gateway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/config"
)

func TestRuntimeStateApply(t *testing.T) {
	cfg := &config.Config{Pools: map[string]balancer.Options{"orders": {Backends: []balancer.BackendOptions{
		{Addr: "10.0.0.1:80", Weight: 1},
		{Addr: "orders.svc:80", Weight: 3},
		{Addr: "never.svc:80", Weight: 1},
		{SRV: "_x._tcp.svc", Weight: 1},
	}}}}
	st := newRuntimeState()
	st.names[nameKey{"orders", "orders.svc:80"}] = &nameState{addrs: []string{"10.0.0.1:80", "10.0.0.2:80"}}
	st.names[nameKey{"orders", "never.svc:80"}] = &nameState{}
	pc := st.pool("orders")
	pc.added = []balancer.BackendOptions{{Addr: "10.0.0.9:80", Weight: 2}, {Addr: "10.0.0.2:80", Weight: 1}}
	pc.removed["10.0.0.1:80"] = true

	eff, origins, err := st.apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range eff.Pools["orders"].Backends {
		o := origins["orders"][b.Addr]
		got = append(got, fmt.Sprintf("%s w%d %s %s", b.Addr, b.Weight, o.source, o.name))
	}
	// The removed address is out whatever its source; a name that never
	// resolved stands for itself; an srv without answer gives nothing; an
	// address two sources give is kept once, from the first.
	want := []string{
		"10.0.0.2:80 w3 dns orders.svc:80",
		"never.svc:80 w1 config ",
		"10.0.0.9:80 w2 admin ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("apply gave\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(cfg.Pools["orders"].Backends) != 4 {
		t.Error("apply changed the configuration it was given")
	}

	srvOnly := &config.Config{Pools: map[string]balancer.Options{"catalog": {Backends: []balancer.BackendOptions{{SRV: "_x._tcp.svc"}}}}}
	if _, _, err := st.apply(srvOnly); err == nil || !strings.Contains(err.Error(), "pools.catalog.backends: no backend left") {
		t.Errorf("a pool left empty: %v", err)
	}
}
