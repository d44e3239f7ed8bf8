package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
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
				time.Sleep(10 * time.Millisecond)
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
	holdResponse(ctx)
	if _, err := c.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	next := readAsync(c, 64)
	expectRead(t, peer, "response")
	time.Sleep(heldWaitMax + 30*time.Millisecond)
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
	holdResponse(ctx)
	if _, err := c.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
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
// not held (a streamed body), and the SetDeadline fasthttp calls before a
// hijack handler writes on its own.
func TestAHeldResponseGoesOutBeforeAnythingElse(t *testing.T) {
	for _, tc := range []struct {
		name string
		then func(c *yieldConn) error
	}{
		{"a write that is not held", func(c *yieldConn) error {
			c.hold = false
			_, err := c.Write([]byte("|after"))
			return err
		}},
		{"a write too large to hold", func(c *yieldConn) error {
			_, err := c.Write([]byte("|" + strings.Repeat("a", maxHeld)))
			return err
		}},
		{"SetDeadline before a hijack", func(c *yieldConn) error {
			if err := c.SetDeadline(time.Time{}); err != nil {
				return err
			}
			_, err := c.Write([]byte("|after"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer, ctx := heldPair(t)
			holdResponse(ctx)
			if _, err := c.Write([]byte("response")); err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte, 1)
			go func() {
				_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
				b, _ := io.ReadAll(peer)
				got <- b
			}()
			if err := tc.then(c); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
			b := <-got
			if !bytes.HasPrefix(b, []byte("response|")) {
				t.Fatalf("the client read %.40q; want the held response first", b)
			}
		})
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
// answers, in order; and so does one that sends both at once.
func TestAPipeliningClientGetsEveryAnswerInOrder(t *testing.T) {
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
