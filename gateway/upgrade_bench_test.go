package gateway

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/coder/websocket"

	"github.com/sluice-gw/sluice/bench/origin"
)

// BenchmarkWebSocketEcho measures one echo round trip of a small and a
// 64 KiB message over an open WebSocket, straight to the origin and through
// a gateway tunnel; the difference is what the tunnel adds. One client, one
// message at a time: latency, not throughput.
func BenchmarkWebSocketEcho(b *testing.B) {
	o, err := origin.Start(origin.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	s, err := New(loadConfig(b, upgradeYAML(o.Addr(), "")), Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve() //nolint:errcheck
	defer s.Shutdown(context.Background())

	for _, size := range []int{64, 64 << 10} {
		for _, via := range []struct{ name, url string }{
			{"direct", "ws://" + o.Addr() + "/ws"},
			{"gateway", wsURL(s, "/ws")},
		} {
			b.Run(via.name+"/"+sizeName(size), func(b *testing.B) {
				ctx := b.Context()
				c, _, err := websocket.Dial(ctx, via.url, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.CloseNow()
				c.SetReadLimit(1 << 20)
				msg := bytes.Repeat([]byte{'x'}, size)
				b.SetBytes(int64(2 * size))
				for b.Loop() {
					if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
						b.Fatal(err)
					}
					if _, got, err := c.Read(ctx); err != nil || len(got) != size {
						b.Fatalf("echo: %d bytes, %v", len(got), err)
					}
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
