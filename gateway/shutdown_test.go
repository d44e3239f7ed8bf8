package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// shutdownYAML is a gateway with a fast route (/api/orders) and a slow one
// (/slow, to the origin late, which answers after slow), with the given
// server keys.
func shutdownYAML(t *testing.T, slow time.Duration, server string) (yaml string, late *origin.Server) {
	t.Helper()
	fast := startOrigin(t, origin.Options{})
	late = startOrigin(t, origin.Options{Latency: origin.Latency{Dist: "fixed", Fixed: slow}})
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: error}
server: {%s}
pools:
  orders: {backends: [{addr: %s}], timeout: 10s}
  slow: {backends: [{addr: %s}], timeout: 10s}
routes:
  - {name: orders, match: {path_prefix: /api/orders}, strip_prefix: /api, pool: orders}
  - {name: slow, match: {path_prefix: /slow}, strip_prefix: /slow, pool: slow}
`, server, fast.Addr(), late.Addr()), late
}

// gatewayWith is shutdownYAML without the slow origin.
func gatewayWith(t *testing.T, slow time.Duration, server string) string {
	yaml, _ := shutdownYAML(t, slow, server)
	return yaml
}

const getOrder = "GET /api/orders/7 HTTP/1.1\r\nHost: shop.example\r\n\r\n"

// keepAlive opens a connection and gets one answer on it, which must keep
// the connection open.
func keepAlive(t *testing.T, s *Server) *testnet.Conn {
	t.Helper()
	c := testnet.Dial(t, s.Addr().String())
	c.Send(t, getOrder)
	if resp, _ := c.ReadResponse(t, ""); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before the shutdown: %d, Connection: close %v", resp.StatusCode, resp.Close)
	}
	return c
}

// answeredAndClosed sends a request on c and checks that it is answered
// 200 with Connection: close and that the gateway then closes c.
func answeredAndClosed(t *testing.T, c *testnet.Conn, raw, what string) {
	t.Helper()
	if raw != "" {
		c.Send(t, raw)
	}
	resp, _ := c.ReadResponse(t, "")
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("%s: %d, Connection: close %v; want 200 with Connection: close", what, resp.StatusCode, resp.Close)
	}
	if !c.Closed(5 * time.Second) {
		t.Errorf("%s: the gateway kept the connection open after Connection: close", what)
	}
}

func readyz(t *testing.T, s *Server) int {
	t.Helper()
	return do(t, http.MethodGet, "http://"+s.AdminAddr().String()+"/readyz", "").status
}

func TestBeginShutdownFailsReadinessAndClosesEachConnectionAfterItsNextAnswer(t *testing.T) {
	s := startGateway(t, gatewayWith(t, time.Millisecond, ""))
	testnet.Eventually(t, "the gateway to be ready", func() bool { return readyz(t, s) == 200 })
	c := keepAlive(t, s)

	s.BeginShutdown()
	if st := readyz(t, s); st != 503 {
		t.Errorf("/readyz right after BeginShutdown: %d, want 503", st)
	}
	answeredAndClosed(t, c, getOrder, "a keep-alive connection's next request")
	answeredAndClosed(t, testnet.Dial(t, s.Addr().String()), getOrder, "a new connection")
}

func TestShutdownFinishesBusyConnectionsAndClosesIdleOnesOnceQuiet(t *testing.T) {
	t.Parallel()
	yaml, late := shutdownYAML(t, 500*time.Millisecond, "")
	s := startGateway(t, yaml)
	// Long enough that the steps below, on a busy machine, happen before
	// the drain gives up on the connections; the test does not wait for
	// them but for the closes.
	s.drainQuiet, s.drainIdleMax = 2*time.Second, 5*time.Second
	sending, idle, busy := keepAlive(t, s), keepAlive(t, s), keepAlive(t, s)
	busy.Send(t, "GET /slow/orders/1 HTTP/1.1\r\nHost: shop.example\r\n\r\n")
	testnet.Eventually(t, "the slow request in flight", func() bool { return late.Requests() == 1 })

	start := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	testnet.Eventually(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// An idle connection is not closed as the drain begins: a request
	// written on it then is answered, not lost to a reset.
	answeredAndClosed(t, sending, getOrder, "a request on an idle connection after the listener closed")
	answeredAndClosed(t, busy, "", "the request in flight")
	if !idle.Closed(10 * time.Second) {
		t.Error("the drain left an idle connection open")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown did not return after every connection closed")
	}
	if took := time.Since(start); took < s.drainQuiet {
		t.Errorf("Shutdown took %v: it closed the idle connection before the connections went quiet for %v", took, s.drainQuiet)
	}
}

func TestTerminateServesThroughTheDelayThenDrains(t *testing.T) {
	t.Parallel()
	t.Run("a second signal skips the rest of the delay", func(t *testing.T) {
		s := startGateway(t, gatewayWith(t, time.Millisecond, "shutdown_delay: 1m, drain_timeout: 2m"))
		testnet.Eventually(t, "the gateway to be ready", func() bool { return readyz(t, s) == 200 })
		c := keepAlive(t, s)
		skip := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- s.Terminate(skip) }()
		testnet.Eventually(t, "/readyz to fail", func() bool { return readyz(t, s) == 503 })
		answeredAndClosed(t, c, getOrder, "a keep-alive request during the delay")
		answeredAndClosed(t, testnet.Dial(t, s.Addr().String()), getOrder, "a new connection during the delay")
		close(skip)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Terminate: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Terminate still waits out the one-minute delay after skipDelay closed")
		}
	})
	t.Run("the delay is served in full", func(t *testing.T) {
		s := startGateway(t, gatewayWith(t, time.Millisecond, "shutdown_delay: 300ms, drain_timeout: 30s"))
		keepAlive(t, s)
		start := time.Now()
		if err := s.Terminate(nil); err != nil {
			t.Errorf("Terminate: %v", err)
		}
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Errorf("Terminate returned after %v, before the 300ms delay", took)
		}
	})
	t.Run("a request outliving drain_timeout does not hold the exit", func(t *testing.T) {
		s := startGateway(t, gatewayWith(t, 10*time.Second, "shutdown_delay: 100ms, drain_timeout: 600ms"))
		busy := keepAlive(t, s)
		busy.Send(t, "GET /slow/orders/1 HTTP/1.1\r\nHost: shop.example\r\n\r\n")
		start := time.Now()
		err := s.Terminate(nil)
		if err == nil || !strings.Contains(err.Error(), "deadline") {
			t.Errorf("Terminate with a request still running: %v, want the deadline", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Terminate took %v with drain_timeout 600ms", took)
		}
	})
}
