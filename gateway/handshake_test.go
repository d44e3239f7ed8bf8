package gateway

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestCheckSwitchAcceptsOnlyTheSwitchAskedFor(t *testing.T) {
	const key, accept = "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" // RFC 6455 §1.3
	tests := []struct {
		name, proto, head string
		ok                bool
	}{
		{"the RFC's example passes", "websocket",
			"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept, true},
		{"names and tokens in any case pass", "websocket",
			"upgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\nsec-websocket-accept: " + accept, true},
		{"a wrong accept fails", "websocket",
			"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBvbmU=", false},
		{"a missing accept fails", "websocket", "Upgrade: websocket\r\nConnection: Upgrade", false},
		{"another protocol fails", "websocket",
			"Upgrade: foo\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept, false},
		{"no Upgrade fails", "websocket", "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept, false},
		{"Connection without upgrade fails", "websocket",
			"Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: " + accept, false},
		{"a protocol other than websocket needs no accept", "foo/2", "Upgrade: foo/2\r\nConnection: upgrade", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h fasthttp.ResponseHeader
			if err := h.Read(bufio.NewReader(strings.NewReader("HTTP/1.1 101 Switching Protocols\r\n" + tt.head + "\r\n\r\n"))); err != nil {
				t.Fatal(err)
			}
			err := checkSwitch(&h, []byte(tt.proto), []byte(key))
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, errBadUpgrade) {
				t.Errorf("got %v, want errBadUpgrade", err)
			}
		})
	}
}
