package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/sluice-gw/sluice/balancer"
)

// The admin API's backend changes, for autoscaling: add a backend, drain
// one, remove one. Each is a runtime change (dynamic.go): it rebuilds the
// table the way a reload does and outlives reloads. Every write needs the
// admin token (requireToken).

// drainPoll is how often a removal checks whether the backend's in-flight
// requests have finished.
const drainPoll = 20 * time.Millisecond

// maxAdminBody bounds the JSON body of an admin write.
const maxAdminBody = 64 << 10

// addBackend answers POST /admin/pools/{pool}/backends with body
// {"addr":"10.0.0.7:9001","weight":1}: 201 and the pool's backends, 400
// naming the field that is wrong, 404 for an unknown pool, 409 when the
// address is already in the pool. Adding an address the admin API removed
// brings it back.
func (s *Server) addBackend(w http.ResponseWriter, r *http.Request) {
	pool := r.PathValue("pool")
	var body addedBackend
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		adminError(w, http.StatusBadRequest, "", "body: want {\"addr\":\"host:port\",\"weight\":1}: "+err.Error())
		return
	}
	in, field, err := body.check()
	if err != nil {
		adminError(w, http.StatusBadRequest, field, err.Error())
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	tp, status, msg := s.livePool(pool)
	if tp == nil {
		adminError(w, status, "", msg)
		return
	}
	if backendOf(tp, in.Addr) != nil {
		adminError(w, http.StatusConflict, "addr", fmt.Sprintf("%s is already a backend of pool %q", in.Addr, pool))
		return
	}
	pc := s.runtime.pool(pool)
	wasRemoved := pc.removed[in.Addr]
	delete(pc.removed, in.Addr)
	pc.added = append(pc.added, in)
	if err := s.applyRuntime(); err != nil {
		pc.added = pc.added[:len(pc.added)-1]
		if wasRemoved {
			pc.removed[in.Addr] = true
		}
		adminError(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	s.log.Info("backend added", "who", "admin", "pool", pool, "backend", in.Addr, "weight", in.Weight)
	writeAdminJSON(w, http.StatusCreated, s.poolView(pool))
}

// addedBackend is the body of POST /admin/pools/{pool}/backends.
type addedBackend struct {
	Addr   string `json:"addr"`
	Weight int    `json:"weight"`
	SRV    string `json:"srv"` // refused, with a message saying where it belongs
}

// check validates the backend as the configuration's would be and returns
// it with its address in canonical form (so that "[0::1]:80" and
// "[::1]:80" are one backend), or the field at fault. Only IP addresses are
// accepted: a name belongs in the file, where it is looked up again every
// dns_refresh, while an added backend is one fixed address.
func (in addedBackend) check() (b balancer.BackendOptions, field string, err error) {
	if in.SRV != "" {
		return b, "srv", errors.New("srv: names belong in the configuration file; add addresses here")
	}
	b = balancer.BackendOptions{Addr: in.Addr, Weight: in.Weight}
	if err := b.Validate(); err != nil {
		var fe *balancer.FieldError
		if errors.As(err, &fe) {
			return b, fe.Path, fe
		}
		return b, "", err
	}
	ap, err := netip.ParseAddrPort(in.Addr)
	if err != nil {
		return b, "addr", fmt.Errorf("addr: %q is not an IP address and port; names belong in the configuration file, where they are looked up again every dns_refresh", in.Addr)
	}
	b.Addr = ap.String()
	b.Weight = max(b.Weight, balancer.DefaultWeight)
	return b, "", nil
}

// drainBackend answers POST /admin/pools/{pool}/backends/{addr}/drain: the
// backend takes no new requests from now on, while those it has finish. It
// stays in the pool (DELETE removes it). 409 when it is the last backend
// taking requests.
func (s *Server) drainBackend(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pool, addr, b := s.takeOut(w, r)
	if b == nil {
		return
	}
	s.log.Info("backend draining", "who", "admin", "pool", pool, "backend", addr, "in_flight", b.InFlight())
	writeAdminJSON(w, http.StatusOK, s.poolView(pool))
}

// removeBackend answers DELETE /admin/pools/{pool}/backends/{addr}: the
// backend drains, and once its in-flight requests have finished (or after
// server.drain_timeout) it leaves the pool. 200 {"state":"removed"} when
// that could be done at once, 202 {"state":"draining"} otherwise. 409 when
// it is the last backend taking requests. A removed address stays out, even
// when the file or DNS lists it, until it is added again.
func (s *Server) removeBackend(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pool, addr, b := s.takeOut(w, r)
	if b == nil {
		return
	}
	pc := s.runtime.pool(pool)
	if b.InFlight() == 0 {
		if err := s.remove(pool, addr, "idle"); err != nil {
			adminError(w, http.StatusServiceUnavailable, "", err.Error())
			return
		}
		writeAdminJSON(w, http.StatusOK, map[string]any{"pool": pool, "addr": addr, "state": "removed"})
		return
	}
	if !pc.removing[addr] {
		pc.removing[addr] = true
		s.log.Info("backend draining before removal", "who", "admin", "pool", pool, "backend", addr, "in_flight", b.InFlight())
		go s.removeWhenDrained(pool, addr, b, time.Now().Add(s.cfg.Server.DrainTimeout))
	}
	writeAdminJSON(w, http.StatusAccepted, map[string]any{"pool": pool, "addr": addr, "state": "draining", "in_flight": b.InFlight()})
}

// takeOut finds the backend {addr} of {pool} and marks it draining, or
// answers why not and returns a nil backend. It refuses to take out the
// last backend of the pool that takes requests: the pool would answer every
// request 503. The caller holds s.mu.
func (s *Server) takeOut(w http.ResponseWriter, r *http.Request) (pool, addr string, b *balancer.Backend) {
	pool, addr = r.PathValue("pool"), r.PathValue("addr")
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		addr = ap.String() // as added backends are kept
	}
	tp, status, msg := s.livePool(pool)
	if tp == nil {
		adminError(w, status, "", msg)
		return pool, addr, nil
	}
	if b = backendOf(tp, addr); b == nil {
		adminError(w, http.StatusNotFound, "", fmt.Sprintf("pool %q has no backend %s", pool, addr))
		return pool, addr, nil
	}
	others := 0
	for _, o := range tp.pool.Backends() {
		if o != b && !o.Draining() {
			others++
		}
	}
	if others == 0 {
		adminError(w, http.StatusConflict, "", fmt.Sprintf("%s is the last backend of pool %q taking requests; add another first", addr, pool))
		return pool, addr, nil
	}
	b.SetDraining(true)
	return pool, addr, b
}

// removeWhenDrained waits until b has no request in flight, or deadline,
// then takes addr out of pool.
func (s *Server) removeWhenDrained(pool, addr string, b *balancer.Backend, deadline time.Time) {
	reason := "drained"
	for b.InFlight() > 0 {
		if time.Now().After(deadline) {
			reason = "drain timeout"
			break
		}
		if s.draining.Load() {
			return // Shutdown retires every backend anyway
		}
		time.Sleep(drainPoll)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runtime.pool(pool).removing[addr] {
		return // added again meanwhile
	}
	if err := s.remove(pool, addr, reason); err != nil && !errors.Is(err, errShuttingDown) {
		s.log.Error("backend not removed", "who", "admin", "pool", pool, "backend", addr, "error", err)
	}
}

// remove takes addr out of pool and rebuilds the table. The caller holds
// s.mu.
func (s *Server) remove(pool, addr, reason string) error {
	pc := s.runtime.pool(pool)
	delete(pc.removing, addr)
	pc.removed[addr] = true
	pc.added = slices.DeleteFunc(pc.added, func(e balancer.BackendOptions) bool { return e.Addr == addr })
	if err := s.applyRuntime(); err != nil {
		delete(pc.removed, addr)
		return err
	}
	s.log.Info("backend removed", "who", "admin", "pool", pool, "backend", addr, "reason", reason)
	return nil
}

// livePool returns the pool of the live table, or nil with 404 (or 503
// during shutdown) and a message.
func (s *Server) livePool(name string) (*tablePool, int, string) {
	if s.draining.Load() {
		return nil, http.StatusServiceUnavailable, errShuttingDown.Error()
	}
	tp := s.table.Load().pools[name]
	if tp == nil {
		return nil, http.StatusNotFound, fmt.Sprintf("no pool %q", name)
	}
	return tp, 0, ""
}

func backendOf(tp *tablePool, addr string) *balancer.Backend {
	for _, b := range tp.pool.Backends() {
		if b.Addr() == addr {
			return b
		}
	}
	return nil
}

// poolView returns the /admin/pools entry of pool in the live table.
func (s *Server) poolView(name string) poolView {
	if tp := s.table.Load().pools[name]; tp != nil {
		return viewOf(tp)
	}
	return poolView{Name: name, Backends: []backendView{}}
}

// adminError answers status with {"error": msg} and, when one input field
// is at fault, {"field": name}.
func adminError(w http.ResponseWriter, status int, field, msg string) {
	body := map[string]any{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeAdminJSON(w, status, body)
}
