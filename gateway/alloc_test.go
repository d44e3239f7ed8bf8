//go:build !race

package gateway

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/origin"
)

func TestProxiedRequestDoesNotAllocate(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	o2 := startOrigin(t, origin.Options{})
	e1, e2 := startOrigin(t, origin.Options{ErrorRate: 1}), startOrigin(t, origin.Options{ErrorRate: 1})
	// Besides the plain route: a sharded route over a consistent_hash pool
	// and a round-robin one, with shedding on and a retried 5xx.
	yaml := gatewayYAML(o.Addr()) +
		"  - name: sharded\n    match: {path_prefix: /sharded}\n    strip_prefix: /sharded\n    shards: {key: \"header:X-Customer-ID\", pools: [orders, hashed]}\n    priority: high\n" +
		"  - name: retried\n    match: {path_prefix: /failing}\n    strip_prefix: /failing\n    pool: failing\n    retries: {on: [500], budget: 100%}\n" +
		"server: {max_concurrency: 1000}\n"
	yaml = strings.Replace(yaml, "routes:", "  hashed:\n    policy: consistent_hash\n    hash_key: \"query:c\"\n    outlier_detection: {consecutive_failures: -1}\n"+
		"    backends: [{addr: "+o.Addr()+"}, {addr: "+o2.Addr()+"}]\n"+
		"  failing:\n    outlier_detection: {consecutive_failures: -1}\n    backends: [{addr: "+e1.Addr()+"}, {addr: "+e2.Addr()+"}]\nroutes:", 1)
	s := startGateway(t, yaml)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"a proxied GET", "GET /api/orders/17?x=1 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n", 200},
		{"a proxied POST", "POST /api/orders HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"customer\":\"c\"}", 201},
		{"an unrouted request", "GET /nope HTTP/1.1\r\nHost: shop.example\r\n\r\n", 404},
		{"a sharded GET to a consistent_hash pool", "GET /sharded/orders/1?c=42 HTTP/1.1\r\nHost: shop.example\r\nX-Customer-ID: c-17\r\n\r\n", 200},
		{"a GET retried after a 500", "GET /failing/orders/1 HTTP/1.1\r\nHost: shop.example\r\n\r\n", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serve := serveRaw(t, s, tt.raw)
			for i := 0; i < 100; i++ { // warm pools and connections
				if st := serve(); st != tt.status {
					t.Fatalf("status %d, want %d", st, tt.status)
				}
			}
			// Compare with -bench to find the cost: go test -run XXX -bench Handle -benchmem ./gateway
			if n := testing.AllocsPerRun(1000, func() { serve() }); n != 0 {
				t.Errorf("%s allocates %v times per request, want 0", tt.name, n)
			}
		})
	}
}

func TestAccessLogDoesNotAllocate(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	yaml := strings.Replace(gatewayYAML(o.Addr()), "log:", "access_log: {enabled: true}\nlog:", 1)
	s := startGateway(t, yaml, func(o *Options) { o.AccessLogOutput = io.Discard })
	serve := serveRaw(t, s, "GET /api/orders/17 HTTP/1.1\r\nHost: shop.example\r\n\r\n")
	// Lines wait up to a tick for the writer, which then returns their
	// buffers to the pool: warm up for a few ticks so the pool holds enough.
	for start := time.Now(); time.Since(start) < 5*accessLogTick; {
		serve()
	}
	if n := testing.AllocsPerRun(1000, func() { serve() }); n != 0 {
		t.Errorf("a logged proxied GET allocates %v times per request, want 0", n)
	}
}

// A held response and the read that writes it, waits and reads the next
// request (held.go) allocate nothing.
func TestAHeldResponseAndTheNextReadDoNotAllocate(t *testing.T) {
	c, peer, ctx := heldPair(t)
	c.heldWait = time.Minute // a slow round trip must not turn holding off
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	go func() {
		buf, q := make([]byte, len(resp)), []byte("q")
		for {
			if _, err := io.ReadFull(peer, buf); err != nil {
				return
			}
			if _, err := peer.Write(q); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 16)
	n := testing.AllocsPerRun(500, func() {
		holdResponse(ctx)
		if !c.hold {
			t.Fatal("not held")
		}
		if _, err := c.Write(resp); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("a held response and the next read allocate %v times, want 0", n)
	}
}
