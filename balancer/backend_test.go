package balancer

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestBackendDeliversEachResponseToItsOwnRequest(t *testing.T) {
	const stray = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG"

	t.Run("bytes after a response in the same write close the connection", func(t *testing.T) {
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			resp := testnet.OKResponse(r.Path)
			if r.Conn == 0 && r.Index == 0 {
				resp += stray
			}
			_, _ = w.Write([]byte(resp))
		})
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)

		if got := get(t, b, "/one"); got != "/one" {
			t.Fatalf("first body = %q, want /one", got)
		}
		for _, path := range []string{"/two", "/three"} {
			if got := get(t, b, path); got != path {
				t.Fatalf("body = %q, want %q: a response went to the wrong request", got, path)
			}
		}
		if n := rb.Conns(); n != 2 {
			t.Errorf("backend saw %d connections, want 2 (the dirty one closed, the next reused)", n)
		}
		if s := b.Stats(); s.StrayBytes != 1 {
			t.Errorf("StrayBytes = %d, want 1", s.StrayBytes)
		}
	})

	t.Run("bytes sent later on an idle connection are never read as a response", func(t *testing.T) {
		written := make(chan struct{})
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
			if r.Conn == 0 && r.Index == 0 {
				time.Sleep(20 * time.Millisecond)
				_, _ = w.Write([]byte(stray))
				close(written)
			}
		})
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)

		if got := get(t, b, "/one"); got != "/one" {
			t.Fatalf("first body = %q, want /one", got)
		}
		<-written
		time.Sleep(20 * time.Millisecond) // let loopback deliver the stray bytes
		if got := get(t, b, "/two"); got != "/two" {
			t.Fatalf("second body = %q, want /two: the stray response was delivered", got)
		}
		if n := rb.Conns(); n != 2 {
			t.Errorf("backend saw %d connections, want 2", n)
		}
		if s := b.Stats(); s.StrayBytes != 1 || s.OtherErrors != 0 {
			t.Errorf("StrayBytes, OtherErrors = %d, %d; want 1, 0", s.StrayBytes, s.OtherErrors)
		}
	})

	t.Run("bytes written right after a response are caught before the next request", func(t *testing.T) {
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
			if r.Conn == 0 && r.Index == 0 {
				_, _ = w.Write([]byte(stray)) // a second write: its own segment
			}
		})
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)

		for _, path := range []string{"/one", "/two", "/three"} {
			// A client's round trip through the gateway: time enough for
			// the second write to arrive, not for anyone to wait for it.
			time.Sleep(time.Millisecond)
			if got := get(t, b, path); got != path {
				t.Fatalf("body = %q, want %q: a response went to the wrong request", got, path)
			}
		}
		if s := b.Stats(); s.StrayBytes != 1 {
			t.Errorf("StrayBytes = %d, want 1", s.StrayBytes)
		}
	})

	t.Run("a pooled connection the backend closed is replaced, not failed", func(t *testing.T) {
		closed := make(chan struct{})
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
			if r.Conn == 0 {
				_ = w.Close() // keep-alive expiry, without saying so
				close(closed)
			}
		})
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)

		get(t, b, "/one")
		<-closed
		time.Sleep(20 * time.Millisecond) // let the FIN arrive
		if got := get(t, b, "/two"); got != "/two" {
			t.Fatalf("second body = %q, want /two", got)
		}
		if s := b.Stats(); s.StrayBytes != 0 || s.OtherErrors != 0 {
			t.Errorf("StrayBytes, OtherErrors = %d, %d; want 0, 0", s.StrayBytes, s.OtherErrors)
		}
	})
}

func TestAConnectionClosedJustAfterItsResponseIsReplacedForAGet(t *testing.T) {
	// A connection reused at once, before the backend's FIN can be seen by
	// the peek: the GET fails on its first read and goes out again on a new
	// connection (errStaleConn) instead of failing.
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
		if r.Conn == 0 {
			_ = w.Close() // at once, without saying so
		}
	})
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)

	for _, path := range []string{"/one", "/two", "/three"} {
		if got := get(t, b, path); got != path {
			t.Fatalf("body = %q, want %q", got, path)
		}
	}
	if n := rb.Conns(); n != 2 {
		t.Errorf("backend saw %d connections, want 2 (the closed one replaced once)", n)
	}
	if s := b.Stats(); s.OtherErrors != 0 {
		t.Errorf("OtherErrors = %d, want 0", s.OtherErrors)
	}
}

