package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Options describe one run. The zero value of every field but URL (or
// Scenario) is usable and means the documented default.
type Options struct {
	// URL is the absolute target, with placeholders allowed in the path and
	// query (see the package documentation). Required unless Scenario is set;
	// with a Scenario, it is the base for the scenario's relative paths.
	URL string
	// Method defaults to GET.
	Method string
	// Headers are "Name: value" lines added to every request.
	Headers []string
	// Body is sent with every request; it may hold placeholders.
	Body string
	// Scenario, when set, replaces URL, Method, Headers and Body by its
	// weighted list of requests.
	Scenario *Scenario

	// Rate is the total request rate per second of an open-loop run. Zero
	// selects the closed loop: every connection sends its next request as
	// soon as the previous answer arrives, which finds the maximum
	// throughput but measures uncorrected latency.
	Rate float64
	// Connections is the number of TCP connections, default 64. In the open
	// loop each connection owns Rate/Connections of the schedule, so it should
	// be at least Rate × expected latency, or the connections, not the
	// target, become the bottleneck and the run is marked invalid.
	Connections int
	// Duration is how long the measured part of a run lasts, after Warmup.
	// Default 10s when Requests is zero too; zero with Requests set means no
	// time bound (the run still stops after Requests).
	Duration time.Duration
	// Requests bounds the number of measured requests; zero means no bound.
	Requests int64
	// Warmup runs before the measured part and is left out of every count
	// and histogram. Zero means none (the command line defaults to 1s).
	Warmup time.Duration
	// Timeout bounds each request from send to the end of the response,
	// default 2s. A request that times out counts as a timeout error.
	Timeout time.Duration

	// MaxErrorRate is the fraction of measured requests that may fail
	// (connect errors, timeouts, other I/O errors, 4xx, 5xx) before the run is
	// invalid, default 0.01. A negative value allows no error at all.
	MaxErrorRate float64
	// MaxLag is the largest 99th percentile of the generator's own scheduling
	// lag before an open-loop run is invalid, default 10ms. The lag counts
	// only the time a connection that was free to send did not (a late timer,
	// a starved CPU), not the time spent waiting for a slow target.
	MaxLag time.Duration

	// Progress, when set, is called once a second with the last second's
	// numbers, from one goroutine, while the run goes on.
	Progress func(Sample)
}

// MinRateRatio is the fraction of the asked rate an open-loop run must reach
// to be valid.
const MinRateRatio = 0.99

func (o Options) withDefaults() Options {
	if o.Method == "" {
		o.Method = fasthttp.MethodGet
	}
	if o.Connections <= 0 {
		o.Connections = 64
	}
	if o.Duration <= 0 && o.Requests <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.MaxErrorRate == 0 {
		o.MaxErrorRate = 0.01
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 10 * time.Millisecond
	}
	return o
}

// Settings are the options of a run as its reports record them, so that a
// report can be read, compared and repeated without the command line that
// made it. Durations and limits hold their defaults where the options left
// them zero.
type Settings struct {
	// URL is the target as given, placeholders unrendered; with a scenario,
	// the base its relative paths were resolved against (may be empty).
	URL string
	// Method, Headers and Body describe the single request of a run without
	// a scenario; header values that carry credentials read "<redacted>".
	Method  string
	Headers []string
	Body    string
	// Scenario lists a scenario's requests, paths resolved to absolute URLs,
	// weights and methods defaulted, credentials redacted.
	Scenario []ScenarioRequest

	Rate         float64 // requests per second; 0 = closed loop
	Connections  int
	Duration     time.Duration // 0 = bounded by Requests only
	Requests     int64         // 0 = no bound
	Warmup       time.Duration
	Timeout      time.Duration
	MaxErrorRate float64 // 0 = no error allowed
	MaxLag       time.Duration
}

// settingsOf records o, whose defaults are applied, and the requests built
// from it.
func settingsOf(o Options, specs []requestSpec) Settings {
	s := Settings{
		URL: o.URL, Rate: o.Rate, Connections: o.Connections, Duration: o.Duration,
		Requests: o.Requests, Warmup: o.Warmup, Timeout: o.Timeout,
		MaxErrorRate: max(o.MaxErrorRate, 0), MaxLag: o.MaxLag,
	}
	if o.Scenario == nil {
		s.Method, s.Body = specs[0].method, o.Body
		for _, h := range specs[0].headers {
			s.Headers = append(s.Headers, h[0]+": "+redact(h[0], h[1]))
		}
		return s
	}
	if s.URL == "" {
		s.URL = o.Scenario.URL
	}
	for _, sp := range specs {
		r := ScenarioRequest{Name: sp.name, Weight: sp.weight, Method: sp.method, Path: sp.url.src}
		if sp.body != nil {
			r.Body = sp.body.src
		}
		for _, h := range sp.headers {
			if r.Headers == nil {
				r.Headers = make(map[string]string, len(sp.headers))
			}
			r.Headers[h[0]] = redact(h[0], h[1])
		}
		s.Scenario = append(s.Scenario, r)
	}
	return s
}

// redact hides the value of a header that carries credentials: reports are
// files that get attached to tickets and shared.
func redact(name, value string) string {
	switch strings.ToLower(name) {
	case "authorization", "proxy-authorization", "cookie", "x-api-key":
		return "<redacted>"
	}
	return value
}

// ErrorCounts counts failed requests by kind.
type ErrorCounts struct {
	Connect   int64 `json:"connect"` // the TCP connection could not be made
	Timeout   int64 `json:"timeout"` // no full response within Options.Timeout
	Other     int64 `json:"other"`   // any other I/O or protocol error
	Status4xx int64 `json:"status_4xx"`
	Status5xx int64 `json:"status_5xx"`
}

// Total is the number of failed requests of every kind.
func (e ErrorCounts) Total() int64 {
	return e.Connect + e.Timeout + e.Other + e.Status4xx + e.Status5xx
}

// Sample is one second of a run, as the live line shows it and the HTML
// report charts it. Latencies are those of Result.Latency.
type Sample struct {
	At       time.Duration // end of the second, from the start of the run
	Warmup   bool          // the second began during the warm-up
	Requests int64         // requests completed in the second
	Errors   int64         // of which failed
	Rate     float64       // completed requests per second
	P50, P99 time.Duration
	Max      time.Duration
}

// Result is what a run measured. Histograms are in microseconds.
type Result struct {
	// Mode is "open" (constant rate) or "closed" (as fast as answers come).
	Mode string
	// Corrected is true when Latency is measured from when each request was
	// due (open loop, coordinated omission corrected). In the closed loop it
	// is false: Latency is the uncorrected service time.
	Corrected bool
	// Valid is false when the numbers should not be trusted; Invalid says why.
	Valid   bool
	Invalid []string

	// Settings is what the run was asked to do: target, request, load
	// model and limits, as every report records them.
	Settings Settings

	Connections  int
	Warmup       time.Duration // left out of everything but Series
	TargetRate   float64       // asked requests per second; 0 in the closed loop
	AchievedRate float64       // measured requests sent per second
	Elapsed      time.Duration // length of the measured window
	Requests     int64         // measured requests sent
	Status       map[int]int64 // responses by status code
	Errors       ErrorCounts
	// ConnectError is the first failed connect of the run, as the dialer
	// said it ("dial tcp 127.0.0.1:8080: connect: connection refused"); empty
	// when every connect succeeded.
	ConnectError string

	// Latency is due → response in the open loop, send → response in the
	// closed loop; Service is always send → response; Lag is the generator's
	// own lateness (see Options.MaxLag), always zero in the closed loop.
	Latency, Service, Lag *hdrhistogram.Histogram

	// Series holds one Sample per second, warm-up included.
	Series []Sample
}

// Run loads the target as o says and returns what it measured. It returns an
// error only when the run could not start (bad options); a run that started
// returns its Result, whose Valid field says whether to trust it. Cancelling
// ctx ends the run early and marks it invalid.
func Run(ctx context.Context, o Options) (*Result, error) {
	o = o.withDefaults()
	specs, keys, err := buildSpecs(o)
	if err != nil {
		return nil, err
	}
	tgt, err := parseTarget(specs[0].url.src)
	if err != nil {
		return nil, err
	}
	for _, s := range specs[1:] {
		t, err := parseTarget(s.url.src)
		if err != nil {
			return nil, err
		}
		if t != tgt {
			return nil, fmt.Errorf("scenario request %q: host %s differs from %s: one run loads one host", s.name, t.host, tgt.host)
		}
	}
	if o.Rate < 0 {
		return nil, fmt.Errorf("rate %v: must not be negative", o.Rate)
	}

	r := newRunState(o, tgt)
	conns := make([]*connection, o.Connections)
	for i := range conns {
		sh := r.shards[i%len(r.shards)]
		conns[i] = newConnection(r, sh, i, specs, keys)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.start = time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.Rate > 0 {
				c.openLoop(runCtx)
			} else {
				c.closedLoop(runCtx)
			}
		}()
	}
	series := make(chan []Sample, 1)
	stopTicker := make(chan struct{})
	go func() { series <- r.tick(stopTicker) }()
	wg.Wait()
	close(stopTicker)
	res := r.result(<-series, ctx.Err() != nil)
	res.Settings = settingsOf(o, specs)
	if ctx.Err() != nil {
		res.Invalid = append(res.Invalid, "interrupted before its end: "+context.Cause(ctx).Error())
		res.Valid = false
	}
	return res, nil
}

