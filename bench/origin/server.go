package origin

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	// maxIdleWorker is the server's MaxIdleWorkerDuration (see Start).
	maxIdleWorker = time.Second
	// closeWait bounds how long Close waits for connection goroutines
	// to finish after closing their connections; they finish in microseconds
	// unless something is badly wrong, and Close must return promptly anyway.
	closeWait = 5 * time.Second
)

// Server is a running synthetic order backend. Its methods are safe for
// concurrent use.
type Server struct {
	opts      Options
	hdr       headerBytes
	ln        net.Listener
	srv       *fasthttp.Server
	fault     atomic.Pointer[Fault]
	reqs      atomic.Int64 // requests counted by Requests
	nextID    atomic.Int64 // last id handed out by POST /orders
	capture   captureRing
	conns     connSet
	done      chan struct{} // closed by Close; ends latency waits and slow bodies
	served    chan struct{} // closed when Serve has returned
	closeOnce sync.Once
	closeErr  error
}

// firstPostID is where POST /orders starts numbering, far above the ids
// tests and load generators usually GET, so created orders are easy to spot.
const firstPostID = 1_000_000

// Start listens on opts.Addr and serves in the background until Close.
func Start(opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("origin: listen %s: %w", opts.Addr, err)
	}
	o := &Server{
		opts:   opts,
		ln:     ln,
		done:   make(chan struct{}),
		served: make(chan struct{}),
	}
	if opts.Name == "" {
		o.opts.Name = ln.Addr().String()
	}
	o.hdr = headerBytes{
		originName:        []byte("X-Origin"),
		originValue:       []byte(o.opts.Name),
		cacheControlName:  []byte("Cache-Control"),
		cacheControlValue: []byte(opts.CacheControl),
	}
	f := opts.Fault
	o.fault.Store(&f)
	o.nextID.Store(firstPostID)
	o.conns.init()
	o.srv = &fasthttp.Server{
		Handler:                       o.serve,
		NoDefaultServerHeader:         true,
		DisableHeaderNamesNormalizing: true, // Received must see names as sent
		// fasthttp's default (4 KiB) answers a larger request head with its
		// own 431: behind a gateway that takes heads up to 16 KiB (Sluice's
		// server.max_header_bytes default) that 431 looked like the
		// gateway's. 32 KiB takes any head such a gateway passes on, with the
		// fields it adds.
		ReadBufferSize: 32 << 10,
		ReadTimeout:    opts.ReadTimeout,
		WriteTimeout:   opts.WriteTimeout,
		IdleTimeout:    opts.IdleTimeout,
		ConnState:      o.conns.track,
		Logger:         quietLogger{},
		// Keep request and response buffers between requests: the hot path
		// then reuses them instead of asking the pools.
		ReduceMemoryUsage: false,
		// fasthttp's worker-pool cleaner sleeps this long between sweeps and
		// only then notices the server stopped; at the 10s default a closed
		// origin leaves a goroutine behind for 10s. A worker re-created after
		// a second of idleness costs a goroutine start, nothing measurable.
		MaxIdleWorkerDuration: maxIdleWorker,
	}
	go func() {
		defer close(o.served)
		// Serve returns when Close closes the listener; that error is the
		// expected way out, not worth reporting.
		_ = o.srv.Serve(ln)
	}()
	return o, nil
}

// Addr returns the host:port the origin listens on.
func (o *Server) Addr() string { return o.ln.Addr().String() }

// Name returns the value sent in X-Origin.
func (o *Server) Name() string { return o.opts.Name }

// SetFault switches the fault mode. It applies to every request whose
// handler has not yet looked at it: requests still in their added latency
// included. A mode that is not Valid behaves as FaultNone.
func (o *Server) SetFault(f Fault) { o.fault.Store(&f) }

// Fault returns the current fault mode.
func (o *Server) Fault() Fault { return *o.fault.Load() }

// Requests returns how many requests reached the origin on any path except
// the control endpoint (/_origin/...), including those a fault swallowed.
func (o *Server) Requests() int64 { return o.reqs.Load() }

// Close stops listening, closes every open connection, hung ones included,
// and waits (at most 5s, normally microseconds) for their goroutines to end.
// Requests and Received stay readable afterwards. It is safe to call more
// than once; later calls return the first call's result.
func (o *Server) Close() error {
	o.closeOnce.Do(func() {
		close(o.done)
		conns := o.conns.closeAll()
		if err := o.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			o.closeErr = fmt.Errorf("origin %s: close listener: %w", o.opts.Name, err)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		timer := time.NewTimer(closeWait)
		defer timer.Stop()
		select {
		case <-o.served:
		case <-timer.C:
			return
		}
		select {
		case <-o.conns.empty:
		case <-timer.C:
		}
	})
	return o.closeErr
}

// headerBytes are the hot path's header names and values as bytes,
// converted once: setting them with SetCanonical skips the string-to-bytes
// copy and validation that Set does on every request. Names are spelled as
// sent, since the server does not normalise them. Read-only after start.
type headerBytes struct {
	originName, originValue             []byte
	cacheControlName, cacheControlValue []byte
}

// connSet tracks the origin's open connections, through fasthttp's
// ConnState hook, so Close can close them: fasthttp's own Shutdown waits for
// active connections, and a hung request never stops being active.
type connSet struct {
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool          // set by closeAll; later connections are closed at once
	empty  chan struct{} // closed when open becomes empty after closeAll
}

func (t *connSet) init() {
	t.open = make(map[net.Conn]struct{})
	t.empty = make(chan struct{})
}

// track is the fasthttp ConnState hook. It is called on every request
// (active/idle transitions), so it returns at once for those.
func (t *connSet) track(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		t.open[c] = struct{}{}
		t.mu.Unlock()
	case fasthttp.StateClosed:
		t.remove(c)
	}
	// StateHijacked: the connection stays tracked until the fault that took
	// it over calls remove.
}

// remove forgets c, which has been or is about to be closed.
func (t *connSet) remove(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.open[c]; !ok {
		return
	}
	delete(t.open, c)
	if t.closed && len(t.open) == 0 {
		close(t.empty)
	}
}

// closeAll marks the set closed and returns the connections open now.
func (t *connSet) closeAll() []net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	conns := make([]net.Conn, 0, len(t.open))
	for c := range t.open {
		conns = append(conns, c)
	}
	if len(t.open) == 0 {
		close(t.empty)
	}
	return conns
}

// quietLogger drops fasthttp's log lines: the origin's faults and Close
// produce connection errors on purpose.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
