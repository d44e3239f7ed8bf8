package balancer

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// pipelineOptions are testOptions with pipelining on: depth 8 over conns
// connections, head-of-line protection after slow.
func pipelineOptions(conns int, slow time.Duration) Options {
	o := testOptions()
	o.Upstream.Pipeline = PipelineOptions{Depth: 8, Conns: conns, SlowResponse: slow}.WithDefaults()
	return o
}

// newPipelinedBackend is a backend for addr with o, closed when the test ends.
func newPipelinedBackend(t *testing.T, addr string, o Options) *Backend {
	t.Helper()
	b := NewBackend(addr, 1, o)
	t.Cleanup(b.Close)
	if b.pipe == nil {
		t.Fatal("pipelining is not on")
	}
	return b
}

// do sends method path to b and returns the status and body.
func do(b *Backend, method, path string) (int, string, error) {
	return doBy(b, method, path, time.Now().Add(5*time.Second))
}

// answer is the outcome of a request made in the background (goGet).
type answer struct {
	body string
	err  error
}

// goGet makes a GET of path on b in the background, by deadline (zero:
// do's), and returns where its answer arrives: the tests hold one request
// at the backend while they send others behind it.
func goGet(b *Backend, path string, deadline time.Time) <-chan answer {
	if deadline.IsZero() {
		deadline = time.Now().Add(5 * time.Second)
	}
	c := make(chan answer, 1)
	go func() {
		_, body, err := doBy(b, "GET", path, deadline)
		c <- answer{body, err}
	}()
	return c
}

// doBy is do with a deadline.
func doBy(b *Backend, method, path string, deadline time.Time) (int, string, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.SetHost("backend")
	if err := b.Do(req, resp, deadline); err != nil {
		return 0, "", err
	}
	return resp.StatusCode(), string(resp.Body()), nil
}

// getAll sends GET /<name>-<i> for i < n from n goroutines at once and
// returns the error of each (nil when it got its own path back as the
// body); a body that is another request's fails the test at once.
func getAll(t *testing.T, b *Backend, name string, n int) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			path := fmt.Sprintf("/%s-%d", name, i)
			_, body, err := do(b, "GET", path)
			if err == nil && body != path {
				t.Errorf("GET %s got body %q: another request's response", path, body)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errs
}

// conn0 returns the backend's first pipelined connection, nil when none.
func conn0(b *Backend) *pipeConn { return b.pipe.slots[0].conn.Load() }

// gate holds a raw backend's answer until the test opens it. Register
// t.Cleanup(g.open) after starting the backend, so that it runs before the
// backend's cleanup waits for serve.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) wait() { <-g.ch }

// startHoldingBackend starts a raw backend that answers each request with its
// path as the body, and holds its answer to GET /slow until the gate opens
// (at the latest when the test ends).
func startHoldingBackend(t *testing.T) (*testnet.RawBackend, *gate) {
	t.Helper()
	release := newGate()
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		if r.Path == "/slow" {
			release.wait()
		}
		_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
	})
	t.Cleanup(release.open)
	return rb, release
}

// getEach sends GET path for each path in turn, failing the test unless
// each gets its own path back.
func getEach(t *testing.T, b *Backend, paths ...string) {
	t.Helper()
	for _, path := range paths {
		if got := get(t, b, path); got != path {
			t.Fatalf("GET %s got body %q: another request's response", path, got)
		}
	}
}

// sightings counts the times a raw backend read each path.
type sightings struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *sightings) see(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[path]++
}

// replayedAtMostOnce fails the test for a path the backend read more than
// twice.
func (s *sightings) replayedAtMostOnce(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for path, n := range s.seen {
		if n > 2 {
			t.Errorf("backend saw %s %d times, want at most 2 (replayed at most once)", path, n)
		}
	}
}

