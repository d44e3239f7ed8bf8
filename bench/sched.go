package bench

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// shard holds the histograms and counters a group of connections record into,
// and the fasthttp client they share. The mutex is taken once per request by
// the connections of the shard and once a second by the ticker.
type shard struct {
	client *fasthttp.HostClient

	mu       sync.Mutex
	latency  *hdrhistogram.Histogram // measured requests: due → response (send → response closed)
	service  *hdrhistogram.Histogram // measured requests: send → response
	lag      *hdrhistogram.Histogram // measured requests: generator lag
	interval *hdrhistogram.Histogram // every request since the last tick
	status   [600]int64              // measured responses by status code; 0 for codes out of range
	errs     ErrorCounts             // measured requests
	sent     int64                   // measured requests sent
	lastSend int64                   // latest send of a measured request, from the start
	lastRecv int64                   // latest response of a measured request, from the start
	tickReqs int64                   // every request since the last tick
	tickErrs int64
}

func newShard(r *runState, shards, i int) *shard {
	conns := r.o.Connections / shards
	if i < r.o.Connections%shards {
		conns++
	}
	return &shard{
		client:   newHostClient(r.o, r.tgt, conns),
		latency:  newHistogram(),
		service:  newHistogram(),
		lag:      newHistogram(),
		interval: newHistogram(),
	}
}

// record stores the outcome of one request. Times are nanoseconds from the
// start of the run. It does not allocate.
func (s *shard) record(measured bool, due, ready, send, recv int64, status int, kind errorKind) {
	failed := kind != errNone || status >= 400
	s.mu.Lock()
	s.tickReqs++
	if failed {
		s.tickErrs++
	}
	if kind == errNone {
		recordNanos(s.interval, recv-due)
	}
	if measured {
		s.sent++
		s.lastSend = max(s.lastSend, send)
		s.lastRecv = max(s.lastRecv, recv)
		switch kind {
		case errNone:
			recordNanos(s.latency, recv-due)
			recordNanos(s.service, recv-send)
			recordNanos(s.lag, send-max(due, ready))
			if status > 0 && status < len(s.status) {
				s.status[status]++
			} else {
				s.status[0]++
			}
			switch {
			case status >= 500:
				s.errs.Status5xx++
			case status >= 400:
				s.errs.Status4xx++
			}
		case errConnect:
			s.errs.Connect++
		case errTimeout:
			s.errs.Timeout++
		default:
			s.errs.Other++
		}
	}
	s.mu.Unlock()
}

// connection is one goroutine driving one TCP connection (the shard's
// HostClient has exactly one connection per goroutine of the shard). It
// owns a pre-built request per scenario entry and reuses every buffer, so the
// per-request step does not allocate.
type connection struct {
	r     *runState
	shard *shard
	index int

	specs []requestSpec
	reqs  []*fasthttp.Request // one per spec, built once
	cum   []int               // cumulative weights of specs
	// resp is reused for every answer: fasthttp reads the body whole (its
	// transfer is part of the service time, and it leaves the connection
	// clean) into a buffer it keeps from one response to the next.
	resp *fasthttp.Response
	rend *renderer
	uri  []byte
	body []byte

	// pause is the next wait after a failed connect (zero after any
	// answer); pauseTimer is made at the first failure, so that a run that
	// connects allocates nothing for it.
	pause      time.Duration
	pauseTimer *time.Timer
}

// A connection whose connect fails waits before it tries again: 1ms at the
// first failure, doubling with each failure in a row up to backoffCap, each
// wait drawn between half and all of that so the connections do not retry in
// step; any answer resets it. A closed port refuses in microseconds: without
// the wait one run dialled it 51,000 times in 2 seconds. With it, the run
// dials about 270 times a second once the waits reach their cap (fewer with
// under 20 connections), after a first second of about 12 attempts per
// connection while they grow, and a target that comes back is found again
// within the cap.
const backoffMin = time.Millisecond

