package bench

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// OriginOptions configures a synthetic order backend. The zero value is a
// fast, well-behaved origin on a free loopback port.
type OriginOptions struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:0", a free
	// loopback port; Origin.Addr reports the one chosen.
	Addr string
	// Latency is the delay added before each /orders and /echo answer.
	// Default none. The delay waits on a timer, never on a shared lock, so a
	// slow request does not hold up other connections.
	Latency OriginLatency
	// PayloadBytes is the approximate size of a GET /orders/{id} body: the
	// order is padded with a "padding" field up to this many bytes. Default
	// 300, the size of a small JSON API object. A value below the unpadded
	// order (about 200 bytes) gives the unpadded order.
	PayloadBytes int
	// CacheControl, when set, is sent as Cache-Control on 200 answers to
	// GET /orders/{id}, e.g. "max-age=5". Default: no Cache-Control.
	CacheControl string
	// ErrorRate is the fraction, in [0,1], of /orders requests answered 500
	// at random. Default 0.
	ErrorRate float64
	// Fault is the fault mode the origin starts in (see Fault). Default
	// FaultNone. Change it later with Origin.SetFault or the control endpoint.
	Fault Fault
	// Name is sent as X-Origin on every response so a test can tell which
	// backend of a pool answered. Default: the listening host:port.
	Name string
	// SlowBodyInterval is the pause between body bytes under FaultSlowBody.
	// Default 100ms, which turns a 300-byte body into a 30s trickle: far
	// beyond any sane gateway read timeout.
	SlowBodyInterval time.Duration
	// ReadTimeout bounds reading one request. Default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response. It starts after the handler
	// returns, so it does not count the added latency. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Default 60s, longer than the gateway's pool keeps idle
	// connections, so the gateway, not the origin, decides when they close.
	IdleTimeout time.Duration
}

// Defaults of OriginOptions.
const (
	originDefaultAddr         = "127.0.0.1:0"
	originDefaultPayloadBytes = 300
	originDefaultSlowBody     = 100 * time.Millisecond
	originDefaultReadTimeout  = 10 * time.Second
	originDefaultWriteTimeout = 10 * time.Second
	originDefaultIdleTimeout  = 60 * time.Second
	originMaxIdleWorker       = time.Second
	// originCloseWait bounds how long Close waits for connection goroutines
	// to finish after closing their connections; they finish in microseconds
	// unless something is badly wrong, and Close must return promptly anyway.
	originCloseWait = 5 * time.Second
)