func TestPipelineDeliversEachResponseToItsOwnRequest(t *testing.T) {
	var heads atomic.Int64
	addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		if ctx.IsHead() {
			heads.Add(1)
		}
		// HEAD answers announce a body they do not carry: reading one
		// would eat the next pipelined response.
		ctx.SetBody(ctx.RequestURI())
	})
	b := newPipelinedBackend(t, addr, pipelineOptions(2, time.Second))

	const clients, each = 32, 40
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				path := fmt.Sprintf("/c%d/r%d", c, i)
				method := "GET"
				if i%5 == 4 {
					method = "HEAD"
				}
				status, body, err := do(b, method, path)
				switch {
				case err != nil:
					t.Errorf("%s %s: %v", method, path, err)
				case status != 200:
					t.Errorf("%s %s: status %d", method, path, status)
				case method == "HEAD" && body != "":
					t.Errorf("HEAD %s got body %q", path, body)
				case method == "GET" && body != path:
					t.Errorf("GET %s got body %q: another request's response", path, body)
				}
			}
		})
	}
	wg.Wait()
	s := b.Stats()
	if !s.Pipelining || b.PipelineOff() != nil {
		t.Errorf("pipelining turned off against a well-behaved backend: %v", b.PipelineOff())
	}
	if s.Pipelined == 0 || s.PipelineReplays != 0 {
		t.Errorf("Pipelined, PipelineReplays = %d, %d; want some, 0", s.Pipelined, s.PipelineReplays)
	}
	if heads.Load() != clients*each/5 {
		t.Errorf("backend saw %d HEAD requests, want %d", heads.Load(), clients*each/5)
	}
}

func TestPipelineCarriesOnlyBodilessIdempotentRequests(t *testing.T) {
	tests := []struct {
		name   string
		modify func(req *fasthttp.Request)
		want   bool
	}{
		{"a GET is pipelined", func(*fasthttp.Request) {}, true},
		{"a HEAD is not: a body its backend sends anyway would shift the pipeline", func(r *fasthttp.Request) { r.Header.SetMethod("HEAD") }, false},
		{"an OPTIONS is pipelined", func(r *fasthttp.Request) { r.Header.SetMethod("OPTIONS") }, true},
		{"a POST is not", func(r *fasthttp.Request) { r.Header.SetMethod("POST") }, false},
		{"a PUT is not", func(r *fasthttp.Request) { r.Header.SetMethod("PUT") }, false},
		{"a DELETE is not", func(r *fasthttp.Request) { r.Header.SetMethod("DELETE") }, false},
		{"a GET with a body is not", func(r *fasthttp.Request) { r.SetBodyString("x") }, false},
		{"a GET with a streamed body is not", func(r *fasthttp.Request) {
			r.SetBodyStream(strings.NewReader("x"), -1)
		}, false},
		{"a GET announcing a length is not", func(r *fasthttp.Request) { r.Header.SetContentLength(3) }, false},
		{"an upgrade is not", func(r *fasthttp.Request) {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}, false},
		{"a GET asking to close the connection is not", func(r *fasthttp.Request) { r.SetConnectionClose() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := fasthttp.AcquireRequest()
			defer fasthttp.ReleaseRequest(req)
			req.SetRequestURI("/x")
			tt.modify(req)
			if got := pipelinable(req); got != tt.want {
				t.Errorf("pipelinable = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("a POST reaches the backend on an ordinary connection", func(t *testing.T) {
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.PostBody()) })
		b := newPipelinedBackend(t, addr, pipelineOptions(1, time.Second))
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.Header.SetMethod("POST")
		req.SetRequestURI("/orders")
		req.Header.SetHost("backend")
		req.SetBodyString("order")
		if err := b.Do(req, resp, time.Now().Add(5*time.Second)); err != nil || string(resp.Body()) != "order" {
			t.Fatalf("POST: body %q, err %v", resp.Body(), err)
		}
		if s := b.Stats(); s.Pipelined != 0 || conn0(b) != nil {
			t.Errorf("a POST was pipelined (Pipelined %d)", s.Pipelined)
		}
	})
}

