package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// streamYAML is a gateway with one pool over addr (its options given by
// poolExtra, indented as pool keys) and a catch-all route to it.
func streamYAML(addr, poolExtra, routeExtra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: error}
pools:
  p:
    timeout: 2s
%s    backends:
      - {addr: %s}
routes:
  - name: all
    match: {path_prefix: /}
    pool: p
%s`, poolExtra, addr, routeExtra)
}

// checkPattern reports where body first differs from origin's /download
// pattern, or -1.
func checkPattern(body []byte) int {
	for i, c := range body {
		if c != origin.PatternAt(int64(i)) {
			return i
		}
	}
	return -1
}

func TestLargeDownloadsStreamWholeWithTheirFraming(t *testing.T) {
	t.Parallel()
	or := startOrigin(t, origin.Options{})
	s := startGateway(t, streamYAML(or.Addr(), "", ""))
	for _, tc := range []struct {
		name, query string
		wantLength  int64 // -1: chunked
	}{
		{"a body with a Content-Length keeps it", "size=8MiB", 8 << 20},
		{"a chunked body stays chunked", "size=3MiB&chunked=1", -1},
		{"a slow producer's pieces all arrive", "size=1MiB&piece=16KiB&interval=2ms", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := testClient.Get(s.url("/download?" + tc.query))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading body: %v", err)
			}
			if resp.StatusCode != 200 || resp.ContentLength != tc.wantLength {
				t.Fatalf("status %d, Content-Length %d, want 200 and %d", resp.StatusCode, resp.ContentLength, tc.wantLength)
			}
			if i := checkPattern(body); i >= 0 {
				t.Fatalf("body differs from the origin's at byte %d of %d", i, len(body))
			}
			if tc.wantLength > 0 && int64(len(body)) != tc.wantLength {
				t.Fatalf("got %d bytes, want %d", len(body), tc.wantLength)
			}
		})
	}
}

// rawHTTP sends a GET on a new connection and returns what came back until
// the gateway closed it or quiet passed without a byte.
func rawGet(t *testing.T, s *Server, path string, quiet time.Duration) (data []byte, closed bool) {
	t.Helper()
	c := testnet.Dial(t, s.Addr().String())
	c.Send(t, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	return c.ReadAll(quiet)
}

func TestBrokenStreamedBodiesCloseTheClientConnection(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 200<<10)
	for _, tc := range []struct {
		name  string
		serve func(c net.Conn)
	}{
		{"fewer bytes than the Content-Length, then close", func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", 2*len(big), big)
			c.Close()
		}},
		{"fewer bytes than the Content-Length, then silence", func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", 2*len(big), big)
			time.Sleep(2 * time.Second) // past stream_timeout
		}},
		{"a malformed chunk size", func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\nxx\r\n0\r\n\r\n", len(big), big)
		}},
		{"chunk data longer than its size", func(c net.Conn) {
			// The head alone first: with it, the broken framing is a 502
			// before anything goes to the client (the balancer's
			// TestABrokenChunkFramingWithTheHeadFailsTheExchange).
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			time.Sleep(50 * time.Millisecond)
			fmt.Fprintf(c, "10\r\n%s\r\n0\r\n\r\n", big)
		}},
		{"a chunked body cut before its last chunk", func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(big), big)
			c.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := testnet.StartRawBackend(t, func(c net.Conn, _ testnet.RawRequest) { tc.serve(c) })
			s := startGateway(t, streamYAML(rb.Addr, "    stream_timeout: 300ms\n", ""))
			start := time.Now()
			data, closed := rawGet(t, s, "/x", 3*time.Second)
			if !closed {
				t.Fatalf("the client connection stayed open after a broken body (%d bytes read)", len(data))
			}
			head, body, _ := bytes.Cut(data, []byte("\r\n\r\n"))
			if !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) {
				t.Fatalf("head %q", head)
			}
			if cl := contentLength(head); cl >= 0 && int64(len(body)) >= cl {
				t.Fatalf("got the whole %d bytes of a broken body", cl)
			}
			if bytes.HasSuffix(body, []byte("0\r\n\r\n")) {
				t.Fatalf("a broken chunked body was closed with a last chunk: the client cannot tell")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v to close the client connection", d)
			}
		})
	}
}

// contentLength reads the Content-Length of a raw head, -1 if none.
func contentLength(head []byte) int64 {
	for _, line := range strings.Split(string(head), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, "content-length") {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func TestAStreamedBodyReturnsItsConnectionOnlyWhenReadToTheEnd(t *testing.T) {
	t.Parallel()
	piece := strings.Repeat("y", 100<<10)
	const pieces = 8
	rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", pieces*len(piece))
		for i := range pieces {
			if i > 0 && r.Path == "/half" {
				time.Sleep(50 * time.Millisecond) // the client is gone by the second piece
			}
			if _, err := io.WriteString(c, piece); err != nil {
				return
			}
		}
	})
	big := strings.Repeat(piece, pieces)
	s := startGateway(t, streamYAML(rb.Addr, "", ""))
	for i := range 3 {
		r := do(t, "GET", s.url("/whole"), "")
		if r.status != 200 || len(r.body) != len(big) {
			t.Fatalf("request %d: %d, %d bytes", i, r.status, len(r.body))
		}
	}
	if n := rb.Conns(); n != 1 {
		t.Fatalf("three whole streamed bodies took %d upstream connections, want 1 (reused)", n)
	}
	// A client that goes away mid-body leaves the rest unread: that
	// connection must not carry another request.
	c := testnet.Dial(t, s.Addr().String())
	c.Send(t, "GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 1024)
	if _, err := io.ReadFull(c.R, buf); err != nil {
		t.Fatal(err)
	}
	c.Close()
	testnet.Eventually(t, "the abandoned stream's upstream connection is closed", func() bool {
		r := do(t, "GET", s.url("/after"), "")
		return r.status == 200 && rb.Conns() == 2
	})
}

func TestMaxResponseBodyIsEnforcedWhileStreaming(t *testing.T) {
	or := startOrigin(t, origin.Options{})
	s := startGateway(t, streamYAML(or.Addr(), "    max_response_body: 1MiB\n", ""))
	if r := do(t, "GET", s.url("/download?size=2MiB"), ""); r.status != 502 {
		t.Fatalf("a Content-Length over max_response_body: %d, want 502", r.status)
	}
	resp, err := testClient.Get(s.url("/download?size=2MiB&chunked=1"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil {
		t.Fatalf("a chunked body over max_response_body arrived whole-looking (%d bytes)", n)
	}
	if n > 1<<20 {
		t.Fatalf("%d bytes passed, more than max_response_body", n)
	}
}

func TestEventsReachTheClientAsTheyAreSent(t *testing.T) {
	or := startOrigin(t, origin.Options{})
	s := startGateway(t, streamYAML(or.Addr(), "", ""))
	const n = 8
	path := fmt.Sprintf("/events?n=%d&interval=100ms", n)
	direct := eventDelays(t, "http://"+or.Addr()+path, n)
	through := eventDelays(t, s.url(path), n)
	// The gateway adds well under 5 ms (see the README); 50 ms leaves room
	// for a loaded test machine while still failing a buffered stream,
	// whose first event would wait for the last, 700 ms later.
	if through > 50*time.Millisecond {
		t.Fatalf("an event took %v to arrive through the gateway", through)
	}
	t.Logf("worst event delay of %d: direct %v, through the gateway %v", n, direct, through)
}

// eventDelays reads an event stream of n events from url and returns the
// longest time from an event's sent_ns to its arrival.
func eventDelays(t *testing.T, url string, n int) time.Duration {
	t.Helper()
	resp, err := testClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	var worst time.Duration
	seen := 0
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d events: %v", seen, err)
		}
		_, data, ok := strings.Cut(line, "data: ")
		if !ok {
			continue
		}
		_, sent, _ := strings.Cut(data, `"sent_ns":`)
		ns, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(sent), "}"), 10, 64)
		if err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		worst = max(worst, time.Since(time.Unix(0, ns)))
		seen++
	}
	if seen != n {
		t.Fatalf("saw %d events, want %d", seen, n)
	}
	return worst
}

func TestASlowClientHoldsTheGatewaysMemoryBounded(t *testing.T) {
	or := startOrigin(t, origin.Options{WriteTimeout: time.Minute})
	s := startGateway(t, streamYAML(or.Addr(), "    max_response_body: 4GiB\n", ""))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	c := testnet.Dial(t, s.Addr().String())
	c.Send(t, "GET /download?size=1GiB HTTP/1.1\r\nHost: x\r\n\r\n")
	// Read 16 MiB slowly, in 256 KiB sips, while the backend could send a
	// gigabyte: only backpressure keeps it from piling up in the gateway.
	buf := make([]byte, 256<<10)
	var peak uint64
	var read int64
	for read < 16<<20 {
		n, err := io.ReadFull(c.R, buf)
		read += int64(n)
		if err != nil {
			t.Fatalf("after %d bytes: %v", read, err)
		}
		time.Sleep(5 * time.Millisecond)
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	growth := int64(peak) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %d KiB while a client read 16 MiB of a 1 GiB download", growth>>10)
	if growth > 32<<20 {
		t.Fatalf("heap in use grew by %d MiB for one slow download", growth>>20)
	}
}

func TestTheCacheStoresWhatFitsMaxEntryAndPassesStreamsThrough(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	mid, big := strings.Repeat("m", 100<<10), strings.Repeat("z", 2<<20)
	rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		hits.Add(1)
		const head = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
		switch {
		case strings.HasPrefix(r.Path, "/big"):
			fmt.Fprintf(c, head+"Content-Length: %d\r\n\r\n%s", len(big), big)
		case strings.HasPrefix(r.Path, "/mid"):
			fmt.Fprintf(c, head+"Content-Length: %d\r\n\r\n%s", len(mid), mid)
		case strings.HasPrefix(r.Path, "/later"): // chunked, its end still to come once the head is read
			fmt.Fprintf(c, head+"Transfer-Encoding: chunked\r\n\r\n5\r\nsmall\r\n")
			time.Sleep(50 * time.Millisecond)
			fmt.Fprintf(c, "0\r\n\r\n")
		default: // small and chunked, arriving whole with its head
			fmt.Fprintf(c, head+"Transfer-Encoding: chunked\r\n\r\n5\r\nsmall\r\n0\r\n\r\n")
		}
	})
	// buffer_response 64KiB, max_entry 1MiB (the defaults).
	s := startGateway(t, streamYAML(rb.Addr, "", "    cache: {enabled: true}\n"))
	for _, tc := range []struct {
		path, body string
		cached     bool
	}{
		{"/mid", mid, true},         // over buffer_response, within max_entry: read whole, stored
		{"/big", big, false},        // over max_entry: streamed, never stored
		{"/chunked", "small", true}, // chunked, but whole when its head was read: stored
		{"/later", "small", false},  // unknown length until it ends: streamed, never stored
	} {
		before := hits.Load()
		for i := range 2 {
			r := do(t, "GET", s.url(tc.path), "")
			if r.status != 200 || r.body != tc.body {
				t.Fatalf("%s, request %d: %d, %d bytes", tc.path, i, r.status, len(r.body))
			}
			cs := r.header.Get("Cache-Status")
			if i == 1 && tc.cached && !strings.Contains(cs, "hit") {
				t.Fatalf("%s was not served from the cache: %q", tc.path, cs)
			}
			if !tc.cached && !strings.Contains(cs, "not stored: too-large") {
				t.Fatalf("%s: Cache-Status %q, want a miss not stored for being too large", tc.path, cs)
			}
		}
		want := int64(2)
		if tc.cached {
			want = 1
		}
		if n := hits.Load() - before; n != want {
			t.Fatalf("%s: the backend saw %d requests for two GETs, want %d", tc.path, n, want)
		}
	}
}

func TestShutdownWaitsForAStreamThenCutsItAtTheDeadline(t *testing.T) {
	t.Parallel()
	or := startOrigin(t, origin.Options{WriteTimeout: time.Minute})
	t.Run("a stream that ends within the drain finishes", func(t *testing.T) {
		s, done := startOwnedGateway(t, streamYAML(or.Addr(), "", ""))
		resp, err := testClient.Get(s.url("/events?n=6&interval=50ms"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		shut := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			shut <- s.Shutdown(ctx)
		}()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("the stream was cut by a drain with time left: %v", err)
		}
		if got := strings.Count(string(body), "data: "); got != 6 {
			t.Fatalf("%d events, want 6", got)
		}
		if err := <-shut; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		<-done
	})
	t.Run("a stream still running at the deadline is cut", func(t *testing.T) {
		s, done := startOwnedGateway(t, streamYAML(or.Addr(), "", ""))
		resp, err := testClient.Get(s.url("/events?n=1000&interval=50ms"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_ = s.Shutdown(ctx)
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("a stream cut at the drain deadline ended like a whole one")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("the cut stream ended %v after the shutdown began", d)
		}
		<-done
	})
}

// startOwnedGateway runs a gateway the test shuts down itself; done is
// closed when Serve returns.
func startOwnedGateway(t *testing.T, yaml string) (*Server, <-chan struct{}) {
	t.Helper()
	s, err := New(loadConfig(t, yaml), Options{Logger: discardLogger()})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = s.Serve(); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s, done
}

var _ = http.StatusOK

func TestAStreamedAnswerIsLoggedWhenItEndsWithTheBytesSent(t *testing.T) {
	t.Parallel()
	or := startOrigin(t, origin.Options{})
	var logBuf testnet.Buffer
	yaml := strings.Replace(streamYAML(or.Addr(), "", ""), "log:", "access_log: {enabled: true}\nlog:", 1)
	s := startGateway(t, yaml, func(o *Options) { o.AccessLogOutput = &logBuf })
	for _, q := range []string{"size=3MiB", "size=1MiB&chunked=1"} {
		r := do(t, "GET", s.url("/download?"+q), "")
		if r.status != 200 {
			t.Fatalf("%s: %d", q, r.status)
		}
	}
	testnet.Eventually(t, "two access-log lines", func() bool { return strings.Count(logBuf.String(), "\n") >= 2 })
	lines := logBuf.String()
	for _, want := range []string{`"bytes":3145728`, `"bytes":1048576`} {
		if !strings.Contains(lines, want) {
			t.Fatalf("access log lacks %s:\n%s", want, lines)
		}
	}
	if strings.Contains(lines, `"error"`) {
		t.Fatalf("a whole stream was logged as failed:\n%s", lines)
	}
}

func TestAStreamHoldsItsPlaceOnTheBackendAndABrokenOneCountsAgainstIt(t *testing.T) {
	t.Parallel()
	or := startOrigin(t, origin.Options{WriteTimeout: time.Minute})
	s := startGateway(t, streamYAML(or.Addr(), "", ""))
	b := s.table.Load().pools["p"].pool.Backends()[0]
	resp, err := testClient.Get(s.url("/events?n=4&interval=50ms"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.InFlight(); got != 1 {
		t.Fatalf("in flight %d while an event stream runs, want 1", got)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testnet.Eventually(t, "the place given back when the stream ends", func() bool { return b.InFlight() == 0 })
	if got := b.FailStreak(); got != 0 {
		t.Fatalf("fail streak %d after a whole stream", got)
	}

	rb := testnet.StartRawBackend(t, func(c net.Conn, _ testnet.RawRequest) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n%s", strings.Repeat("s", 100000))
		c.Close()
	})
	s2 := startGateway(t, streamYAML(rb.Addr, "", ""))
	b2 := s2.table.Load().pools["p"].pool.Backends()[0]
	if _, closed := rawGet(t, s2, "/short", 3*time.Second); !closed {
		t.Fatal("the client connection stayed open after a short body")
	}
	testnet.Eventually(t, "the broken stream counted against its backend", func() bool {
		return b2.FailStreak() == 1 && b2.InFlight() == 0
	})
}
