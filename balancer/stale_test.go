package balancer

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/rawio"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// A backend whose keep-alive timeout closes a pooled connection just as a
// request is sent on it (RFC 9112 §9.3.1): an idempotent request is retried
// once on a new connection; a POST is not, since it may have been processed.
func TestStaleReusedConnectionIsRetriedOnlyForIdempotentRequests(t *testing.T) {
	// Each connection answers its first request and closes on the second
	// without answering: the race, made deterministic.
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		if r.Index == 0 {
			_, _ = w.Write([]byte(testnet.OKResponse("first on conn")))
			return
		}
		_ = w.Close()
	})
	b := NewBackend(rb.Addr, 1, testOptions(rb.Addr).WithDefaults())
	t.Cleanup(b.Close)

	get(t, b, "/warm") // leaves one pooled connection
	if body := get(t, b, "/again"); body != "first on conn" {
		t.Fatalf("GET on a stale connection: body %q", body)
	}
	if n := rb.Conns(); n != 2 {
		t.Errorf("%d connections, want 2: the retry must use a new one", n)
	}

	// POST: the same race is an error, never a second send.
	if _, err := tryDo(b, "POST", "/orders"); err == nil {
		t.Fatal("POST on a stale connection succeeded; the backend never answered it")
	}
	if n := rb.Conns(); n != 2 {
		t.Errorf("%d connections after the POST, want still 2: a POST is never resent", n)
	}
}

// A pooled connection found unfit before anything is sent on it (the
// backend closed it, or wrote bytes nobody asked for, while it was idle)
// is replaced for any method: the request never went out on it, so a POST
// goes out once, on another connection, and succeeds.
func TestAnUnfitPooledConnectionIsReplacedForAPostBeforeItIsSent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		after  func(w net.Conn)
		stray  uint64
	}{
		{"closed while idle", "POST", func(w net.Conn) { _ = w.Close() }, 0},
		{"bytes while idle", "POST", func(w net.Conn) { _, _ = w.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) }, 1},
		// A GET is held until its response is read: the check is that read
		// (backendConn.Read), and its failure must not be lost on the way.
		{"bytes while idle, before a GET", "GET", func(w net.Conn) { _, _ = w.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
				_, _ = w.Write([]byte(testnet.OKResponse(strings.Fields(r.Head)[0] + " " + r.Path)))
				if r.Conn == 0 {
					time.Sleep(2 * time.Millisecond) // a separate write, after the response
					tc.after(w)
				}
			})
			b := NewBackend(rb.Addr, 1, testOptions().WithDefaults())
			t.Cleanup(b.Close)

			get(t, b, "/warm")
			time.Sleep(30 * time.Millisecond) // the close or the bytes arrive
			start := time.Now()
			got, err := tryDo(b, tc.method, "/orders")
			// Not a speed target: a lost check result made the request wait
			// for its whole 5 s deadline before it went on a new connection.
			if waited := time.Since(start); waited > 2*time.Second {
				t.Errorf("%s waited %v for an unfit connection", tc.method, waited)
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.method, err)
			}
			if got != tc.method+" /orders" {
				t.Fatalf("%s answered %q", tc.method, got)
			}
			if n := rb.Conns(); n != 2 {
				t.Errorf("%d connections, want 2: the POST on a new one", n)
			}
			if n := rb.Requests(); n != 2 {
				t.Errorf("the backend saw %d requests, want 2: the POST once", n)
			}
			if s := b.Stats(); s.StrayBytes != tc.stray || s.OtherErrors != 0 || s.TimeoutErrors != 0 {
				t.Errorf("StrayBytes, OtherErrors, TimeoutErrors = %d, %d, %d; want %d, 0, 0",
					s.StrayBytes, s.OtherErrors, s.TimeoutErrors, tc.stray)
			}
		})
	}
}

// A backend that closes each new connection at once fails the request at
// once, on that one connection: a new connection found unfit is not
// replaced by another, which would be closed the same way (and one that
// took the request before the close came is not retried: it was new).
func TestANewConnectionTheBackendClosesAtOnceFailsTheRequestAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
			accepted <- struct{}{}
		}
	}()
	b := NewBackend(ln.Addr().String(), 1, testOptions().WithDefaults())
	t.Cleanup(b.Close)
	start := time.Now()
	if body, err := tryGet(b, "/orders/1"); err == nil {
		t.Fatalf("GET succeeded with %q", body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("GET failed after %v, want at once", d)
	}
	<-accepted
	select {
	case <-accepted:
		t.Error("a second connection for one GET, want one")
	case <-time.After(50 * time.Millisecond):
	}
}

// A connection found unfit before anything was sent on it is replaced when
// it was reused; a new one fails the request as a failure to connect (a
// backend that speaks first, or closes at once, does so on every
// connection, and nothing was sent: the gateway may try another backend).
func TestUnfitConnectionErrors(t *testing.T) {
	var tr transport
	stray := &rawio.NotSentError{Unsolicited: true}
	closed := &rawio.NotSentError{Err: io.EOF}
	if err := tr.unfit(true, stray); !notSent(err) {
		t.Errorf("reused, stray bytes: %v; want the NotSentError (take another)", err)
	}
	if err := tr.unfit(true, closed); !notSent(err) {
		t.Errorf("reused, closed: %v; want the NotSentError (take another)", err)
	}
	if err := tr.unfit(false, stray); notSent(err) || !errors.Is(err, ErrConnect) || !errors.Is(err, errMalformedResponse) {
		t.Errorf("new, stray bytes: %v; want a failure to connect, for a malformed response", err)
	}
	if err := tr.unfit(false, closed); notSent(err) || !errors.Is(err, ErrConnect) || !errors.Is(err, io.EOF) {
		t.Errorf("new, closed: %v; want a failure to connect, for io.EOF", err)
	}
	if n := tr.strayBytes.Load(); n != 2 {
		t.Errorf("strayBytes = %d, want 2", n)
	}
}
