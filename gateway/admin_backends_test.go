package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

const adminTestToken = "s3cret"

// withAdminToken gives a gatewayYAML configuration an admin token file.
func withAdminToken(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(adminTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(yaml, "admin: {listen: 127.0.0.1:0}", "admin: {listen: 127.0.0.1:0, token_file: "+path+"}", 1)
}

// adminSend sends an admin request with a body and the test token.
func adminSend(t *testing.T, s *Server, method, path, body string) response {
	t.Helper()
	return do(t, method, "http://"+s.AdminAddr().String()+path, body,
		"Authorization", "Bearer "+adminTestToken, "Content-Type", "application/json")
}

// poolState returns the addresses of pool "orders" and which are draining.
func poolState(s *Server) (addrs []string, draining []string) {
	for _, b := range s.table.Load().pools["orders"].pool.Backends() {
		addrs = append(addrs, b.Addr())
		if b.Draining() {
			draining = append(draining, b.Addr())
		}
	}
	return addrs, draining
}

// trafficLoad sends GETs through a gateway from a few goroutines until
// finish, and counts the requests not answered 200.
type trafficLoad struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	sent  atomic.Int64
	bad   atomic.Int64
	first atomic.Value // string: the first failure
}

func startLoad(s *Server) *trafficLoad {
	l := &trafficLoad{stop: make(chan struct{})}
	for w := range 4 {
		l.wg.Go(func() {
			c := &fasthttp.Client{}
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				id := fmt.Sprint(w*100000 + i + 1)
				code, body, err := c.GetTimeout(nil, s.url("/api/orders/"+id), 10*time.Second)
				l.sent.Add(1)
				if err != nil || code != 200 || !strings.Contains(string(body), id) {
					l.bad.Add(1)
					l.first.CompareAndSwap(nil, fmt.Sprintf("id %s: %d %v %.100q", id, code, err, body))
				}
			}
		})
	}
	return l
}

// finish stops the load and fails the test if any request failed.
func (l *trafficLoad) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if n := l.bad.Load(); n > 0 {
		t.Errorf("%d of %d requests failed; first: %v", n, l.sent.Load(), l.first.Load())
	}
	if l.sent.Load() == 0 {
		t.Error("no request was sent")
	}
}

func TestAdminBackendWritesNeedTheToken(t *testing.T) {
	a := startOrigin(t, origin.Options{Name: "a"})
	writes := [][2]string{
		{"POST", "/admin/pools/orders/backends"},
		{"POST", "/admin/pools/orders/backends/" + a.Addr() + "/drain"},
		{"DELETE", "/admin/pools/orders/backends/" + a.Addr()},
	}
	open := startGateway(t, gatewayYAML(a.Addr()))
	for _, w := range writes {
		if r := adminDo(t, open, w[0], w[1], ""); r.status != 403 {
			t.Errorf("%s %s without a configured token: %d, want 403", w[0], w[1], r.status)
		}
	}
	s := startGateway(t, withAdminToken(t, gatewayYAML(a.Addr())))
	for _, w := range writes {
		for _, token := range []string{"", "wrong"} {
			if r := adminDo(t, s, w[0], w[1], token); r.status != 401 {
				t.Errorf("%s %s with token %q: %d, want 401", w[0], w[1], token, r.status)
			}
		}
	}
	if addrs, draining := poolState(s); !slices.Equal(addrs, []string{a.Addr()}) || draining != nil {
		t.Errorf("refused writes changed the pool: %v, draining %v", addrs, draining)
	}
}

