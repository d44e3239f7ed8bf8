package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// wsTimeout bounds every wait of these tests; only a failure reaches it.
const wsTimeout = 10 * time.Second

// upgradeYAML is a gateway over one backend with a WebSocket route /ws
// (tunnel keys as given, e.g. "idle_timeout: 1s"), and a route /plain
// without the opt-in that sends /plain/ws to the same backend's /ws.
func upgradeYAML(addr, tunnel string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: error}
pools:
  orders: {backends: [{addr: %s}], timeout: 2s}
routes:
  - {name: ws, match: {path: /ws}, pool: orders, upgrade: [WebSocket], tunnel: {%s}}
  - {name: plain, match: {path_prefix: /plain}, strip_prefix: /plain, pool: orders}
`, addr, tunnel)
}

// wsGateway starts an origin and a gateway in front of it.
func wsGateway(t *testing.T, tunnel string) (*Server, *origin.Server) {
	t.Helper()
	or := startOrigin(t, origin.Options{})
	return startGateway(t, upgradeYAML(or.Addr(), tunnel)), or
}

func wsDial(t *testing.T, ctx context.Context, url string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(32 << 20)
	return c
}

func wsURL(s *Server, path string) string { return "ws://" + s.Addr().String() + path }

// echo sends one message and checks that the same comes back.
func echo(t *testing.T, ctx context.Context, c *websocket.Conn, kind websocket.MessageType, data []byte) {
	t.Helper()
	if err := c.Write(ctx, kind, data); err != nil {
		t.Fatalf("write: %v", err)
	}
	gotKind, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gotKind != kind || !bytes.Equal(got, data) {
		t.Fatalf("echo: %v of %d bytes, want %v of %d bytes", gotKind, len(got), kind, len(data))
	}
}

// tunnelCount is sluice_tunnels_total{route,result}.
func tunnelCount(t *testing.T, s *Server, route, result string) float64 {
	t.Helper()
	var d dto.Metric
	if err := s.metrics.tunnels.WithLabelValues(route, result).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// waitTunnelResult waits until one tunnel of route ws ended with result
// and none is open.
func waitTunnelResult(t *testing.T, s *Server, result string) {
	t.Helper()
	testnet.Eventually(t, "a tunnel to end with "+result, func() bool {
		return tunnelCount(t, s, "ws", result) == 1 && s.tunnels.active() == 0
	})
}

func TestWebSocketEchoesThroughTheGateway(t *testing.T) {
	t.Parallel()
	s, _ := wsGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	c := wsDial(t, ctx, wsURL(s, "/ws"))

	echo(t, ctx, c, websocket.MessageText, []byte("hello"))
	echo(t, ctx, c, websocket.MessageBinary, []byte{0, 1, 2, 0xff, 0xfe})
	large := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	large[len(large)-1] = '!'
	echo(t, ctx, c, websocket.MessageBinary, large)
	if got := s.tunnels.active(); got != 1 {
		t.Errorf("sluice_tunnels_active = %d, want 1", got)
	}

	// A ping needs a reader running to see its pong.
	readErr := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); readErr <- err }()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	// The client closes: the close handshake goes through and Close returns
	// once the backend's answering close came back.
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close from the client: %v", err)
	}
	<-readErr
	waitTunnelResult(t, s, resultClosed)
	if !strings.Contains(scrape(t, s), `sluice_tunnels_total{result="closed",route="ws"} 1`) {
		t.Error("the scrape does not show the closed tunnel")
	}
}

func TestWebSocketCloseFromTheBackendReachesTheClient(t *testing.T) {
	s, _ := wsGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	c := wsDial(t, ctx, wsURL(s, "/ws"))
	if err := c.Write(ctx, websocket.MessageText, []byte("!close")); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || ce.Reason != "bye" {
		t.Fatalf("read after the backend closed: %v, want close 1000 bye", err)
	}
	waitTunnelResult(t, s, resultClosed)
}

func TestWebSocketHandshakeAnsweredWith200IsPassedOnWithoutTunnel(t *testing.T) {
	s, _ := wsGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, wsURL(s, "/ws?fail=200"), nil)
	if err == nil {
		t.Fatal("dial succeeded; want the backend's 200 and no tunnel")
	}
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("dial: %v, response %v; want the backend's 200", err, resp)
	}
	if tunnelCount(t, s, "ws", resultRefused) != 1 || s.tunnels.active() != 0 {
		t.Errorf("refused %v, active %d; want 1 and 0", tunnelCount(t, s, "ws", resultRefused), s.tunnels.active())
	}
}

// rawWebSocketBackend answers every handshake with a 101 carrying accept as
// its Sec-WebSocket-Accept, and records the request heads.
func rawWebSocketBackend(t *testing.T, accept string) (*testnet.RawBackend, func() []string) {
	var (
		mu    sync.Mutex
		heads []string
	)
	rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		mu.Lock()
		heads = append(heads, r.Head)
		mu.Unlock()
		if !strings.Contains(strings.ToLower(r.Head), "upgrade: websocket") {
			_, _ = c.Write([]byte(testnet.OKResponse("plain")))
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+accept+"\r\n\r\n")
	})
	return rb, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), heads...)
	}
}

// handshake is a raw WebSocket handshake with the RFC 6455 sample key,
// whose accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=.
func handshake(path string, upgrade string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: ws.example\r\nConnection: keep-alive, Upgrade\r\nUpgrade: " + upgrade +
		"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
}

func TestWebSocketBadAcceptIs502(t *testing.T) {
	rb, _ := rawWebSocketBackend(t, "bm90IHRoZSByaWdodCBvbmU=")
	s := startGateway(t, upgradeYAML(rb.Addr, ""))
	status, all := testnet.RawExchange(t, s.Addr().String(), handshake("/ws", "websocket"))
	if status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502:\n%s", status, all)
	}
	if tunnelCount(t, s, "ws", resultBadHandshake) != 1 || s.tunnels.active() != 0 {
		t.Errorf("bad_handshake %v, active %d; want 1 and 0", tunnelCount(t, s, "ws", resultBadHandshake), s.tunnels.active())
	}
	// The pool saw a failed exchange: passive health counts it.
	b := s.table.Load().pools["orders"].pool.Backends()[0]
	if got := b.FailStreak(); got != 1 {
		t.Errorf("backend's failure streak %d, want 1", got)
	}
	if got := b.InFlight(); got != 0 {
		t.Errorf("backend's in-flight count %d after the handshake, want 0", got)
	}
}

func TestUpgradeHeadersReachTheBackendOnlyForTheOptedInProtocol(t *testing.T) {
	rb, heads := rawWebSocketBackend(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
	s := startGateway(t, upgradeYAML(rb.Addr, ""))
	tests := []struct {
		name, path, upgrade string
		status              int
		wantUpgrade         string // "" for none
	}{
		{"a route without the opt-in answers as today", "/plain/ws", "websocket", 200, ""},
		{"another protocol is not passed", "/ws", "h2c", 200, ""},
		{"only the opted-in protocol of a list is passed", "/ws", "foo/1, websocket", 101, "Upgrade: websocket"},
		{"an HTTP/1.0 request's Upgrade is ignored (RFC 9110 §7.8)", "/ws", "websocket HTTP/1.0", 200, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testnet.Dial(t, s.Addr().String())
			req := handshake(tt.path, tt.upgrade)
			if proto, ok := strings.CutSuffix(tt.upgrade, " HTTP/1.0"); ok {
				req = strings.Replace(handshake(tt.path, proto), "HTTP/1.1", "HTTP/1.0", 1)
			}
			c.Send(t, req)
			resp, _ := c.ReadResponse(t, "GET")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			h := heads()
			if len(h) != i+1 {
				t.Fatalf("backend saw %d requests, want %d", len(h), i+1)
			}
			head := h[i]
			var upgrades []string
			for _, line := range strings.Split(head, "\r\n") {
				name, _, _ := strings.Cut(line, ":")
				if strings.EqualFold(name, "upgrade") || strings.EqualFold(name, "connection") {
					upgrades = append(upgrades, line)
				}
			}
			switch {
			case tt.wantUpgrade == "" && len(upgrades) > 0:
				t.Errorf("backend got %q; want no Connection or Upgrade", upgrades)
			case tt.wantUpgrade != "" && !slicesContain(upgrades, tt.wantUpgrade):
				t.Errorf("backend got %q; want %q alone and Connection: Upgrade", upgrades, tt.wantUpgrade)
			}
			if tt.status == 101 && resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Errorf("101 to the client lost Sec-WebSocket-Accept: %v", resp.Header)
			}
		})
	}
}

func slicesContain(lines []string, want string) bool {
	for _, l := range lines {
		if strings.EqualFold(l, want) {
			return true
		}
	}
	return false
}

func TestIdleTunnelIsClosed(t *testing.T) {
	t.Parallel()
	s, _ := wsGateway(t, "idle_timeout: 1s")
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	c := wsDial(t, ctx, wsURL(s, "/ws"))
	echo(t, ctx, c, websocket.MessageText, []byte("still here"))
	if _, _, err := c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("read on an idle tunnel: %v (context %v); want the tunnel closed before the test's deadline", err, ctx.Err())
	}
	waitTunnelResult(t, s, resultIdle)
}

func TestTunnelEndsAtItsMaxDuration(t *testing.T) {
	t.Parallel()
	s, _ := wsGateway(t, "max_duration: 300ms")
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	c := wsDial(t, ctx, wsURL(s, "/ws"))
	for {
		if err := c.Write(ctx, websocket.MessageText, []byte("busy")); err != nil {
			break
		}
		if _, _, err := c.Read(ctx); err != nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("a busy tunnel outlived max_duration")
		}
	}
	waitTunnelResult(t, s, resultMaxLife)
}

func TestManyConcurrentTunnelsEachGetTheirOwnEchoes(t *testing.T) {
	s, _ := wsGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*wsTimeout)
	defer cancel()
	const clients, messages = 40, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := websocket.Dial(ctx, wsURL(s, "/ws"), nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.CloseNow()
			for j := range messages {
				msg := fmt.Sprintf("client %d message %d", i, j)
				if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
					errs <- err
					return
				}
				_, got, err := c.Read(ctx)
				if err != nil || string(got) != msg {
					errs <- fmt.Errorf("client %d: got %q, %v; want %q", i, got, err, msg)
					return
				}
			}
			errs <- c.Close(websocket.StatusNormalClosure, "")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	testnet.Eventually(t, "every tunnel to end", func() bool { return s.tunnels.active() == 0 })
	if got := tunnelCount(t, s, "ws", resultClosed); got != clients {
		t.Errorf("closed tunnels %v, want %d", got, clients)
	}
}

func TestReloadKeepsOpenTunnels(t *testing.T) {
	s, or := wsGateway(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	c := wsDial(t, ctx, wsURL(s, "/ws"))
	echo(t, ctx, c, websocket.MessageText, []byte("before"))
	// The new file drops the plain route and changes the tunnel bounds.
	yaml := strings.Replace(upgradeYAML(or.Addr(), "idle_timeout: 30s"), "  - {name: plain", "#", 1)
	if err := s.Reload(loadConfig(t, yaml)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	echo(t, ctx, c, websocket.MessageText, []byte("after"))
	if got := s.tunnels.active(); got != 1 {
		t.Errorf("tunnels after the reload: %d, want 1", got)
	}
}

// serveUnmanaged starts a gateway with a /ws route to an echoing origin
// whose shutdown the test does itself; served gets what Serve returned.
func serveUnmanaged(t *testing.T) (*Server, chan error) {
	t.Helper()
	or := startOrigin(t, origin.Options{})
	s, err := New(loadConfig(t, upgradeYAML(or.Addr(), "")), Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	return s, served
}

func TestShutdownDrainsThenClosesTunnels(t *testing.T) {
	t.Parallel()
	s, served := serveUnmanaged(t)
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	c := wsDial(t, ctx, wsURL(s, "/ws"))
	echo(t, ctx, c, websocket.MessageText, []byte("before"))

	drain, stop := context.WithTimeout(context.Background(), 2*time.Second)
	defer stop()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(drain) }()
	// Within the drain the tunnel goes on working.
	testnet.Eventually(t, "the shutdown to begin", func() bool { return s.draining.Load() })
	echo(t, ctx, c, websocket.MessageText, []byte("during the drain"))
	select {
	case err := <-shut:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(wsTimeout):
		t.Fatal("Shutdown did not return")
	}
	if _, _, err := c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("read after the drain deadline: %v; want the tunnel closed", err)
	}
	if got := tunnelCount(t, s, "ws", resultShutdown); got != 1 {
		t.Errorf("tunnels closed by the shutdown: %v, want 1", got)
	}
	<-served
}

func TestShutdownReturnsWhenTheLastTunnelEnds(t *testing.T) {
	s, served := serveUnmanaged(t)
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	c := wsDial(t, ctx, wsURL(s, "/ws"))
	echo(t, ctx, c, websocket.MessageText, []byte("hello"))

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }() // a deadline far away
	testnet.Eventually(t, "the shutdown to begin", func() bool { return s.draining.Load() })
	if err := c.Close(websocket.StatusGoingAway, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown still waited after the last tunnel ended")
	}
	if got := tunnelCount(t, s, "ws", resultClosed); got != 1 {
		t.Errorf("tunnels closed on their own: %v, want 1", got)
	}
	<-served
}

func TestTunnelCarriesBytesSentRightAfterEitherHandshakeAndHalfCloses(t *testing.T) {
	// The backend sends its first bytes in the same write as its 101, then
	// echoes until the gateway half-closes towards it, and closes.
	backendSawEOF := make(chan struct{})
	rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nfirst|")
		// The gateway sends the client's early bytes only after this 101,
		// so none of them can sit in the raw backend's header reader.
		_, _ = io.Copy(c, c)
		close(backendSawEOF)
		_ = c.Close()
	})
	var logs testnet.Buffer
	yaml := strings.Replace(upgradeYAML(rb.Addr, ""), "log:", "access_log: {enabled: true}\nlog:", 1)
	s := startGateway(t, yaml, func(o *Options) { o.AccessLogOutput = &logs })

	c := testnet.Dial(t, s.Addr().String())
	c.Send(t, handshake("/ws", "websocket")+"early|")
	resp, _ := c.ReadResponse(t, "GET")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	want := "first|early|"
	got := make([]byte, len(want))
	_ = c.SetReadDeadline(time.Now().Add(wsTimeout))
	if _, err := io.ReadFull(c.R, got); err != nil || string(got) != want {
		t.Fatalf("through the tunnel: %q, %v; want %q", got, err, want)
	}
	// The client is done sending: the backend sees the end, closes, and
	// the client sees that.
	if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-backendSawEOF:
	case <-time.After(wsTimeout):
		t.Fatal("the backend never saw the client's end")
	}
	if rest, err := io.ReadAll(c.R); err != nil || len(rest) != 0 {
		t.Errorf("after the backend closed: %q, %v; want a clean end", rest, err)
	}
	waitTunnelResult(t, s, resultClosed)
	testnet.Eventually(t, "the handshake's access-log line", func() bool {
		return strings.Contains(logs.String(), `"status":101`) && strings.Contains(logs.String(), `"route":"ws"`)
	})
}

func TestHandshakeToADeadBackendMovesOnOrFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there: connects are refused

	t.Run("a refused connect is tried on another backend", func(t *testing.T) {
		or := startOrigin(t, origin.Options{})
		yaml := strings.Replace(upgradeYAML(dead, ""), "backends: [{addr: "+dead+"}]",
			"policy: round_robin, backends: [{addr: "+dead+"}, {addr: "+or.Addr()+"}]", 1)
		s := startGateway(t, yaml)
		ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
		defer cancel()
		for i := range 2 { // in turn: one of the two starts on the dead backend
			c := wsDial(t, ctx, wsURL(s, "/ws"))
			echo(t, ctx, c, websocket.MessageText, []byte(fmt.Sprint("try ", i)))
		}
		var d dto.Metric
		if err := s.metrics.retries.WithLabelValues("ws", "sent").Write(&d); err != nil {
			t.Fatal(err)
		}
		if d.GetCounter().GetValue() < 1 {
			t.Error("no handshake was retried; want the one that met the dead backend moved on")
		}
	})
	t.Run("with no backend left the client gets 502", func(t *testing.T) {
		s := startGateway(t, upgradeYAML(dead, ""))
		status, all := testnet.RawExchange(t, s.Addr().String(), handshake("/ws", "websocket"))
		if status != http.StatusBadGateway {
			t.Fatalf("status %d, want 502:\n%s", status, all)
		}
		if got := tunnelCount(t, s, "ws", resultUpstreamError); got != 1 {
			t.Errorf("upstream_error %v, want 1", got)
		}
	})
}

// A backend that answers an upgrade with a head fasthttp cannot parse gets
// the client a 502, and the gateway's log names the failure without
// quoting the backend's bytes (they can be anything: a token, a cookie).
func TestAMalformedUpgradeAnswerIsLoggedWithoutItsBytes(t *testing.T) {
	const secret = "tok-9c2e71"
	rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		_, _ = io.WriteString(c, "HTTP/1.1 1x1 Switching "+secret+"\r\nUpgrade: websocket\r\n\r\n")
	})
	var logs testnet.Buffer
	s := startGateway(t, upgradeYAML(rb.Addr, ""), func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	status, all := testnet.RawExchange(t, s.Addr().String(), handshake("/ws", "websocket"))
	if status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502:\n%s", status, all)
	}
	testnet.Eventually(t, "the failure logged", func() bool {
		return strings.Contains(logs.String(), "upstream request failed")
	})
	if got := logs.String(); strings.Contains(got, secret) {
		t.Errorf("the log quotes the backend's answer:\n%s", got)
	}
}

// The answer to a handshake loses its hop-by-hop fields like any other: a
// 101 keeps only the Connection and Upgrade that make the switch, a
// refusal none, and a field its Connection names never reaches the client.
func TestHandshakeAnswersLoseTheirHopByHopFields(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"a 101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Internal\r\n" +
			"X-Internal: secret\r\nKeep-Alive: timeout=5\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"},
		{"a refusal", "HTTP/1.1 403 Forbidden\r\nConnection: X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n" +
			"Content-Length: 2\r\n\r\nno"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, func(c net.Conn, _ testnet.RawRequest) {
				_, _ = io.WriteString(c, tc.answer)
			})
			s := startGateway(t, upgradeYAML(rb.Addr, ""))
			rc := testnet.Dial(t, s.Addr().String())
			rc.Send(t, handshake("/ws", "websocket"))
			head := readRawHead(t, rc.R)
			if h := strings.ToLower(head); strings.Contains(h, "x-internal") || strings.Contains(h, "keep-alive") {
				t.Fatalf("hop-by-hop fields reached the client:\n%s", head)
			}
			if strings.HasPrefix(head, "HTTP/1.1 101") && !strings.Contains(strings.ToLower(head), "upgrade: websocket") {
				t.Fatalf("the 101 lost its Upgrade:\n%s", head)
			}
		})
	}
}

// Early bytes after an upgrade request belong to the tunnel, whatever they
// look like: a bare-LF request head among them used to leave the
// connection's look (yieldConn.bareNext) set, and the tunnel's next read of
// the client failed.
func TestTunnelCarriesEarlyBytesThatLookLikeABareLFHead(t *testing.T) {
	rb := startEchoTunnelBackend(t, "")
	s := startGateway(t, upgradeYAML(rb.Addr, ""))
	c := testnet.Dial(t, s.Addr().String())
	const early = "GET /x HTTP/1.1\nHost: a\n\n"
	c.Send(t, handshake("/ws", "websocket")+early)
	resp, _ := c.ReadResponse(t, "GET")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	time.Sleep(20 * time.Millisecond) // a read of its own
	c.Send(t, "later|")
	want := early + "later|"
	got := make([]byte, len(want))
	_ = c.SetReadDeadline(time.Now().Add(wsTimeout))
	if _, err := io.ReadFull(c.R, got); err != nil || string(got) != want {
		t.Fatalf("through the tunnel: %q, %v; want %q", got, err, want)
	}
}

// A backend that declines an upgrade has its answer checked as on any
// other exchange: an HTTP/1.0 answer with Transfer-Encoding went to the
// client with its chunk framing as content, a status of 000 as a 200.
func TestADeclinedUpgradesAnswerIsChecked(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 000 Zero\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 999 Weird\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	} {
		t.Run(strings.SplitN(answer, "\r\n", 2)[0], func(t *testing.T) {
			rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
				_, _ = io.WriteString(c, answer)
				_ = c.Close()
			})
			s := startGateway(t, upgradeYAML(rb.Addr, ""))
			c := testnet.Dial(t, s.Addr().String())
			c.Send(t, handshake("/ws", "websocket"))
			if resp, body := c.ReadResponse(t, "GET"); resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("status %d %q, want 502", resp.StatusCode, body)
			}
		})
	}
}

// startEchoTunnelBackend is a backend that accepts any upgrade with a 101,
// sends first, and then echoes what the tunnel brings until it ends.
func startEchoTunnelBackend(t *testing.T, first string) *testnet.RawBackend {
	t.Helper()
	return testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"+first)
		_, _ = io.Copy(c, c)
		_ = c.Close()
	})
}