func TestPipelineHeadOfLine(t *testing.T) {
	rb, release := startHoldingBackend(t)
	b := newPipelinedBackend(t, rb.Addr, pipelineOptions(2, 20*time.Millisecond))
	get(t, b, "/warm") // opens the first pipelined connection

	slow := goGet(b, "/slow", time.Time{})
	testnet.Eventually(t, "the backend to hold /slow", func() bool { return rb.Requests() == 2 })
	// Longer than slow_response: a lower bound, never a flaky upper one.
	time.Sleep(60 * time.Millisecond)

	// Queued behind /slow these would wait for it (and time out: it is only
	// released after them); they must go to another connection instead.
	for i := range 20 {
		getEach(t, b, fmt.Sprintf("/fast-%d", i))
	}
	select {
	case a := <-slow:
		t.Fatalf("/slow answered %q (error %v) before it was released", a.body, a.err)
	default:
	}
	release.open()
	if a := <-slow; a.err != nil || a.body != "/slow" {
		t.Errorf("/slow got %q, error %v", a.body, a.err)
	}
	if b.PipelineOff() != nil {
		t.Errorf("a slow response turned pipelining off: %v", b.PipelineOff())
	}
}

func TestPipelineConnectionClosedMidPipeline(t *testing.T) {
	var seen sightings
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		seen.see(r.Path)
		if r.Conn == 0 && r.Index == 3 {
			_ = w.Close() // mid-pipeline, without Connection: close
			return
		}
		_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
	})
	b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, time.Second))
	get(t, b, "/warm")

	for i, err := range getAll(t, b, "mid", 16) {
		if err != nil {
			t.Errorf("request %d failed: %v (it received no response byte: it must be replayed)", i, err)
		}
	}
	seen.replayedAtMostOnce(t)
	s := b.Stats()
	if s.PipelineReplays == 0 {
		t.Error("no request was replayed")
	}
	if err := b.PipelineOff(); !errors.Is(err, errPipeClosed) {
		t.Errorf("PipelineOff() = %v, want %v", err, errPipeClosed)
	}
	if got := get(t, b, "/after"); got != "/after" {
		t.Errorf("after pipelining was turned off: body %q", got)
	}
}

func TestPipelineWrongContentLength(t *testing.T) {
	for _, tt := range []struct {
		name string
		resp string // the answer to /bad; its body is "/bad"
		// closeAfterNext closes the connection after the answer to /next,
		// ending a body that runs to the connection's end.
		closeAfterNext bool
	}{
		{"too short leaves body bytes where the next response should start",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n/bad", false},
		{"too long swallows the start of the next response",
			"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n/bad", false},
		{"none, the body running to the connection's end, swallows the next response",
			"HTTP/1.1 200 OK\r\n\r\n/bad", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := newGate()
			rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
				if r.Path == "/bad" {
					release.wait()
					_, _ = w.Write([]byte(tt.resp))
					return
				}
				_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
				if r.Path == "/next" && tt.closeAfterNext {
					_ = w.Close()
				}
			})
			t.Cleanup(release.open)
			b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, 5*time.Second))
			get(t, b, "/warm")

			results := make(chan string, 2)
			send := func(path string) {
				_, body, err := do(b, "GET", path)
				if err != nil {
					body = "error"
				}
				results <- path + " " + body
			}
			go send("/bad")
			testnet.Eventually(t, "the backend to hold /bad", func() bool { return rb.Requests() == 2 })
			go send("/next")
			// /next is written on the same connection, behind /bad.
			testnet.Eventually(t, "/next to be written", func() bool {
				c := conn0(b)
				return c != nil && c.written.Load() == 3
			})
			release.open()
			got := map[string]bool{<-results: true, <-results: true}
			for r := range got {
				path, body, _ := strings.Cut(r, " ")
				if body != "error" && body != path {
					t.Errorf("GET %s got body %q: bytes of another response", path, body)
				}
			}
			if !got["/bad error"] {
				t.Errorf("/bad did not fail: %v", got)
			}
			if err := b.PipelineOff(); !errors.Is(err, errPipeFraming) {
				t.Errorf("PipelineOff() = %v, want %v", err, errPipeFraming)
			}
			if got := get(t, b, "/after"); got != "/after" {
				t.Errorf("after pipelining was turned off: body %q", got)
			}
		})
	}
}