func TestBackendDoErrors(t *testing.T) {
	t.Run("a refused connect is ErrConnect", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		b := NewBackend(addr, 1, testOptions())
		t.Cleanup(b.Close)
		_, err = tryGet(b, "/")
		if !errors.Is(err, ErrConnect) || errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrConnect only", err)
		}
		if s := b.Stats(); s.ConnectErrors != 1 || s.Requests != 1 || s.InFlight != 0 {
			t.Errorf("stats = %+v, want 1 request, 1 connect error, none in flight", s)
		}
	})

	t.Run("a backend that does not answer in time is ErrTimeout", func(t *testing.T) {
		release := make(chan struct{})
		rb := testnet.StartRawBackend(t, func(w net.Conn, _ testnet.RawRequest) { <-release })
		t.Cleanup(func() { close(release) }) // before the backend's cleanup waits for it
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.SetRequestURI("/slow")
		req.Header.SetHost("backend")
		err := b.Do(req, resp, time.Now().Add(100*time.Millisecond))
		if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnect) {
			t.Fatalf("err = %v, want ErrTimeout only", err)
		}
		if s := b.Stats(); s.TimeoutErrors != 1 {
			t.Errorf("TimeoutErrors = %d, want 1", s.TimeoutErrors)
		}
	})

	t.Run("a deadline already past is ErrTimeout without sending", func(t *testing.T) {
		rb := testnet.StartRawBackend(t, func(w net.Conn, _ testnet.RawRequest) {})
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.SetRequestURI("/")
		if err := b.Do(req, resp, time.Now().Add(-time.Second)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})

	t.Run("a connection closed before the response is a bad response, sent once", func(t *testing.T) {
		var seen atomic.Int32
		rb := testnet.StartRawBackend(t, func(w net.Conn, _ testnet.RawRequest) {
			seen.Add(1)
			_ = w.Close()
		})
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)
		_, err := tryGet(b, "/")
		if err == nil || errors.Is(err, ErrConnect) || errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want a bad-response error", err)
		}
		if n := seen.Load(); n != 1 {
			t.Errorf("backend saw the request %d times, want 1 (no hidden retry)", n)
		}
		if s := b.Stats(); s.OtherErrors != 1 {
			t.Errorf("OtherErrors = %d, want 1", s.OtherErrors)
		}
	})

	t.Run("a body over the limit is a bad response", func(t *testing.T) {
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(make([]byte, 2048)) })
		o := testOptions()
		o.MaxResponseBody = 1024
		b := NewBackend(addr, 1, o)
		t.Cleanup(b.Close)
		_, err := tryGet(b, "/")
		if !errors.Is(err, fasthttp.ErrBodyTooLarge) || errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrBodyTooLarge", err)
		}
	})
}

func TestBackendDo(t *testing.T) {
	t.Run("sends the path and header names exactly as given", func(t *testing.T) {
		got := make(chan string, 1)
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			got <- r.Path
			_, _ = w.Write([]byte(testnet.OKResponse("ok")))
		})
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)
		get(t, b, "/a/../b//c%2F")
		if p := <-got; p != "/a/../b//c%2F" {
			t.Errorf("backend saw path %q, want it unchanged", p)
		}
	})

	t.Run("accepts 16 KiB of response headers", func(t *testing.T) {
		big := strings.Repeat("v", 16<<10-64)
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("X-Big", big)
			ctx.SetBodyString("ok")
		})
		b := NewBackend(addr, 1, testOptions())
		t.Cleanup(b.Close)
		if got := get(t, b, "/"); got != "ok" {
			t.Fatalf("body = %q, want ok", got)
		}
	})

	t.Run("reads a HEAD response without a body and keeps the connection", func(t *testing.T) {
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
		b := NewBackend(addr, 1, testOptions())
		t.Cleanup(b.Close)
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.SetRequestURI("/")
		req.Header.SetHost("backend")
		req.Header.SetMethod(fasthttp.MethodHead)
		for range 3 {
			if err := b.Do(req, resp, time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if resp.SkipBody {
			t.Error("resp.SkipBody left set after a HEAD")
		}
		if got := get(t, b, "/"); got != "hello" {
			t.Fatalf("GET after HEAD = %q, want hello", got)
		}
		if s := b.Stats(); s.OpenConns != 1 || s.StrayBytes != 0 {
			t.Errorf("OpenConns, StrayBytes = %d, %d; want 1, 0", s.OpenConns, s.StrayBytes)
		}
	})

	t.Run("counts a request, leaving its place in flight to Acquire and Release", func(t *testing.T) {
		entered := make(chan struct{})
		release := make(chan struct{})
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
			entered <- struct{}{}
			<-release
		})
		b := NewBackend(addr, 1, testOptions())
		t.Cleanup(b.Close)
		done := make(chan error)
		go func() { _, err := tryGet(b, "/"); done <- err }()
		<-entered
		if s := b.Stats(); s.Requests != 1 || s.InFlight != 0 {
			t.Errorf("Requests, InFlight = %d, %d during a request, want 1, 0", s.Requests, s.InFlight)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("still works after Close, without pooling", func(t *testing.T) {
		addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
		b := NewBackend(addr, 1, testOptions())
		get(t, b, "/")
		b.Close()
		if got := get(t, b, "/"); got != "ok" {
			t.Fatalf("body = %q, want ok", got)
		}
		if n := b.Stats().OpenConns; n != 0 {
			t.Errorf("OpenConns = %d after Close, want 0", n)
		}
	})
}

func TestBackendHealth(t *testing.T) {
	b := NewBackend("127.0.0.1:1", 0, testOptions())
	if !b.Healthy() {
		t.Fatal("a new backend is unhealthy, want healthy")
	}
	if b.Weight() != 1 {
		t.Errorf("Weight() = %d for 0, want 1", b.Weight())
	}
	steps := []struct {
		set, changed bool
	}{{true, false}, {false, true}, {false, false}, {true, true}}
	for _, s := range steps {
		if got := b.SetHealthy(s.set); got != s.changed {
			t.Errorf("SetHealthy(%v) changed = %v, want %v", s.set, got, s.changed)
		}
	}
}

func TestBackendDoDeadlines(t *testing.T) {
	t.Run("a body that stops half way is ErrTimeout, not a bad response", func(t *testing.T) {
		release := make(chan struct{})
		rb := testnet.StartRawBackend(t, func(w net.Conn, _ testnet.RawRequest) {
			_, _ = w.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
			<-release
		})
		t.Cleanup(func() { close(release) })
		b := NewBackend(rb.Addr, 1, testOptions())
		t.Cleanup(b.Close)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("/")
		req.Header.SetHost("backend")
		err := b.Do(req, resp, time.Now().Add(200*time.Millisecond))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})

	t.Run("every connection busy is bounded by the request's deadline", func(t *testing.T) {
		release := make(chan struct{})
		var seen atomic.Int32
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			seen.Add(1)
			<-release
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
		})
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		o := testOptions()
		o.MaxConnsPerBackend = 1
		b := NewBackend(rb.Addr, 1, o)
		t.Cleanup(b.Close)

		first := make(chan error, 1)
		go func() { _, err := tryGet(b, "/hold"); first <- err }()
		testnet.Eventually(t, "the first request to hold the only connection", func() bool { return seen.Load() == 1 })

		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("/wait")
		req.Header.SetHost("backend")
		start := time.Now()
		err := b.Do(req, resp, start.Add(300*time.Millisecond))
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Do took %v with a 300ms deadline", took)
		}
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("err = %v, want ErrTimeout", err)
		}
		close(release)
		if err := <-first; err != nil {
			t.Errorf("first request: %v", err)
		}
	})
}

