package origin

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/coder/websocket"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestWebSocketEchoAnswersMessagesPingsAndCloses(t *testing.T) {
	o := startServer(t, Options{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+o.Addr()+"/ws", nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.CloseNow()

	for _, m := range []struct {
		kind websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte("hello")},
		{websocket.MessageBinary, []byte{0, 1, 2, 255}},
	} {
		if err := c.Write(ctx, m.kind, m.data); err != nil {
			t.Fatalf("Write: %v", err)
		}
		kind, got, err := c.Read(ctx)
		if err != nil || kind != m.kind || !bytes.Equal(got, m.data) {
			t.Fatalf("echo = %v %q, %v; want %v %q", kind, got, err, m.kind, m.data)
		}
	}
	// Ping needs a reader running to see the pong.
	readErr := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); readErr <- err }()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(wsCloseCommand)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	err = <-readErr
	if status := websocket.CloseStatus(err); status != websocket.StatusNormalClosure {
		t.Fatalf("after %q: read error %v, want a normal close from the origin", wsCloseCommand, err)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Reason != "bye" {
		t.Errorf("close reason %q, want bye", ce.Reason)
	}
}

func TestWebSocketFail200AnswersWithoutSwitching(t *testing.T) {
	o := startServer(t, Options{Addr: "127.0.0.1:0"})
	status, all := testnet.RawExchange(t, o.Addr(), rawGet("/ws?fail=200",
		"Connection: Upgrade\r\n", "Upgrade: websocket\r\n", "Sec-WebSocket-Version: 13\r\n",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
	if status != 200 {
		t.Fatalf("status %d, want 200:\n%s", status, all)
	}
}

func TestCloseEndsOpenWebSockets(t *testing.T) {
	o := startServer(t, Options{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+o.Addr()+"/ws", nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.CloseNow()
	closeWithin(t, o)
	if _, _, err := c.Read(ctx); err == nil {
		t.Fatal("read after the origin closed succeeded")
	}
}