// A Content-Length too long by exactly the next response swallows it
// whole: the request before gets both as its body, which nothing can tell
// from a body, and the next request waits for an answer that has come
// and gone. Its timeout, after an answer that ended while it was already
// written, turns pipelining off, so that it happens once: it went on
// before, request after request.
func TestPipelineAResponseSwallowedWholeTurnsPipeliningOff(t *testing.T) {
	next := testnet.OKResponse("/next")
	release := newGate()
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		if r.Path == "/bad" {
			release.wait()
			_, _ = fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n/bad", len("/bad")+len(next))
			return
		}
		_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
	})
	t.Cleanup(release.open)
	b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, 5*time.Second))
	get(t, b, "/warm")

	bad := goGet(b, "/bad", time.Time{})
	testnet.Eventually(t, "the backend to hold /bad", func() bool { return rb.Requests() == 2 })
	nextAnswer := goGet(b, "/next", time.Now().Add(time.Second))
	testnet.Eventually(t, "/next to be written", func() bool {
		c := conn0(b)
		return c != nil && c.written.Load() == 3
	})
	release.open()
	if a := <-bad; a.err != nil {
		t.Fatalf("/bad: %v (its body holds /next's response, which nothing can tell)", a.err)
	}
	if a := <-nextAnswer; !errors.Is(a.err, ErrTimeout) {
		t.Fatalf("/next: %v, want a timeout", a.err)
	}
	testnet.Eventually(t, "pipelining to be turned off", func() bool { return errors.Is(b.PipelineOff(), errPipeStalled) })
	getEach(t, b, "/after", "/after-2")
}

// A pipelined response whose head comes in two pieces, the first with the
// response before it: the status line checkHead looked at moved in the
// buffer while it read the rest, and the head was taken for another HTTP
// version, which turned pipelining off.
func TestPipelineAHeadInPiecesBehindAResponseIsRead(t *testing.T) {
	bHead := "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Long: " + strings.Repeat("x", 100) + "\r\nContent-Length: 2\r\n\r\n/b"
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		switch r.Path {
		case "/a": // answered with /b's
		case "/b":
			_, _ = w.Write([]byte(testnet.OKResponse("/a") + bHead[:30]))
			time.Sleep(30 * time.Millisecond)
			_, _ = w.Write([]byte(bHead[30:]))
		default:
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
		}
	})
	b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, 5*time.Second))
	get(t, b, "/warm")
	a := goGet(b, "/a", time.Time{})
	testnet.Eventually(t, "/a to be written", func() bool { return rb.Requests() == 2 })
	if _, body, err := do(b, "GET", "/b"); err != nil || body != "/b" {
		t.Errorf("/b: body %q, error %v", body, err)
	}
	if got := <-a; got.err != nil || got.body != "/a" {
		t.Errorf("/a: body %q, error %v", got.body, got.err)
	}
	if err := b.PipelineOff(); err != nil {
		t.Errorf("PipelineOff() = %v, want nil", err)
	}
}

// The reader's read deadline is coarse: behind a request whose deadline is
// a little earlier it keeps that one, and fires before the next request's
// own. The response that comes between the two is read on the same
// connection; the early timeout used to end it (the request replayed), and
// must not count as an answer that did not come.
func TestPipelineAnEarlyCoarseDeadlineWaitsForTheRequestsOwn(t *testing.T) {
	var aDeadline time.Time
	ready := make(chan struct{})
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		switch r.Path {
		case "/a":
			time.Sleep(200 * time.Millisecond)
		case "/b":
			<-ready
			time.Sleep(time.Until(aDeadline.Add(30 * time.Millisecond))) // after /a's deadline, before /b's
		}
		_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
	})
	b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, 5*time.Second))
	get(t, b, "/warm")
	const timeout = 1600 * time.Millisecond // a slack of 100 ms
	aDeadline = time.Now().Add(timeout)
	close(ready)
	a := goGet(b, "/a", aDeadline)
	time.Sleep(60 * time.Millisecond)
	if _, body, err := doBy(b, "GET", "/b", time.Now().Add(timeout)); err != nil || body != "/b" {
		t.Errorf("/b: body %q, error %v", body, err)
	}
	if got := <-a; got.err != nil {
		t.Errorf("/a: %v", got.err)
	}
	if n := rb.Conns(); n != 1 {
		t.Errorf("%d backend connections, want 1: /b was replayed on another", n)
	}
	if err := b.PipelineOff(); err != nil {
		t.Errorf("PipelineOff() = %v, want nil", err)
	}
}

