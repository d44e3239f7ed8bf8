package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// heldPair is loopbackPair with a RequestCtx on the gateway's side and one
// request already read, as fasthttp would have before its handler ran.
func heldPair(t *testing.T) (*yieldConn, net.Conn, *fasthttp.RequestCtx) {
	t.Helper()
	c, peer := loopbackPair(t, 0)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init2(c, nil, false)
	if _, err := peer.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return c, peer, ctx
}

// heldCert is a self-signed certificate for 127.0.0.1, made once.
var heldCert struct {
	sync.Once
	cert tls.Certificate
	err  error
}

func testCert(t *testing.T) (tls.Certificate, error) {
	heldCert.Do(func() {
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		writeSelfSigned(t, cert, key, "held")
		heldCert.cert, heldCert.err = tls.LoadX509KeyPair(cert, key)
	})
	return heldCert.cert, heldCert.err
}

// tlsPair runs a TLS handshake over c and peer and returns both ends.
func tlsPair(t *testing.T, c, peer net.Conn) (srv, cli *tls.Conn) {
	t.Helper()
	cert, err := testCert(t)
	if err != nil {
		t.Fatal(err)
	}
	srv = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
	cli = tls.Client(peer, &tls.Config{InsecureSkipVerify: true})
	errc := make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return srv, cli
}

// holdAResponse has the connection hold "response", as fasthttp would write
// it after the handler.
func holdAResponse(t *testing.T, c *yieldConn, ctx *fasthttp.RequestCtx) {
	t.Helper()
	holdResponse(ctx)
	if !c.hold {
		t.Fatal("a whole response on a keep-alive connection is not held")
	}
	if _, err := c.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
}

// expectNothing fails if peer can read anything within 50ms.
func expectNothing(t *testing.T, peer net.Conn, what string) {
	t.Helper()
	_ = peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := peer.Read(make([]byte, 64)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the client read %d bytes (%v); want none yet", what, n, err)
	}
}

// expectRead fails unless peer reads exactly want.
func expectRead(t *testing.T, peer net.Conn, want string) {
	t.Helper()
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != want {
		t.Fatalf("the client read %q, %v; want %q", got, err, want)
	}
}

// readAsync reads into a buffer of n bytes on another goroutine.
func readAsync(c net.Conn, n int) <-chan string {
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, n)
		k, err := c.Read(buf)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(buf[:k])
	}()
	return got
}

