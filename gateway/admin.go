package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer is the operator's listener: metrics, liveness, readiness and
// the state of the pools. It runs on net/http: it is not on the hot path and
// promhttp speaks net/http.
type adminServer struct {
	ln  net.Listener
	srv *http.Server
}

func newAdminServer(s *Server, addr string) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if s.closing.Load() || !s.started.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /admin/ratelimits/{limit}", s.limitState)
	mux.HandleFunc("GET /admin/pools", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(poolsView(s.table.Load()))
	})
	mux.HandleFunc("POST /admin/cache/purge", s.requireToken(s.purge))
	mux.HandleFunc("POST /admin/pools/{pool}/backends", s.requireToken(s.addBackend))
	mux.HandleFunc("POST /admin/pools/{pool}/backends/{addr}/drain", s.requireToken(s.drainBackend))
	mux.HandleFunc("DELETE /admin/pools/{pool}/backends/{addr}", s.requireToken(s.removeBackend))
	return &adminServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}}, nil
}

func (a *adminServer) serve() { _ = a.srv.Serve(a.ln) }

func (a *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

// poolView is the JSON shape of /admin/pools.
type poolView struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
	// Size is the number of backends, draining ones included.
	Size     int           `json:"size"`
	Backends []backendView `json:"backends"`
}

type backendView struct {
	Addr   string `json:"addr"`
	Weight int    `json:"weight"`
	// Source is where the backend came from: "config" (the file), "admin"
	// (the admin API) or "dns" (what Name resolved to).
	Source string `json:"source,omitempty"`
	Name   string `json:"name,omitempty"`
	// Healthy is false while the backend may not be picked: failed checks,
	// ejected or draining.
	Healthy       bool   `json:"healthy"`
	Draining      bool   `json:"draining"`
	InFlight      int64  `json:"in_flight"`
	Requests      uint64 `json:"requests"`
	ConnectErrors uint64 `json:"connect_errors"`
	TimeoutErrors uint64 `json:"timeout_errors"`
	OtherErrors   uint64 `json:"other_errors"`
	// Pipelined counts requests answered over pipelined connections
	// (upstream.pipeline); absent when pipelining was never on.
	Pipelined uint64 `json:"pipelined,omitempty"`
	// PipelineOff says why pipelining to the backend was turned off.
	PipelineOff string `json:"pipeline_off,omitempty"`
}

func poolsView(t *Table) []poolView {
	out := []poolView{}
	if t == nil {
		return out
	}
	for _, tp := range t.poolList {
		out = append(out, viewOf(tp))
	}
	return out
}

func viewOf(tp *tablePool) poolView {
	pv := poolView{Name: tp.pool.Name(), Policy: tp.pool.Options().Policy, Size: len(tp.pool.Backends()), Backends: []backendView{}}
	for _, b := range tp.pool.Backends() {
		st := b.Stats()
		from := tp.origins[st.Addr]
		pv.Backends = append(pv.Backends, backendView{
			Addr: st.Addr, Weight: st.Weight, Source: from.source, Name: from.name, Healthy: st.Healthy, Draining: st.Draining, InFlight: st.InFlight,
			Requests: st.Requests, ConnectErrors: st.ConnectErrors, TimeoutErrors: st.TimeoutErrors, OtherErrors: st.OtherErrors,
			Pipelined: st.Pipelined, PipelineOff: errString(b.PipelineOff()),
		})
	}
	return pv
}