// A slow answer alone, with no answer before it while it waited, is no
// sign of a swallowed response: pipelining stays on.
func TestPipelineASlowFirstAnswerLeavesPipeliningOn(t *testing.T) {
	rb, release := startHoldingBackend(t)
	b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, 5*time.Second))
	get(t, b, "/warm")
	if _, _, err := doBy(b, "GET", "/slow", time.Now().Add(300*time.Millisecond)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("/slow: %v, want a timeout", err)
	}
	release.open()
	getEach(t, b, "/after")
	if err := b.PipelineOff(); err != nil {
		t.Fatalf("PipelineOff() = %v, want nil", err)
	}
}

func TestPipelineBackendWithoutPipelining(t *testing.T) {
	// One request per connection: answered (the first after a word from
	// the test), then the connection is closed, whatever else was sent on
	// it.
	release := newGate()
	var seen sightings
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		seen.see(r.Path)
		if r.Path == "/first" {
			release.wait()
		}
		if r.Index == 0 {
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
		}
		_ = w.Close()
	})
	t.Cleanup(release.open)
	b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, 5*time.Second))
	first := goGet(b, "/first", time.Time{})
	testnet.Eventually(t, "the backend to hold /first", func() bool { return rb.Requests() == 1 })
	done := make(chan []error, 1)
	go func() { done <- getAll(t, b, "behind", 6) }()
	testnet.Eventually(t, "requests to be pipelined behind /first", func() bool {
		c := conn0(b)
		return c != nil && c.written.Load() >= 2
	})
	release.open()
	if a := <-first; a.err != nil {
		t.Errorf("/first failed: %v", a.err)
	}
	for i, err := range <-done {
		if err != nil {
			t.Errorf("request %d failed: %v (it received no response byte: it must be replayed)", i, err)
		}
	}
	if err := b.PipelineOff(); !errors.Is(err, errPipeClosed) {
		t.Errorf("PipelineOff() = %v, want %v", err, errPipeClosed)
	}
	if s := b.Stats(); s.PipelineReplays == 0 {
		t.Error("no request was replayed")
	}
	seen.replayedAtMostOnce(t)
}