func TestAHeldResponseGoesOutWithTheNextRead(t *testing.T) {
	c, peer, ctx := heldPair(t)
	holdResponse(ctx)
	if !c.hold {
		t.Fatal("a whole response on a keep-alive connection is not held")
	}
	for _, part := range []string{"HTTP/1.1 200 OK\r\n", "Content-Length: 2\r\n\r\nok"} {
		if n, err := c.Write([]byte(part)); err != nil || n != len(part) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	expectNothing(t, peer, "before the next read")
	next := readAsync(c, 64)
	expectRead(t, peer, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if _, err := peer.Write([]byte("next")); err != nil {
		t.Fatal(err)
	}
	if got := <-next; got != "next" {
		t.Fatalf("the read after the held response got %q, want next", got)
	}
	if c.hold {
		t.Error("the connection still holds after the read")
	}
}

func TestOnlyAWholeResponseOnAKeptConnectionIsHeld(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(ctx *fasthttp.RequestCtx)
	}{
		{"a streamed body", func(ctx *fasthttp.RequestCtx) { ctx.Response.SetBodyStream(strings.NewReader("x"), 1) }},
		{"a response that closes the connection", func(ctx *fasthttp.RequestCtx) { ctx.Response.SetConnectionClose() }},
		{"a request that closes the connection", func(ctx *fasthttp.RequestCtx) { ctx.Request.Header.SetConnectionClose() }},
		{"a hijacked connection", func(ctx *fasthttp.RequestCtx) { ctx.Hijack(func(net.Conn) {}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, ctx := heldPair(t)
			tc.setup(ctx)
			holdResponse(ctx)
			if c.hold {
				t.Fatal("held")
			}
		})
	}
}

// A request that came in the same read as the one before it (no read of
// its own) shows a client that pipelines: its connection never holds again,
// since its next request may come before the wait begins.
func TestAPipeliningClientsConnectionStopsHolding(t *testing.T) {
	c, peer, ctx := heldPair(t)
	holdResponse(ctx)
	holdResponse(ctx) // the next request, served from what was read
	if c.hold || !c.pipelined {
		t.Fatalf("hold %v, pipelined %v after a request with no read of its own; want false, true", c.hold, c.pipelined)
	}
	if _, err := peer.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	holdResponse(ctx)
	if c.hold {
		t.Fatal("a pipelining client's connection holds again")
	}
}

// A wait cut short by heldWaitMax reads at once: bytes that were there show
// a client that pipelines (the wait missed them), none show a slow client,
// for which holding backs off for 1, 2, 4 ... 64 requests.
func TestAWaitCutShortByTheBoundTellsAPipeliningClientFromASlowOne(t *testing.T) {
	t.Run("the bytes were there", func(t *testing.T) {
		c, peer, _ := heldPair(t)
		if _, err := peer.Write([]byte("early")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		buf := make([]byte, 16)
		if n, err := c.readAfterBound(buf); err != nil || string(buf[:n]) != "early" {
			t.Fatalf("readAfterBound = %q, %v", buf[:n], err)
		}
		if !c.pipelined || c.holdOff != 0 {
			t.Fatalf("pipelined %v, holdOff %d; want true, 0", c.pipelined, c.holdOff)
		}
	})
	t.Run("nothing yet", func(t *testing.T) {
		c, peer, ctx := heldPair(t)
		for _, want := range []uint8{1, 2, 4, 8, 16, 32, 64, 64} {
			go func() {
				time.Sleep(30 * time.Millisecond) // after the read has begun
				_, _ = peer.Write([]byte("late"))
			}()
			buf := make([]byte, 16)
			if n, err := c.readAfterBound(buf); err != nil || string(buf[:n]) != "late" {
				t.Fatalf("readAfterBound = %q, %v", buf[:n], err)
			}
			if c.pipelined || c.holdOff != want {
				t.Fatalf("pipelined %v, holdOff %d; want false, %d", c.pipelined, c.holdOff, want)
			}
		}
		for range 64 {
			holdResponse(ctx)
			c.reads++ // each request has its own read
			if c.hold {
				t.Fatal("held while holding is off")
			}
		}
		holdResponse(ctx)
		if !c.hold {
			t.Fatal("not held once the back-off is over")
		}
	})
}

// A client that sends its next request later than heldWaitMax gets it read
// (the bound expires, the connection reads as usual) and holding backs off;
// a wait that ends in time resets the back-off.
func TestASlowClientIsServedAndHoldingBacksOff(t *testing.T) {
	c, peer, ctx := heldPair(t)
	c.heldWait = 30 * time.Millisecond
	holdAResponse(t, c, ctx)
	next := readAsync(c, 64)
	expectRead(t, peer, "response")
	time.Sleep(c.heldWait + 50*time.Millisecond)
	if _, err := peer.Write([]byte("slow")); err != nil {
		t.Fatal(err)
	}
	if got := <-next; got != "slow" {
		t.Fatalf("read %q, want slow", got)
	}
	if c.holdOff != 1 || c.pipelined {
		t.Fatalf("holdOff %d, pipelined %v; want 1, false", c.holdOff, c.pipelined)
	}
	holdResponse(ctx) // off for this one
	if c.hold {
		t.Fatal("held during the back-off")
	}
	c.reads++
	holdResponse(ctx)
	if !c.hold {
		t.Fatal("not held after the back-off")
	}
	c.heldWait = time.Minute // the quick request below must not depend on the machine's speed
	if _, err := c.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	next = readAsync(c, 64)
	expectRead(t, peer, "response")
	if _, err := peer.Write([]byte("quick")); err != nil {
		t.Fatal(err)
	}
	if got := <-next; got != "quick" || c.holdBackoff != 0 {
		t.Fatalf("read %q, back-off %d; want quick, 0", got, c.holdBackoff)
	}
}

// fasthttp's Shutdown closes, from its own goroutine, connections it sees
// as idle: a response still held goes out before the close.
func TestCloseWritesAHeldResponse(t *testing.T) {
	c, peer, ctx := heldPair(t)
	holdAResponse(t, c, ctx)
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := io.ReadAll(peer); err != nil || string(got) != "response" {
		t.Fatalf("the client read %q, %v; want the response, then the close", got, err)
	}
}

// Whatever writes next, a held response goes out before it: a write that is
// not held (a streamed body), one too large to hold, ReadFrom (a spliced
// body), and the SetDeadline fasthttp calls before a hijack handler writes
// on its own, after which nothing is held.
func TestAHeldResponseGoesOutBeforeAnythingElse(t *testing.T) {
	large := strings.Repeat("a", maxHeld)
	for _, tc := range []struct {
		name, after string
		then        func(c *yieldConn) error
	}{
		{"a write that is not held", "|after", func(c *yieldConn) error {
			c.mu.Lock()
			c.hold = false
			c.mu.Unlock()
			_, err := c.Write([]byte("|after"))
			return err
		}},
		{"a write too large to hold", "|" + large, func(c *yieldConn) error {
			_, err := c.Write([]byte("|" + large))
			return err
		}},
		{"ReadFrom", "|after", func(c *yieldConn) error {
			_, err := c.ReadFrom(strings.NewReader("|after"))
			return err
		}},
		{"SetDeadline before a hijack", "|after", func(c *yieldConn) error {
			if err := c.SetDeadline(time.Time{}); err != nil {
				return err
			}
			_, err := c.Write([]byte("|after"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer, ctx := heldPair(t)
			holdAResponse(t, c, ctx)
			got := make(chan string, 1)
			go func() {
				buf := make([]byte, len("response")+len(tc.after))
				_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, _ := io.ReadFull(peer, buf)
				got <- string(buf[:n])
			}()
			if err := tc.then(c); err != nil {
				t.Fatal(err)
			}
			if b := <-got; b != "response"+tc.after {
				t.Fatalf("the client read %.40q; want the held response, then what came after it", b)
			}
		})
	}
}

// A held response is not lost when the wait cannot begin: a read whose own
// deadline has passed (fasthttp draining a request body the handler left
// unread, say) writes the response, then fails.
func TestAHeldResponseGoesOutWhenTheReadFails(t *testing.T) {
	c, peer, ctx := heldPair(t)
	holdAResponse(t, c, ctx)
	_ = c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 16)); !isTimeout(err) {
		t.Fatalf("Read past its deadline = %v, want a timeout", err)
	}
	expectRead(t, peer, "response")
}

// Close from another goroutine while the connection's goroutine begins its
// read: whichever writes the held response, the client gets it once, whole,
// before the close; under TLS too, where Close writes the close_notify alert
// after it. Run with -race, this is also the check on the mutex.
func TestCloseBesideTheNextReadSendsTheHeldResponseOnce(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "TLS"}[useTLS], func(t *testing.T) {
			for i := range 30 {
				c, peer, ctx := heldPair(t)
				var conn net.Conn = c
				if useTLS {
					srv, cli := tlsPair(t, c, peer)
					ctx.Init2(srv, nil, false)
					conn, peer = srv, cli
				}
				holdResponse(ctx)
				if _, err := conn.Write([]byte("response")); err != nil {
					t.Fatal(err)
				}
				readDone := make(chan struct{})
				go func() {
					defer close(readDone)
					_, _ = conn.Read(make([]byte, 16))
				}()
				if i%2 == 0 {
					time.Sleep(time.Duration(i) * 50 * time.Microsecond)
				}
				if err := conn.Close(); err != nil {
					t.Fatal(err)
				}
				_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
				got, _ := io.ReadAll(peer)
				if string(got) != "response" {
					t.Fatalf("attempt %d: the client read %q; want the response once, then the close", i, got)
				}
				<-readDone
			}
		})
	}
}