// buildSpecs turns the options into the list of requests to send.
func buildSpecs(o Options) ([]requestSpec, [][]byte, error) {
	if o.Scenario != nil {
		return o.Scenario.specs(o.URL)
	}
	if o.URL == "" {
		return nil, nil, errNoURL
	}
	u, err := parseTemplate(o.URL, 0)
	if err != nil {
		return nil, nil, err
	}
	spec := requestSpec{name: "default", weight: 1, method: o.Method, url: u}
	for _, h := range o.Headers {
		kv, err := parseHeader(h)
		if err != nil {
			return nil, nil, err
		}
		spec.headers = append(spec.headers, kv)
	}
	if o.Body != "" {
		if spec.body, err = parseTemplate(o.Body, 0); err != nil {
			return nil, nil, err
		}
	}
	return []requestSpec{spec}, nil, nil
}

// runState is shared by the connections of one run.
type runState struct {
	o      Options
	tgt    target
	start  time.Time
	warmNs int64 // end of the warm-up, from start
	endNs  int64 // end of the run, from start; math.MaxInt64 when unbounded
	seq    atomic.Uint64
	// measured counts measured requests against Options.Requests.
	measured atomic.Int64
	shards   []*shard
	// backoffMax caps a connection's pause after failed connects (see
	// connection.backOff).
	backoffMax time.Duration

	connectErrOnce sync.Once
	connectErr     string // the first failed connect, set through connectErrOnce
}

