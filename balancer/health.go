package balancer

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Target is what the health checker sees of a backend: where to probe and
// where to record the verdict. *Backend implements it.
type Target interface {
	Addr() string
	SetHealthy(healthy bool) (changed bool)
}

// probeMaxBody bounds the body a health endpoint may answer with; a larger
// one fails the probe.
const probeMaxBody = 64 << 10

// Checker probes each target in the background and marks it unhealthy after
// Fall failures in a row, healthy again after Rise passes in a row.
type Checker struct {
	opts     HealthCheckOptions
	targets  []Target
	onChange func(addr string, healthy bool, reason string)
	// jitter returns the delay of a target's first probe, in [0, max), so
	// that the probes of many backends (and of many gateway instances) do
	// not fire together. Tests replace it.
	jitter func(upTo time.Duration) time.Duration

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
}

// NewChecker returns a checker for targets; o is defaulted here. onChange,
// which may be nil, is called on every transition with the result of the
// probe that decided it ("status 503", "connect: connection refused",
// "status 200"), from the target's own goroutine: it must be safe for
// concurrent use and return quickly.
func NewChecker(o HealthCheckOptions, targets []Target, onChange func(addr string, healthy bool, reason string)) *Checker {
	if onChange == nil {
		onChange = func(string, bool, string) {}
	}
	return &Checker{
		opts:     o.WithDefaults(),
		targets:  targets,
		onChange: onChange,
		jitter:   randomJitter,
		stop:     make(chan struct{}),
	}
}

// Start starts one goroutine per target. It does nothing when the path is
// empty (checks disabled) or when called again.
func (c *Checker) Start() {
	if c.opts.Path == "" {
		return
	}
	c.startOnce.Do(func() {
		for _, t := range c.targets {
			c.wg.Add(1)
			go c.run(t)
		}
	})
}

// Stop stops the probes and waits for them to end, at most about one probe
// timeout. It is safe to call twice, and without Start.
func (c *Checker) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	c.wg.Wait()
}

// run probes t every Interval until Stop.
func (c *Checker) run(t Target) {
	defer c.wg.Done()

	// Probes use a client of their own, so they are never queued behind
	// traffic waiting for a connection, and they close their connection
	// after each probe: one connect per interval is cheap, it checks that
	// the backend still accepts connections, and it leaves no pooled
	// connection (or cleaner goroutine) behind after Stop.
	tr := &transport{}
	var connectTimeout atomic.Int64
	connectTimeout.Store(int64(c.opts.Timeout))
	hc := newHostClient(t.Addr(), clientSettings{maxIdle: c.opts.Interval, maxBody: probeMaxBody}, 1, &connectTimeout, tr)
	defer hc.CloseIdleConnections() // none are expected; belt and braces
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI(c.opts.Path)
	req.Header.SetHost(t.Addr())
	req.Header.SetUserAgent("sluice-health-check")
	req.SetConnectionClose()

	state := newHysteresis(c.opts.Rise, c.opts.Fall, initialHealth(t))
	timer := time.NewTimer(c.jitter(c.opts.Interval))
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		err := hc.DoTimeout(req, resp, c.opts.Timeout)
		pass := err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 400
		// The checker's verdict is the truth, and it is asserted after every
		// probe, not only when it changes: during a reload the checker of the
		// table being retired may flip the target after this one read its
		// health, and a verdict written only on change would then disagree
		// with the target for as long as the probes keep agreeing with it.
		// onChange reports only what actually flipped the target.
		healthy, _ := state.observe(pass)
		if t.SetHealthy(healthy) {
			c.onChange(t.Addr(), healthy, probeResult(resp.StatusCode(), err))
		}
		timer.Reset(c.opts.Interval)
	}
}

// initialHealth starts the checker from the target's last check verdict when
// it can tell it (a *Backend reused across a reload may be down), else
// healthy, which is how a new Backend starts.
func initialHealth(t Target) bool {
	if h, ok := t.(interface{ PassesChecks() bool }); ok {
		return h.PassesChecks()
	}
	return true
}

// probeResult says what a probe saw, for the log line of a transition.
func probeResult(status int, err error) string {
	if err != nil {
		return err.Error()
	}
	return "status " + strconv.Itoa(status)
}

// hysteresis turns a series of probe results into a health verdict that
// changes only after rise passes, or fall failures, in a row.
type hysteresis struct {
	rise, fall int
	healthy    bool
	streak     int // results in a row that contradict healthy
}

func newHysteresis(rise, fall int, healthy bool) hysteresis {
	return hysteresis{rise: max(rise, 1), fall: max(fall, 1), healthy: healthy}
}

// observe records one probe result and returns the verdict and whether this
// result changed it.
func (h *hysteresis) observe(pass bool) (healthy, changed bool) {
	if pass == h.healthy {
		h.streak = 0
		return h.healthy, false
	}
	h.streak++
	need := h.fall
	if !h.healthy {
		need = h.rise
	}
	if h.streak < need {
		return h.healthy, false
	}
	h.healthy, h.streak = pass, 0
	return h.healthy, true
}

func randomJitter(upTo time.Duration) time.Duration {
	if upTo <= 0 {
		return 0
	}
	return rand.N(upTo)
}
