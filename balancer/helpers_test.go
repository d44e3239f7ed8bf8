package balancer

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// testOptions are defaulted options with test-friendly (generous) timeouts.
func testOptions(addrs ...string) Options {
	o := Options{Timeout: 5 * time.Second, ConnectTimeout: 2 * time.Second}
	for _, a := range addrs {
		o.Backends = append(o.Backends, BackendOptions{Addr: a})
	}
	return o.WithDefaults()
}

// startServer serves handler on a free loopback port until the test ends.
func startServer(t testing.TB, handler fasthttp.RequestHandler) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: handler, CloseOnShutdown: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			// Close the listener ourselves: Shutdown does not know it yet if
			// Serve has not started.
			_ = ln.Close()
			_ = s.Shutdown()
			<-done
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// rawBackend is a hand-written HTTP/1.1 server on loopback, for behaviour
// no well-behaved server shows. serve is called once per request with the
// request's path and the connection's number (0 for the first accepted) and
// index of the request on that connection; it writes whatever it likes.
type rawBackend struct {
	addr  string
	conns atomic.Int32
}

func startRawBackend(t *testing.T, serve func(w net.Conn, path string, conn, req int)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			n := int(rb.conns.Add(1)) - 1
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					path, err := readRequestHead(br)
					if err != nil {
						return
					}
					serve(c, path, n, i)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return rb
}

// readRequestHead reads a bodiless request's head and returns its path.
func readRequestHead(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	fields := strings.Fields(line)
	if len(fields) != 3 {
		return "", errors.New("bad request line")
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if l == "\r\n" {
			return fields[1], nil
		}
	}
}

func okResponse(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// get sends GET path to b and returns the body, failing the test on error.
func get(t *testing.T, b *Backend, path string) string {
	t.Helper()
	body, err := tryGet(b, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return body
}

func tryGet(b *Backend, path string) (string, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(path)
	req.Header.SetHost("backend")
	if err := b.Do(req, resp, time.Now().Add(5*time.Second)); err != nil {
		return "", err
	}
	return string(resp.Body()), nil
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