func newRunState(o Options, tgt target) *runState {
	r := &runState{o: o, tgt: tgt, warmNs: int64(o.Warmup), endNs: 1<<63 - 1, backoffMax: backoffCap(o.Connections)}
	if o.Duration > 0 {
		r.endNs = int64(o.Warmup + o.Duration)
	}
	// One shard per core keeps the lock each record takes nearly
	// uncontended without paying a set of histograms per connection.
	n := min(runtime.GOMAXPROCS(0), o.Connections)
	for i := 0; i < n; i++ {
		r.shards = append(r.shards, newShard(r, n, i))
	}
	return r
}

// now is the time since the start of the run, from the monotonic clock.
func (r *runState) now() int64 { return int64(time.Since(r.start)) }

// take reserves one measured request against Options.Requests; false means
// the run has sent all it should.
func (r *runState) take() bool {
	return r.o.Requests <= 0 || r.measured.Add(1) <= r.o.Requests
}

// newHostClient builds the fasthttp client of one shard: one connection per
// goroutine of the shard, no retries (a failed request is a result), and a
// dialer that marks its errors so they count as connect errors.
func newHostClient(o Options, tgt target, conns int) *fasthttp.HostClient {
	d := &net.Dialer{Timeout: o.Timeout}
	return &fasthttp.HostClient{
		Addr:                      tgt.host,
		IsTLS:                     tgt.tls,
		Name:                      "sluice-bench",
		MaxConns:                  conns,
		MaxIdemponentCallAttempts: 1,
		RetryIf:                   func(*fasthttp.Request) bool { return false },
		ReadTimeout:               o.Timeout,
		WriteTimeout:              o.Timeout,
		MaxIdleConnDuration:       time.Minute,
		Dial: func(addr string) (net.Conn, error) {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return nil, &connectError{err: err}
			}
			return c, nil
		},
	}
}

// noteConnectError keeps the first failed connect of the run for the report.
func (r *runState) noteConnectError(err error) {
	r.connectErrOnce.Do(func() {
		var ce *connectError
		if errors.As(err, &ce) {
			err = ce.err
		}
		r.connectErr = err.Error()
	})
}

type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

type errorKind uint8

const (
	errNone errorKind = iota
	errConnect
	errTimeout
	errOther
)

func classify(err error) errorKind {
	var ce *connectError
	var te interface{ Timeout() bool }
	switch {
	case err == nil:
		return errNone
	case errors.As(err, &ce):
		return errConnect
	case errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &te) && te.Timeout():
		return errTimeout
	}
	return errOther
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