func TestPipelineKeepsDoContract(t *testing.T) {
	t.Run("a backend that does not answer in time is ErrTimeout", func(t *testing.T) {
		release := newGate()
		rb := testnet.StartRawBackend(t, func(net.Conn, testnet.RawRequest) { release.wait() })
		t.Cleanup(release.open)
		b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, time.Second))
		_, _, err := doBy(b, "GET", "/slow", time.Now().Add(100*time.Millisecond))
		if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnect) {
			t.Fatalf("err = %v, want ErrTimeout only", err)
		}
		if b.PipelineOff() != nil {
			t.Errorf("a timeout turned pipelining off: %v", b.PipelineOff())
		}
	})

	t.Run("a refused connect is ErrConnect", func(t *testing.T) {
		b := newPipelinedBackend(t, testnet.FreeAddr(t), pipelineOptions(1, time.Second))
		_, err := tryGet(b, "/")
		if !errors.Is(err, ErrConnect) {
			t.Fatalf("err = %v, want ErrConnect", err)
		}
	})

	t.Run("a body over the limit is a bad response", func(t *testing.T) {
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(make([]byte, 2048)) })
		o := pipelineOptions(1, time.Second)
		o.MaxResponseBody = 1024
		b := newPipelinedBackend(t, addr, o)
		_, err := tryGet(b, "/")
		if !errors.Is(err, fasthttp.ErrBodyTooLarge) || errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrBodyTooLarge", err)
		}
		if b.Stats().Pipelined != 0 && b.PipelineOff() != nil {
			t.Errorf("a large body turned pipelining off: %v", b.PipelineOff())
		}
	})

	t.Run("bytes after the last awaited response are stray: counted, pipelining off", func(t *testing.T) {
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			resp := testnet.OKResponse(r.Path)
			if r.Path == "/two" {
				resp += "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG"
			}
			_, _ = w.Write([]byte(resp))
		})
		b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, time.Second))
		getEach(t, b, "/one", "/two", "/three")
		if s := b.Stats(); s.StrayBytes != 1 {
			t.Errorf("StrayBytes = %d, want 1", s.StrayBytes)
		}
		if err := b.PipelineOff(); !errors.Is(err, errPipeStray) {
			t.Errorf("PipelineOff() = %v, want %v", err, errPipeStray)
		}
	})

	t.Run("an idle pipelined connection the backend closed is replaced", func(t *testing.T) {
		closed := make(chan struct{}, 1)
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
			if r.Conn == 0 {
				_ = w.Close()
				closed <- struct{}{}
			}
		})
		b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, time.Second))
		get(t, b, "/one")
		<-closed
		time.Sleep(20 * time.Millisecond) // let the FIN arrive
		if got := get(t, b, "/two"); got != "/two" {
			t.Fatalf("second body = %q", got)
		}
		if err := b.PipelineOff(); err != nil {
			t.Errorf("an idle close turned pipelining off: %v", err)
		}
	})

	t.Run("the hook hears of the turn-off once", func(t *testing.T) {
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path) + "garbage"))
		})
		b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, time.Second))
		var calls atomic.Int32
		b.OnPipelineOff(func(addr string, reason error) {
			if addr != rb.Addr || !errors.Is(reason, errPipeStray) {
				t.Errorf("hook got %s, %v", addr, reason)
			}
			calls.Add(1)
		})
		for range 3 {
			get(t, b, "/x")
		}
		testnet.Eventually(t, "the hook to be called", func() bool { return calls.Load() > 0 })
		if n := calls.Load(); n != 1 {
			t.Errorf("hook called %d times, want 1", n)
		}
	})
}

func TestPipelineLifecycle(t *testing.T) {
	t.Run("a response whose caller left is read and dropped, never delivered", func(t *testing.T) {
		rb, release := startHoldingBackend(t)
		b := newPipelinedBackend(t, rb.Addr, pipelineOptions(1, 5*time.Second))
		get(t, b, "/warm")
		slow := goGet(b, "/slow", time.Time{})
		testnet.Eventually(t, "the backend to hold /slow", func() bool { return rb.Requests() == 2 })
		// Queued behind /slow on the same connection, with a short deadline.
		if _, body, err := doBy(b, "GET", "/gone", time.Now().Add(50*time.Millisecond)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("/gone: body %q, err %v; want ErrTimeout", body, err)
		}
		release.open()
		if a := <-slow; a.err != nil || a.body != "/slow" {
			t.Fatalf("/slow got %q, error %v", a.body, a.err)
		}
		getEach(t, b, "/next", "/last") // the abandoned response is not theirs
		if n := rb.Conns(); n != 1 {
			t.Errorf("backend saw %d connections, want 1 (the connection stays in step)", n)
		}
	})

	t.Run("an idle connection closes after max_idle_conn_duration", func(t *testing.T) {
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.RequestURI()) })
		o := pipelineOptions(1, time.Second)
		o.MaxIdleConnDuration = 50 * time.Millisecond
		b := newPipelinedBackend(t, addr, o)
		get(t, b, "/one")
		testnet.Eventually(t, "the idle connection to close", func() bool { return b.Stats().OpenConns == 0 })
		if got := get(t, b, "/two"); got != "/two" {
			t.Fatalf("after the idle close: body %q", got)
		}
	})

	t.Run("Close ends the pipelined connections", func(t *testing.T) {
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.RequestURI()) })
		b := NewBackend(addr, 1, pipelineOptions(2, time.Second))
		for i, err := range getAll(t, b, "close", 16) {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		b.Close()
		testnet.Eventually(t, "the pipelined connections to close", func() bool { return b.pipe.openConns() == 0 })
		if got := get(t, b, "/after"); got != "/after" {
			t.Fatalf("after Close: body %q", got)
		}
	})
}