// backoffCap is the longest wait between two connects of one connection in
// a run of conns connections: 5ms per connection, so that the run as a whole
// dials a refusing target about 270 times a second (the mean wait is 3/4 of
// the cap), but at least 100ms and at most 5s.
func backoffCap(conns int) time.Duration {
	return min(max(time.Duration(conns)*5*time.Millisecond, 100*time.Millisecond), 5*time.Second)
}

func newConnection(r *runState, sh *shard, index int, specs []requestSpec, keys [][]byte) *connection {
	c := &connection{
		r: r, shard: sh, index: index, specs: specs,
		resp: &fasthttp.Response{},
		rend: newRenderer(uint64(index)*0x2545f4914f6cdd1d+uint64(time.Now().UnixNano()), &r.seq, keys),
		uri:  make([]byte, 0, 256),
		body: make([]byte, 0, 256),
	}
	total := 0
	for i := range specs {
		s := &specs[i]
		req := &fasthttp.Request{}
		req.Header.SetMethod(s.method)
		for _, h := range s.headers {
			if strings.EqualFold(h[0], "host") {
				req.UseHostHeader = true
			}
			req.Header.Set(h[0], h[1])
		}
		if s.url.static() {
			req.SetRequestURI(s.url.src)
		}
		if s.body != nil && s.body.static() {
			req.SetBodyString(s.body.src)
		}
		c.rend.prepare(s.url)
		if s.body != nil {
			c.rend.prepare(s.body)
		}
		c.reqs = append(c.reqs, req)
		total += s.weight
		c.cum = append(c.cum, total)
	}
	return c
}

// next picks the request to send and renders its templates.
func (c *connection) next() *fasthttp.Request {
	i := 0
	if len(c.cum) > 1 {
		w := c.rend.rng.IntN(c.cum[len(c.cum)-1])
		for c.cum[i] <= w {
			i++
		}
	}
	s, req := &c.specs[i], c.reqs[i]
	if !s.url.static() {
		c.uri = c.rend.render(c.uri[:0], s.url)
		req.SetRequestURIBytes(c.uri)
	}
	if s.body != nil && !s.body.static() {
		c.body = c.rend.render(c.body[:0], s.body)
		req.SetBodyRaw(c.body)
	}
	return req
}

// step is the per-request work of both loops: pick and render a request,
// send it, wait for the answer and record it. It returns the error kind, for
// backOff. It does not allocate when the request is answered.
func (c *connection) step(measured bool, due, ready, send int64) errorKind {
	status, kind, err := c.do(c.next())
	c.shard.record(measured, due, ready, send, c.r.now(), status, kind)
	if kind == errConnect {
		c.r.noteConnectError(err)
	}
	return kind
}

// do sends one request and returns its status (0 on error) and error kind.
func (c *connection) do(req *fasthttp.Request) (int, errorKind, error) {
	err := c.shard.client.Do(req, c.resp)
	if err != nil {
		return 0, classify(err), err
	}
	return c.resp.StatusCode(), errNone, nil
}

// backOff waits after a failed connect, as the comment on backoffMin says,
// and resets the wait after any other outcome. The wait ends early when done
// is closed or the run reaches its end.
func (c *connection) backOff(kind errorKind, done <-chan struct{}) {
	if kind != errConnect {
		c.pause = 0
		return
	}
	c.pause = min(max(2*c.pause, backoffMin), c.r.backoffMax)
	d := c.pause/2 + time.Duration(c.rend.rng.Int64N(int64(c.pause/2)+1))
	d = min(d, time.Duration(c.r.endNs-c.r.now()))
	if d <= 0 {
		return
	}
	if c.pauseTimer == nil {
		c.pauseTimer = time.NewTimer(d)
	} else {
		c.pauseTimer.Reset(d)
	}
	select {
	case <-c.pauseTimer.C:
	case <-done:
		c.pauseTimer.Stop()
	}
}