// withDefaults returns o with zero fields replaced by their defaults, or an
// error naming the first invalid field.
func (o OriginOptions) withDefaults() (OriginOptions, error) {
	if o.Addr == "" {
		o.Addr = originDefaultAddr
	}
	if o.PayloadBytes == 0 {
		o.PayloadBytes = originDefaultPayloadBytes
	}
	if o.SlowBodyInterval == 0 {
		o.SlowBodyInterval = originDefaultSlowBody
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = originDefaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = originDefaultWriteTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = originDefaultIdleTimeout
	}
	switch {
	case o.PayloadBytes < 0:
		return o, fmt.Errorf("payload bytes: negative value %d", o.PayloadBytes)
	case !(o.ErrorRate >= 0 && o.ErrorRate <= 1):
		return o, fmt.Errorf("error rate: %v is outside [0,1]", o.ErrorRate)
	case !o.Fault.Valid():
		return o, fmt.Errorf("fault: unknown mode %q (want one of %s)", string(o.Fault), faultModeNames)
	case o.SlowBodyInterval < 0 || o.ReadTimeout < 0 || o.WriteTimeout < 0 || o.IdleTimeout < 0:
		return o, errors.New("timeouts and intervals must not be negative")
	}
	if err := o.Latency.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// Origin is a running synthetic order backend. Its methods are safe for
// concurrent use.
type Origin struct {
	opts      OriginOptions
	hdr       originHeaders
	ln        net.Listener
	srv       *fasthttp.Server
	fault     atomic.Pointer[Fault]
	reqs      atomic.Int64 // requests counted by Requests
	nextID    atomic.Int64 // last id handed out by POST /orders
	capture   originCapture
	conns     originConns
	done      chan struct{} // closed by Close; ends latency waits and slow bodies
	served    chan struct{} // closed when Serve has returned
	closeOnce sync.Once
	closeErr  error
}

// originFirstPostID is where POST /orders starts numbering, far above the ids
// tests and load generators usually GET, so created orders are easy to spot.
const originFirstPostID = 1_000_000

// StartOrigin listens on opts.Addr and serves in the background until Close.
func StartOrigin(opts OriginOptions) (*Origin, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("origin: listen %s: %w", opts.Addr, err)
	}
	o := &Origin{
		opts:   opts,
		ln:     ln,
		done:   make(chan struct{}),
		served: make(chan struct{}),
	}
	if opts.Name == "" {
		o.opts.Name = ln.Addr().String()
	}
	o.hdr = originHeaders{
		originName:        []byte("X-Origin"),
		originValue:       []byte(o.opts.Name),
		cacheControlName:  []byte("Cache-Control"),
		cacheControlValue: []byte(opts.CacheControl),
	}
	f := opts.Fault
	o.fault.Store(&f)
	o.nextID.Store(originFirstPostID)
	o.conns.init()
	o.srv = &fasthttp.Server{
		Handler:                       o.serve,
		NoDefaultServerHeader:         true,
		DisableHeaderNamesNormalizing: true, // Received must see names as sent
		ReadTimeout:                   opts.ReadTimeout,
		WriteTimeout:                  opts.WriteTimeout,
		IdleTimeout:                   opts.IdleTimeout,
		ConnState:                     o.conns.track,
		Logger:                        originQuietLogger{},
		// Keep request and response buffers between requests: the hot path
		// then reuses them instead of asking the pools.
		ReduceMemoryUsage: false,
		// fasthttp's worker-pool cleaner sleeps this long between sweeps and
		// only then notices the server stopped; at the 10s default a closed
		// origin leaves a goroutine behind for 10s. A worker re-created after
		// a second of idleness costs a goroutine start, nothing measurable.
		MaxIdleWorkerDuration: originMaxIdleWorker,
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
func (o *Origin) Addr() string { return o.ln.Addr().String() }

// Name returns the value sent in X-Origin.
func (o *Origin) Name() string { return o.opts.Name }

// SetFault switches the fault mode. It applies to every request whose
// handler has not yet looked at it: requests still in their added latency
// included. A mode that is not Valid behaves as FaultNone.
func (o *Origin) SetFault(f Fault) { o.fault.Store(&f) }

// Fault returns the current fault mode.
func (o *Origin) Fault() Fault { return *o.fault.Load() }

// Requests returns how many requests reached the origin on any path except
// the control endpoint (/_origin/...), including those a fault swallowed.
func (o *Origin) Requests() int64 { return o.reqs.Load() }

// Close stops listening, closes every open connection, hung ones included,
// and waits (at most 5s, normally microseconds) for their goroutines to end.
// Requests and Received stay readable afterwards. It is safe to call more
// than once; later calls return the first call's result.
func (o *Origin) Close() error {
	o.closeOnce.Do(func() {
		close(o.done)
		conns := o.conns.closeAll()
		if err := o.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			o.closeErr = fmt.Errorf("origin %s: close listener: %w", o.opts.Name, err)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		timer := time.NewTimer(originCloseWait)
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

// originHeaders are the hot path's header names and values as bytes,
// converted once: setting them with SetCanonical skips the string-to-bytes
// copy and validation that Set does on every request. Names are spelled as
// sent, since the server does not normalise them. Read-only after start.
type originHeaders struct {
	originName, originValue             []byte
	cacheControlName, cacheControlValue []byte
}

// originConns tracks the origin's open connections, through fasthttp's
// ConnState hook, so Close can close them: fasthttp's own Shutdown waits for
// active connections, and a hung request never stops being active.
type originConns struct {
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool          // set by closeAll; later connections are closed at once
	empty  chan struct{} // closed when open becomes empty after closeAll
}

func (t *originConns) init() {
	t.open = make(map[net.Conn]struct{})
	t.empty = make(chan struct{})
}

// track is the fasthttp ConnState hook. It is called on every request
// (active/idle transitions), so it returns at once for those.
func (t *originConns) track(c net.Conn, state fasthttp.ConnState) {
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
func (t *originConns) remove(c net.Conn) {
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
func (t *originConns) closeAll() []net.Conn {
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

// originQuietLogger drops fasthttp's log lines: the origin's faults and Close
// produce connection errors on purpose.
type originQuietLogger struct{}

func (originQuietLogger) Printf(string, ...any) {}
