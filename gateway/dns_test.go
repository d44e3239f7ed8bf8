package gateway

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestLookupBackends(t *testing.T) {
	dns := testnet.StartDNS(t)
	dns.SetHost("orders.test", "127.0.0.2", "127.0.0.1", "::1")
	dns.SetHost("a.orders.test", "10.0.0.1")
	dns.SetHost("b.orders.test", "10.0.0.2")
	dns.SetHost("backup.orders.test", "10.0.0.9")
	dns.SetHost("empty.test")
	dns.SetSRV("_orders._tcp.svc.test",
		net.SRV{Target: "a.orders.test", Port: 9001, Priority: 10},
		net.SRV{Target: "b.orders.test", Port: 9002, Priority: 10},
		net.SRV{Target: "backup.orders.test", Port: 9009, Priority: 20})
	dns.SetSRV("_none._tcp.svc.test", net.SRV{Target: ".", Port: 9001})
	dns.SetSRV("_broken._tcp.svc.test", net.SRV{Target: "missing.orders.test", Port: 9001, Priority: 10})
	r := dns.Resolver()

	tests := []struct {
		name  string
		entry balancer.BackendOptions
		want  []string
		err   string
	}{
		{"a name gives each of its addresses with the port", balancer.BackendOptions{Addr: "orders.test:8080"},
			[]string{"127.0.0.1:8080", "127.0.0.2:8080", "[::1]:8080"}, ""},
		{"an srv gives the lowest priority's targets with their ports", balancer.BackendOptions{SRV: "_orders._tcp.svc.test"},
			[]string{"10.0.0.1:9001", "10.0.0.2:9002"}, ""},
		{"an empty answer is an error", balancer.BackendOptions{Addr: "empty.test:80"}, nil, "no such host"},
		{"an srv saying there is no service is an error", balancer.BackendOptions{SRV: "_none._tcp.svc.test"}, nil, errNoAddresses.Error()},
		{"an unknown name is an error", balancer.BackendOptions{Addr: "nosuch.test:80"}, nil, "no such host"},
		{"an srv whose target does not resolve is an error", balancer.BackendOptions{SRV: "_broken._tcp.svc.test"}, nil, "target missing.orders.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := lookupBackends(ctx, r, tt.entry)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("lookupBackends = %v, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("lookupBackends = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	dns.SetFailing(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := lookupBackends(ctx, r, balancer.BackendOptions{Addr: "orders.test:8080"}); err == nil {
		t.Fatalf("a failing server gave %v, want an error", got)
	}
}

func TestIsDNSName(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:80": false, "[::1]:80": false, "orders.svc:80": true, "localhost:80": true,
	} {
		if got := isDNSName(balancer.BackendOptions{Addr: addr}); got != want {
			t.Errorf("isDNSName(%q) = %v, want %v", addr, got, want)
		}
	}
	if !isDNSName(balancer.BackendOptions{SRV: "_a._tcp.svc"}) {
		t.Error("an srv entry is not a name")
	}
}

// dnsGatewayYAML is gatewayYAML over one backend entry, with a fast refresh.
func dnsGatewayYAML(entry string) string {
	return strings.Replace(gatewayYAML("PLACEHOLDER"), "      - {addr: PLACEHOLDER}\n",
		"      - {"+entry+"}\n    dns_refresh: 50ms\n", 1)
}

// startOriginOn starts an origin named name on host (a loopback address) at
// the given port.
func startOriginOn(t *testing.T, name, host string, port int) *origin.Server {
	t.Helper()
	return startOrigin(t, origin.Options{Name: name, Addr: net.JoinHostPort(host, fmt.Sprint(port))})
}

func TestNamedBackendsFollowDNS(t *testing.T) {
	t.Parallel()
	dns := testnet.StartDNS(t)
	a := startOrigin(t, origin.Options{Name: "a"})
	_, port, _ := net.SplitHostPort(a.Addr())
	var p int
	fmt.Sscan(port, &p)
	b := startOriginOn(t, "b", "127.0.0.2", p)
	dns.SetHost("orders.test", "127.0.0.1")

	s := startGateway(t, dnsGatewayYAML("addr: orders.test:"+port), func(o *Options) { o.Resolver = dns.Resolver() })
	pool := func() []string { return addrsOf(s.table.Load().pools["orders"].pool) }
	if got := pool(); !slices.Equal(got, []string{a.Addr()}) {
		t.Fatalf("pool at start = %v, want [%s]", got, a.Addr())
	}
	if view := do(t, "GET", "http://"+s.AdminAddr().String()+"/admin/pools", "").body; !strings.Contains(view, `"source": "dns"`) ||
		!strings.Contains(view, `"name": "orders.test:`+port+`"`) {
		t.Errorf("/admin/pools does not show the DNS source:\n%s", view)
	}

	// The name gains an address: the pool grows and both get traffic.
	dns.SetHost("orders.test", "127.0.0.1", "127.0.0.2")
	testnet.Eventually(t, "the pool to grow to two backends", func() bool { return len(pool()) == 2 })
	// Up to 100 requests: the new backend may still be checked, or slow-started,
	// for the first few under a loaded machine (seen: 6 requests all to a).
	seen := map[string]bool{}
	for i := 0; i < 100 && !(seen["a"] && seen["b"]); i++ {
		r := do(t, "GET", s.url("/api/orders/1"), "")
		if r.status != 200 {
			t.Fatalf("GET after the pool grew: %d %s", r.status, r.body)
		}
		seen[r.header.Get("X-Origin")] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("requests reached %v, want a and b (%s)", seen, b.Addr())
	}
	kept := s.table.Load().pools["orders"].pool.Backends()

	// A failing DNS server, then an empty answer, keep the last set.
	for _, fault := range []func(){
		func() { dns.SetFailing(true) },
		func() { dns.SetFailing(false); dns.SetHost("orders.test") },
	} {
		fault()
		time.Sleep(300 * time.Millisecond) // several refreshes
		if got := s.table.Load().pools["orders"].pool.Backends(); !slices.Equal(got, kept) {
			t.Fatalf("a DNS failure changed the pool to %v", addrsOf(s.table.Load().pools["orders"].pool))
		}
	}

	// The name loses an address: the pool shrinks.
	dns.SetHost("orders.test", "127.0.0.2")
	testnet.Eventually(t, "the pool to shrink to 127.0.0.2", func() bool {
		return slices.Equal(pool(), []string{b.Addr()})
	})
	if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 200 || r.header.Get("X-Origin") != "b" {
		t.Fatalf("GET after the pool shrank: %d from %q", r.status, r.header.Get("X-Origin"))
	}
}

func TestSRVBackends(t *testing.T) {
	t.Parallel()
	dns := testnet.StartDNS(t)
	a := startOrigin(t, origin.Options{Name: "a"})
	b := startOrigin(t, origin.Options{Name: "b"})
	host, portA, _ := net.SplitHostPort(a.Addr())
	_, portB, _ := net.SplitHostPort(b.Addr())
	var pa, pb uint16
	fmt.Sscan(portA, &pa)
	fmt.Sscan(portB, &pb)
	dns.SetHost("node.test", host)
	dns.SetSRV("_orders._tcp.svc.test", net.SRV{Target: "node.test", Port: pa, Priority: 1})

	s := startGateway(t, dnsGatewayYAML("srv: _orders._tcp.svc.test"), func(o *Options) { o.Resolver = dns.Resolver() })
	pool := func() []string { return addrsOf(s.table.Load().pools["orders"].pool) }
	if got := pool(); !slices.Equal(got, []string{a.Addr()}) {
		t.Fatalf("pool at start = %v, want [%s]", got, a.Addr())
	}
	dns.SetSRV("_orders._tcp.svc.test",
		net.SRV{Target: "node.test", Port: pa, Priority: 1}, net.SRV{Target: "node.test", Port: pb, Priority: 1})
	testnet.Eventually(t, "the second SRV target to join", func() bool { return len(pool()) == 2 })
	if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 200 {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
}

func TestUnresolvedNameIsDialledByNameAndReported(t *testing.T) {
	dns := testnet.StartDNS(t)
	a := startOrigin(t, origin.Options{Name: "a"})
	_, port, _ := net.SplitHostPort(a.Addr())
	yaml := dnsGatewayYAML("addr: orders.test:" + port)

	// Until the name resolves, the pool holds the name itself.
	dns.SetFailing(true)
	s := startGateway(t, yaml, func(o *Options) { o.Resolver = dns.Resolver() })
	if got := addrsOf(s.table.Load().pools["orders"].pool); !slices.Equal(got, []string{"orders.test:" + port}) {
		t.Fatalf("pool with an unresolved name = %v", got)
	}
	dns.SetFailing(false)
	dns.SetHost("orders.test", "127.0.0.1")
	testnet.Eventually(t, "the name to resolve", func() bool {
		return slices.Equal(addrsOf(s.table.Load().pools["orders"].pool), []string{a.Addr()})
	})

	// validate says which names do not resolve (with the system resolver,
	// which does not know orders.test).
	warnings, err := Check(loadConfig(t, strings.Replace(yaml, "orders.test", "orders.invalid", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(warnings, "\n"); !strings.Contains(w, `pools.orders.backends[0].addr: "orders.invalid:`+port+`" does not resolve now`) {
		t.Errorf("Check warnings = %q", warnings)
	}
	// An srv-only pool without targets cannot start.
	_, err = Check(loadConfig(t, dnsGatewayYAML("srv: _orders._tcp.orders.invalid")))
	if err == nil || !strings.Contains(err.Error(), "pools.orders.backends: no backend left") {
		t.Errorf("Check of an srv without targets = %v", err)
	}
}

// addrsOf returns the addresses of the backends of p, sorted.
func addrsOf(p *balancer.Pool) []string {
	out := make([]string, 0, len(p.Backends()))
	for _, b := range p.Backends() {
		out = append(out, b.Addr())
	}
	slices.Sort(out)
	return out
}

func TestANameAddedByAReloadIsResolvedBeforeTheSwap(t *testing.T) {
	dns := testnet.StartDNS(t)
	a := startOrigin(t, origin.Options{Name: "a"})
	_, port, _ := net.SplitHostPort(a.Addr())
	dns.SetHost("orders.test", "127.0.0.1")
	s := startGateway(t, gatewayYAML(a.Addr()), func(o *Options) { o.Resolver = dns.Resolver() })

	if err := s.Reload(loadConfig(t, dnsGatewayYAML("addr: orders.test:"+port))); err != nil {
		t.Fatal(err)
	}
	tp := s.table.Load().pools["orders"]
	if got := addrsOf(tp.pool); !slices.Equal(got, []string{a.Addr()}) || tp.origins[a.Addr()].source != sourceDNS {
		t.Fatalf("pool right after the reload = %v from %+v", got, tp.origins)
	}
	// A reload back to the address forgets the name.
	if err := s.Reload(loadConfig(t, gatewayYAML(a.Addr()))); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	n := len(s.runtime.names)
	s.mu.Unlock()
	if n != 0 || s.table.Load().pools["orders"].origins[a.Addr()].source != sourceConfig {
		t.Errorf("after the name left the file: %d names kept", n)
	}
}