// openLoop sends on a fixed schedule: this connection's share of the rate,
// offset so that the connections interleave. A request is due at its slot
// whether or not the previous answer came back in time; when the target is
// slow, the connection sends late and the latency, measured from the due
// time, includes that wait. This is wrk2's correction of coordinated
// omission: the generator does not pause its clock while the target stalls.
func (c *connection) openLoop(ctx context.Context) {
	r := c.r
	done := ctx.Done()
	// One timer for the connection's life: Reset does not allocate, and
	// waiting on it with done lets a cancel end the run even when the
	// schedule has seconds between two requests.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ; k++ {
		due := slotDue(r.o.Rate, r.o.Connections, c.index, k)
		if due >= r.endNs {
			return
		}
		ready := r.now()
		if ready < due {
			timer.Reset(time.Duration(due - ready))
			select {
			case <-timer.C:
			case <-done:
				return
			}
		} else {
			select {
			case <-done:
				return
			default:
			}
		}
		send := r.now()
		if send >= r.endNs {
			return
		}
		measured := due >= r.warmNs
		if measured && !r.take() {
			return
		}
		c.backOff(c.step(measured, due, ready, send), done)
	}
}

// slotDue is when the k-th request of connection index is due, in
// nanoseconds from the start of the run. The connections interleave: their
// k-th requests are the run's slots index + k×conns, and slot j is due at
// j/rate seconds, rounded to the nanosecond. Computing each slot from its
// global number (rather than as phase + k×interval, truncated) keeps slots
// that fall exactly on the warm-up's end or the run's end on the right
// side of it, so a window of D seconds holds exactly rate×D slots.
func slotDue(rate float64, conns, index, k int) int64 {
	j := float64(index) + float64(k)*float64(conns)
	return int64(math.Round(j * 1e9 / rate))
}

// closedLoop sends the next request as soon as the previous one is
// answered. Latency is then the service time only: uncorrected.
func (c *connection) closedLoop(ctx context.Context) {
	r := c.r
	done := ctx.Done()
	for {
		select {
		case <-done:
			return
		default:
		}
		send := r.now()
		if send >= r.endNs {
			return
		}
		measured := send >= r.warmNs
		if measured && !r.take() {
			return
		}
		c.backOff(c.step(measured, send, send, send), done)
	}
}

// tick produces one Sample a second until stop is closed, then one last
// Sample for the partial second, and returns them all.
func (r *runState) tick(stop <-chan struct{}) []Sample {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	merged := newHistogram()
	var series []Sample
	last := time.Duration(0)
	sample := func() {
		at := time.Since(r.start)
		merged.Reset()
		var s Sample
		for _, sh := range r.shards {
			sh.mu.Lock()
			merged.Merge(sh.interval)
			sh.interval.Reset()
			s.Requests += sh.tickReqs
			s.Errors += sh.tickErrs
			sh.tickReqs, sh.tickErrs = 0, 0
			sh.mu.Unlock()
		}
		sum := Summarize(merged)
		s.At, s.P50, s.P99, s.Max = at, sum.P50, sum.P99, sum.Max
		s.Warmup = int64(last) < r.warmNs // the second began in the warm-up
		if d := at - last; d > 0 {
			s.Rate = float64(s.Requests) / d.Seconds()
		}
		last = at
		series = append(series, s)
		if r.o.Progress != nil {
			r.o.Progress(s)
		}
	}
	for {
		select {
		case <-t.C:
			sample()
		case <-stop:
			if time.Since(r.start)-last > 100*time.Millisecond {
				sample()
			}
			return series
		}
	}
}

