package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestDeadlineSlackIsASixteenthOfTheSmallestTimeoutOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    config.Server
		want time.Duration
	}{
		{"defaults", config.Server{ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}, 625 * time.Millisecond},
		{"a short idle timeout", config.Server{ReadTimeout: 10 * time.Second, IdleTimeout: 1600 * time.Millisecond}, 100 * time.Millisecond},
		{"timeouts off are not the smallest", config.Server{WriteTimeout: 32 * time.Second}, 2 * time.Second},
		{"no timeout at all: exact", config.Server{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := deadlineSlack(tc.s); got != tc.want {
				t.Errorf("deadlineSlack = %v, want %v", got, tc.want)
			}
		})
	}
}

// loopbackPair returns a client connection wrapped as the gateway wraps
// accepted ones, with the given slack, and its peer.
func loopbackPair(t *testing.T, slack time.Duration) (*yieldConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err := yieldListener{Listener: ln, slack: slack}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*yieldConn), peer
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestARecordedDeadlineIsInForceAtTheNextRead(t *testing.T) {
	c, peer := loopbackPair(t, time.Hour)
	// A late deadline first, in force after the first read; then an earlier
	// one, which must not wait for the slack.
	_ = c.SetReadDeadline(time.Now().Add(time.Hour))
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(-time.Second))
	// The peer closes after 5s at the latest, so a read that ignored the
	// deadline ends with EOF instead of hanging the test.
	time.AfterFunc(5*time.Second, func() { peer.Close() })
	if _, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("read after an earlier deadline: %v, want a timeout", err)
	}
	_ = c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.Write(buf); !isTimeout(err) {
		t.Fatalf("write after a past deadline: %v, want a timeout", err)
	}
	// Clearing a deadline in force is never skipped.
	_ = c.SetReadDeadline(time.Time{})
	if _, err := peer.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("read after the deadline was cleared: %v", err)
	}
}

// After SetDeadline, as fasthttp calls it before handing a connection to a
// hijack handler, a deadline set from another goroutine interrupts a read
// that is already blocked.
func TestAfterSetDeadlineADeadlineInterruptsABlockedRead(t *testing.T) {
	c, peer := loopbackPair(t, time.Hour)
	_ = c.SetReadDeadline(time.Now().Add(time.Hour))
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		read <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the read block (not required for the outcome)
	_ = c.SetReadDeadline(time.Now())
	select {
	case err := <-read:
		if !isTimeout(err) {
			t.Fatalf("blocked read ended with %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		peer.Close()
		t.Fatal("a deadline set from another goroutine did not interrupt the blocked read")
	}
}

// readUntilClosed reads c until the gateway closes it and fails the test if
// c is still open after within; what names the timeout that should close it.
func readUntilClosed(t *testing.T, c net.Conn, within time.Duration, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	if _, err := io.Copy(io.Discard, c); isTimeout(err) {
		t.Fatalf("the gateway still holds the connection after %v; %s should have closed it", within, what)
	}
}

func TestAnIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{})
	yaml := strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {read_timeout: 10s, idle_timeout: 300ms}\nlog:", 1)
	s := startGateway(t, yaml)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /api/orders/1 HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	readUntilClosed(t, c, 5*time.Second, "idle_timeout (300ms)")
}

// Between requests the read deadline is the idle timeout; once a request
// has begun it is the read timeout, shorter here, even though the coarse
// deadlines skip most moves.
func TestATrickledSecondRequestIsCutOffByTheReadTimeoutNotTheIdleTimeout(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{})
	yaml := strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {read_timeout: 300ms, idle_timeout: 30s}\nlog:", 1)
	s := startGateway(t, yaml)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /api/orders/1 HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) {
		t.Fatalf("first request: %q, %v", buf[:n], err)
	}
	if _, err := c.Write(req[:20]); err != nil { // the second request's first bytes, then nothing
		t.Fatal(err)
	}
	readUntilClosed(t, c, 5*time.Second, "read_timeout (300ms)")
}

// A client that sends requests but never reads the answers is cut off by
// write_timeout once the socket buffers are full.
func TestAClientThatDoesNotReadIsCutOffByTheWriteTimeout(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	yaml := strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {write_timeout: 300ms}\nlog:", 1)
	s := startGateway(t, yaml)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Pipelined requests whose answers (about 1 KiB each) fill the buffers
	// many times over; the writer gives up when the gateway stops reading.
	go func() {
		req := []byte(strings.Repeat("GET /api/orders/1 HTTP/1.1\r\nHost: a\r\n\r\n", 100))
		for range 1000 {
			if _, err := c.Write(req); err != nil {
				return
			}
		}
	}()
	testnet.Eventually(t, "write_timeout (300ms) to close the connection of a client that does not read", func() bool {
		return s.conns.Load() == 0
	})
}

// A request that yielded while it waited for its backend does not yield
// again before the next request is read; a pipelined one, which waited on
// a channel, yields before it; one that went to no backend (a cache hit, a
// refusal) yields before every other such read. The rule follows each
// request, whatever came before it.
func TestTheConnectionYieldsOncePerRequest(t *testing.T) {
	c, peer := loopbackPair(t, 0)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init2(c, nil, false)
	buf := make([]byte, 1)
	const none, yielded, parked = "none", "yielded", "parked"
	steps := []struct {
		upstream string
		yield    bool
	}{
		{yielded, false}, {yielded, false}, {yielded, false},
		{parked, true}, {parked, true},
		{none, false}, {none, true}, {none, false},
		{yielded, false}, {parked, true}, {none, true}, {none, false},
	}
	for i, st := range steps {
		if _, err := c.Write([]byte("r")); err != nil { // a response
			t.Fatal(err)
		}
		if st.upstream != none {
			upstreamWaited(ctx, st.upstream == yielded)
		}
		if got := c.yieldNow(); got != st.yield {
			t.Fatalf("request %d (%s): yields %v, want %v", i, st.upstream, got, st.yield)
		}
		if c.yieldNow() {
			t.Fatalf("request %d: a second read without a write between yields too", i)
		}
		if _, err := peer.Write([]byte("q")); err != nil { // the next request
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf); err != nil {
			t.Fatal(err)
		}
	}
}