func TestAdminBackendRefusesBadInputAndChangesNothing(t *testing.T) {
	a := startOrigin(t, origin.Options{Name: "a"})
	s := startGateway(t, withAdminToken(t, gatewayYAML(a.Addr())))
	add := "/admin/pools/orders/backends"
	tests := []struct {
		name, method, path, body string
		status                   int
		field, message           string
	}{
		{"a body that is not JSON", "POST", add, "addr=1", 400, "", "body:"},
		{"an unknown field", "POST", add, `{"addr":"127.0.0.1:9","wieght":2}`, 400, "", `unknown field "wieght"`},
		{"an address without a port", "POST", add, `{"addr":"127.0.0.1"}`, 400, "addr", "missing port"},
		{"no address", "POST", add, `{"weight":2}`, 400, "addr", "required (host:port)"},
		{"a name", "POST", add, `{"addr":"orders.svc:80"}`, 400, "addr", "not an IP address"},
		{"an srv", "POST", add, `{"srv":"_a._tcp.svc"}`, 400, "srv", "configuration file"},
		{"a negative weight", "POST", add, `{"addr":"127.0.0.1:9","weight":-1}`, 400, "weight", "must not be negative"},
		{"an unknown pool", "POST", "/admin/pools/nope/backends", `{"addr":"127.0.0.1:9"}`, 404, "", `no pool "nope"`},
		{"a backend already in the pool", "POST", add, `{"addr":"` + a.Addr() + `"}`, 409, "addr", "already a backend"},
		{"draining an unknown backend", "POST", add + "/127.0.0.1:9/drain", "", 404, "", "has no backend 127.0.0.1:9"},
		{"draining the last backend", "POST", add + "/" + a.Addr() + "/drain", "", 409, "", "last backend"},
		{"removing the last backend", "DELETE", add + "/" + a.Addr(), "", 409, "", "last backend"},
		{"removing from an unknown pool", "DELETE", "/admin/pools/nope/backends/" + a.Addr(), "", 404, "", `no pool "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := adminSend(t, s, tt.method, tt.path, tt.body)
			var got struct{ Error, Field string }
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("answer %d is not JSON: %q", r.status, r.body)
			}
			if r.status != tt.status || got.Field != tt.field || !strings.Contains(got.Error, tt.message) {
				t.Errorf("answer %d field %q error %q, want %d field %q error with %q",
					r.status, got.Field, got.Error, tt.status, tt.field, tt.message)
			}
		})
	}
	if addrs, draining := poolState(s); !slices.Equal(addrs, []string{a.Addr()}) || draining != nil {
		t.Errorf("refused writes changed the pool: %v, draining %v", addrs, draining)
	}
}

func TestAddedBackendIsKeptInCanonicalForm(t *testing.T) {
	b, field, err := addedBackend{Addr: "[0:0::1]:80"}.check()
	if err != nil || field != "" || b.Addr != "[::1]:80" || b.Weight != 1 {
		t.Errorf("check() = %+v, %q, %v; want [::1]:80 with weight 1", b, field, err)
	}
}

func TestAddedBackendTakesTrafficWithoutAFailedRequest(t *testing.T) {
	a := startOrigin(t, origin.Options{Name: "a"})
	b := startOrigin(t, origin.Options{Name: "b"})
	s := startGateway(t, withAdminToken(t, withHealthCheck(gatewayYAML(a.Addr()))))

	load := startLoad(s)
	time.Sleep(50 * time.Millisecond)
	r := adminSend(t, s, "POST", "/admin/pools/orders/backends", `{"addr":"`+b.Addr()+`","weight":2}`)
	if r.status != 201 {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	var view poolView
	if err := json.Unmarshal([]byte(r.body), &view); err != nil {
		t.Fatal(err)
	}
	if view.Size != 2 || view.Backends[1].Addr != b.Addr() || view.Backends[1].Source != sourceAdmin ||
		view.Backends[1].Weight != 2 || view.Backends[0].Source != sourceConfig {
		t.Errorf("add answered %+v", view)
	}
	testnet.Eventually(t, "the added backend to get requests", func() bool { return b.Requests() > 10 })
	load.finish(t)
	if n := checkerGoroutines(); n != 2 {
		t.Errorf("%d health-check goroutines, want 2: the new backend is checked, the old table's checkers stopped", n)
	}
}

func TestDrainedAndRemovedBackendsFinishTheirRequestsWithoutAFailedOne(t *testing.T) {
	t.Parallel()
	a := startOrigin(t, origin.Options{Name: "a"})
	slow := origin.Latency{Dist: "fixed", Fixed: 150 * time.Millisecond}
	b := startOrigin(t, origin.Options{Name: "b", Latency: slow})
	c := startOrigin(t, origin.Options{Name: "c"})
	s := startGateway(t, withAdminToken(t, gatewayYAML(a.Addr(), b.Addr(), c.Addr())))
	backends := "/admin/pools/orders/backends/"

	load := startLoad(s)
	testnet.Eventually(t, "every backend to get requests", func() bool {
		return a.Requests() > 0 && b.Requests() > 0 && c.Requests() > 0
	})

	// Drain c: it stays in the pool but gets no new request.
	if r := adminSend(t, s, "POST", backends+c.Addr()+"/drain", ""); r.status != 200 || !strings.Contains(r.body, `"draining":true`) {
		t.Fatalf("drain: %d %s", r.status, r.body)
	}
	time.Sleep(50 * time.Millisecond) // requests c already had finish
	drained := c.Requests()
	time.Sleep(200 * time.Millisecond)
	if got := c.Requests(); got != drained {
		t.Errorf("a draining backend got %d new requests", got-drained)
	}

	// Remove b, which is slow, so it has requests in flight: it drains first.
	r := adminSend(t, s, "DELETE", backends+b.Addr(), "")
	if r.status != 202 && r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	testnet.Eventually(t, "b to leave the pool", func() bool {
		addrs, _ := poolState(s)
		return !slices.Contains(addrs, b.Addr())
	})
	addrs, draining := poolState(s)
	if !slices.Equal(addrs, []string{a.Addr(), c.Addr()}) || !slices.Equal(draining, []string{c.Addr()}) {
		t.Errorf("pool after removing b: %v, draining %v", addrs, draining)
	}
	// c is the only other backend and is draining: a is the last one.
	if r := adminSend(t, s, "DELETE", backends+a.Addr(), ""); r.status != 409 {
		t.Errorf("removing the last backend taking requests: %d %s", r.status, r.body)
	}
	load.finish(t)
}

func TestRuntimeBackendChangesSurviveAReload(t *testing.T) {
	a := startOrigin(t, origin.Options{Name: "a"})
	b := startOrigin(t, origin.Options{Name: "b"})
	c := startOrigin(t, origin.Options{Name: "c"})
	yaml := withAdminToken(t, gatewayYAML(a.Addr(), b.Addr()))
	path := writeConfig(t, yaml)
	s := startGateway(t, yaml)
	if r := adminSend(t, s, "POST", "/admin/pools/orders/backends", `{"addr":"`+c.Addr()+`"}`); r.status != 201 {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	if r := adminSend(t, s, "DELETE", "/admin/pools/orders/backends/"+b.Addr(), ""); r.status != 200 {
		t.Fatalf("delete of an idle backend: %d %s", r.status, r.body)
	}
	want := []string{a.Addr(), c.Addr()}
	if addrs, _ := poolState(s); !slices.Equal(addrs, want) {
		t.Fatalf("pool after the changes: %v, want %v", addrs, want)
	}

	// A changed file (a new timeout) keeps them.
	testnet.WriteFile(t, path, strings.Replace(yaml, "timeout: 2s", "timeout: 3s", 1))
	if err := s.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if addrs, _ := poolState(s); !slices.Equal(addrs, want) {
		t.Fatalf("pool after a reload: %v, want %v", addrs, want)
	}
	// A file that lists the added backend itself is fine.
	testnet.WriteFile(t, path, withAdminToken(t, gatewayYAML(a.Addr(), b.Addr(), c.Addr())))
	if err := s.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if addrs, _ := poolState(s); !slices.Equal(addrs, want) {
		t.Fatalf("pool after a reload listing c: %v, want %v", addrs, want)
	}
	// Adding the removed backend again brings it back.
	if r := adminSend(t, s, "POST", "/admin/pools/orders/backends", `{"addr":"`+b.Addr()+`"}`); r.status != 201 {
		t.Fatalf("add again: %d %s", r.status, r.body)
	}
	if addrs, _ := poolState(s); !slices.Equal(addrs, []string{a.Addr(), b.Addr(), c.Addr()}) {
		t.Fatalf("pool after adding b again: %v", addrs)
	}
	view := do(t, "GET", "http://"+s.AdminAddr().String()+"/admin/pools", "").body
	if !strings.Contains(view, `"size": 3`) || strings.Count(view, `"source": "config"`) != 3 {
		t.Errorf("/admin/pools:\n%s", view)
	}
}