// result merges the shards once every connection has stopped and judges the
// run.
func (r *runState) result(series []Sample, cancelled bool) *Result {
	o := r.o
	res := &Result{
		Mode:        "closed",
		Connections: o.Connections,
		Warmup:      o.Warmup,
		TargetRate:  o.Rate,
		Status:      make(map[int]int64),
		Latency:     newHistogram(),
		Service:     newHistogram(),
		Lag:         newHistogram(),
		Series:      series,
	}
	if o.Rate > 0 {
		res.Mode, res.Corrected = "open", true
	}
	var lastSend, lastRecv int64
	for _, sh := range r.shards {
		sh.mu.Lock()
		res.Latency.Merge(sh.latency)
		res.Service.Merge(sh.service)
		res.Lag.Merge(sh.lag)
		for code, n := range sh.status {
			if n > 0 {
				res.Status[code] += n
			}
		}
		res.Requests += sh.sent
		e := &res.Errors
		e.Connect += sh.errs.Connect
		e.Timeout += sh.errs.Timeout
		e.Other += sh.errs.Other
		e.Status4xx += sh.errs.Status4xx
		e.Status5xx += sh.errs.Status5xx
		lastSend, lastRecv = max(lastSend, sh.lastSend), max(lastRecv, sh.lastRecv)
		sh.mu.Unlock()
		sh.client.CloseIdleConnections()
	}

	// The measured window is the asked duration when the run went the full
	// time; when the request count (or a cancel) ended it first, it runs to
	// the last send plus one schedule slot in the open loop, to the last
	// answer in the closed loop.
	window := time.Duration(r.endNs - r.warmNs)
	exhausted := o.Requests > 0 && r.measured.Load() >= o.Requests
	if o.Duration <= 0 || exhausted || cancelled {
		if o.Rate > 0 {
			window = time.Duration(lastSend - r.warmNs + int64(1e9/o.Rate))
		} else {
			window = time.Duration(lastRecv - r.warmNs)
		}
	}
	if window > 0 {
		res.Elapsed = window
		res.AchievedRate = float64(res.Requests) / window.Seconds()
	}
	res.ConnectError = r.connectErr
	r.judge(res)
	return res
}

// judge fills Valid and Invalid.
func (r *runState) judge(res *Result) {
	o := r.o
	if res.Requests == 0 {
		res.Invalid = append(res.Invalid, "no request was measured")
	}
	if o.Rate > 0 && res.AchievedRate < MinRateRatio*o.Rate {
		res.Invalid = append(res.Invalid, sprintf(
			"achieved rate %.1f/s is below %.0f%% of the target %.1f/s: the generator or its connections could not keep up (add -connections, or lower -rate)",
			res.AchievedRate, MinRateRatio*100, o.Rate))
	}
	if o.Rate > 0 && res.Lag.TotalCount() > 0 {
		if p99 := time.Duration(res.Lag.ValueAtPercentile(99)) * time.Microsecond; p99 > o.MaxLag {
			res.Invalid = append(res.Invalid, sprintf(
				"generator lag p99 %v exceeds %v: the load generator itself was late (CPU starved?)", p99, o.MaxLag))
		}
	}
	if res.Requests > 0 {
		rate := float64(res.Errors.Total()) / float64(res.Requests)
		if limit := math.Max(o.MaxErrorRate, 0); rate > limit {
			res.Invalid = append(res.Invalid, sprintf(
				"error rate %.2f%% exceeds the allowed %.2f%% (%s)", rate*100, limit*100, describeErrors(res)))
		}
	}
	res.Valid = len(res.Invalid) == 0
}

// describeErrors names the kinds of error a run met, and the first failed
// connect: "connect 812: dial tcp 127.0.0.1:8080: connect: connection refused".
func describeErrors(res *Result) string {
	e := res.Errors
	var parts []string
	for _, k := range []struct {
		name string
		n    int64
	}{{"connect", e.Connect}, {"timeout", e.Timeout}, {"other", e.Other}, {"4xx", e.Status4xx}, {"5xx", e.Status5xx}} {
		if k.n > 0 {
			parts = append(parts, sprintf("%s %d", k.name, k.n))
		}
	}
	s := strings.Join(parts, ", ")
	if e.Connect > 0 && res.ConnectError != "" {
		s += ": " + res.ConnectError
	}
	return s
}