func TestRetiredBackend(t *testing.T) {
	t.Run("an in-flight request finishes and its connection is closed", func(t *testing.T) {
		release := make(chan struct{})
		var seen atomic.Int32
		rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
			seen.Add(1)
			if r.Path == "/slow" {
				<-release
			}
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
		})
		b := NewBackend(rb.Addr, 1, testOptions())
		get(t, b, "/warm") // one idle connection
		done := make(chan string, 1)
		go func() { body, _ := tryGet(b, "/slow"); done <- body }()
		testnet.Eventually(t, "the slow request to reach the backend", func() bool { return seen.Load() == 2 })
		b.Close()
		close(release)
		if body := <-done; body != "/slow" {
			t.Fatalf("in-flight request got %q, want /slow", body)
		}
		if n := b.Stats().OpenConns; n != 0 {
			t.Errorf("OpenConns = %d after retirement, want 0", n)
		}
	})
}

// The error of a failed exchange ends up in the log, so it must not carry
// the backend's bytes: fasthttp wraps a read error in the middle of a head
// with what it had read ("contents: ...Set-Cookie: session=..."), and a
// broken chunk with its size line.
func TestAFailedResponsesErrorDoesNotQuoteTheBackend(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		then         func(net.Conn) // after the answer
	}{
		{"a head cut by a timeout", "HTTP/1.1 200 OK\r\nSet-Cookie: session=TOPSECRET\r\n",
			func(net.Conn) { time.Sleep(time.Second) }},
		{"a head cut by a close", "HTTP/1.1 200 OK\r\nSet-Cookie: session=TOPSECRET\r\n",
			func(c net.Conn) { _ = c.Close() }},
		{"a broken chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{\"token\":\"TOPSECRET\"}\r\n\r\n",
			func(c net.Conn) { _ = c.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
				_, _ = w.Write([]byte(tc.answer))
				tc.then(w)
			})
			b := NewBackend(rb.Addr, 1, testOptions())
			t.Cleanup(b.Close)
			req, resp := newGet(t, "/x")
			err := b.Do(req, resp, time.Now().Add(300*time.Millisecond))
			if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
				t.Fatalf("error %v: want one that does not quote the backend", err)
			}
		})
	}
}

// A backend that sent bytes has answered, however badly: a flood of empty
// lines before the status line (more than the read buffer) came back as
// io.EOF, which stands for a pooled connection closed before any byte, and
// the request was sent again, a PUT too.
func TestABackendThatSentBytesIsNotAskedAgain(t *testing.T) {
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		if r.Index == 0 { // the first on each connection: answered, kept
			_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
			return
		}
		_, _ = w.Write([]byte(strings.Repeat("\r\n", 50000) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		_ = w.Close()
	})
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)
	get(t, b, "/warm") // the PUT reuses this connection
	before := rb.Requests()
	if _, err := tryDo(b, "PUT", "/x"); err == nil {
		t.Fatal("a flood of empty lines was taken for a response")
	}
	if n := rb.Requests() - before; n != 1 {
		t.Errorf("the backend got the PUT %d times, want once", n)
	}
}