// Close that comes after the connection's goroutine has taken the held
// response and before it wrote it waits for the write, instead of closing
// under it.
func TestCloseWaitsForAHeldResponseBeingWritten(t *testing.T) {
	c, peer, ctx := heldPair(t)
	holdAResponse(t, c, ctx)
	closed := make(chan error, 1)
	testHookHeldTaken = func(*yieldConn) {
		go func() { closed <- c.Close() }()
		time.Sleep(20 * time.Millisecond) // Close would close the socket now
	}
	t.Cleanup(func() { testHookHeldTaken = nil })
	_, _ = c.Read(make([]byte, 16))
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, _ := io.ReadAll(peer); string(got) != "response" {
		t.Fatalf("the client read %q; want the response, then the close", got)
	}
}

// boundWait keeps a bound in force while it is at most heldWait away and at
// least 2/5 of it; it never puts one later than the connection's own
// deadline in force, and keeps that one when it is the nearer.
func TestTheBoundOnAWaitMovesCoarselyAndNeverPastTheConnectionsDeadline(t *testing.T) {
	c, _, _ := heldPair(t)
	c.heldWait = 50 * time.Millisecond
	now := time.Now()
	c.rd.want = now.Add(time.Minute)
	steps := []struct {
		name string
		at   time.Duration // after now
		want time.Duration // the deadline in force after boundWait, after now
	}{
		{"the first wait", 0, 50 * time.Millisecond},
		{"29ms later: 21ms left, kept", 29 * time.Millisecond, 50 * time.Millisecond},
		{"31ms later: 19ms left, moved", 31 * time.Millisecond, 81 * time.Millisecond},
	}
	for _, st := range steps {
		if err := c.boundWait(now.Add(st.at)); err != nil {
			t.Fatal(err)
		}
		if got := c.rd.set.Sub(now); got != st.want {
			t.Fatalf("%s: the deadline in force is now+%v, want now+%v", st.name, got, st.want)
		}
	}
	c.rd.want = now.Add(100 * time.Millisecond) // the idle timeout is near
	if err := c.boundWait(now.Add(80 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if !c.rd.set.Equal(c.rd.want) {
		t.Fatalf("the deadline in force is now+%v, want the connection's own, now+100ms", c.rd.set.Sub(now))
	}
	if err := c.boundWait(now.Add(95 * time.Millisecond)); err != nil || !c.rd.set.Equal(c.rd.want) {
		t.Fatalf("5ms before the connection's own deadline: in force now+%v (%v), want it kept", c.rd.set.Sub(now), err)
	}
}

// After a held wait the bound is in force; the next ordinary read (the rest
// of a request, its body) runs under the connection's own deadline again.
func TestAReadAfterAHeldWaitRunsUnderTheConnectionsOwnDeadline(t *testing.T) {
	c, peer, ctx := heldPair(t)
	c.heldWait = time.Minute
	_ = c.SetReadDeadline(time.Now().Add(time.Hour))
	holdAResponse(t, c, ctx)
	next := readAsync(c, 1)
	expectRead(t, peer, "response")
	if _, err := peer.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	<-next
	if c.rd.set.Equal(c.rd.want) {
		t.Fatal("the held wait ran under the connection's own deadline, not the bound")
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if !c.rd.set.Equal(c.rd.want) {
		t.Fatalf("the ordinary read ran under %v, want the connection's own deadline %v", c.rd.set, c.rd.want)
	}
}

// slowFirstBackend answers GET /orders/N with "order N", after 60ms when
// the query says slow.
func slowFirstBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if ctx.QueryArgs().Has("slow") {
			time.Sleep(60 * time.Millisecond)
		}
		ctx.SetBodyString("order " + strings.TrimPrefix(string(ctx.Path()), "/orders/"))
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// Through the gateway: a client that sends its second request while the
// first is at a slow backend (so the two come in separate reads) gets both
// answers, in order; and so does one that sends both at once. Without the
// bound on the wait the second answer would come after the idle timeout
// (60s), past the client's 5s deadline.
func TestAPipeliningClientGetsEveryAnswerInOrder(t *testing.T) {
	t.Parallel()
	s := startGateway(t, gatewayYAML(slowFirstBackend(t)))
	for _, tc := range []struct {
		name string
		gap  time.Duration
	}{{"one after the other", 20 * time.Millisecond}, {"together", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for round := range 5 {
				first, second := 100+2*round, 101+2*round
				if _, err := fmt.Fprintf(c, "GET /api/orders/%d?slow HTTP/1.1\r\nHost: a\r\n\r\n", first); err != nil {
					t.Fatal(err)
				}
				time.Sleep(tc.gap)
				if _, err := fmt.Fprintf(c, "GET /api/orders/%d HTTP/1.1\r\nHost: a\r\n\r\n", second); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				for _, id := range []int{first, second} {
					var resp fasthttp.Response
					if err := resp.Read(br); err != nil {
						t.Fatalf("round %d: reading the answer for order %d: %v", round, id, err)
					}
					if want := fmt.Sprintf("order %d", id); resp.StatusCode() != 200 || string(resp.Body()) != want {
						t.Fatalf("round %d: answer %d %q, want %q", round, resp.StatusCode(), resp.Body(), want)
					}
				}
			}
		})
	}
}
