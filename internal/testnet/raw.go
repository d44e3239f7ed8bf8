package testnet

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wait bounds every read and write on a raw connection: generous, and only
// ever reached when the test fails.
const wait = 10 * time.Second

// RawBackend is a hand-written HTTP/1.1 server on loopback, for behaviour
// no well-behaved server shows: broken framing, answers cut short, extra
// bytes, silence. It reads request heads only (a request body is left on
// the connection, so send bodiless requests or read the body in serve) and
// calls serve once per head, which writes whatever it likes on the
// connection, or nothing, and may close it.
type RawBackend struct {
	// Addr is the host:port the backend listens on.
	Addr  string
	conns atomic.Int64
	reqs  atomic.Int64
}

// RawRequest is one request head a RawBackend read.
type RawRequest struct {
	// Head is the request line and header fields as received, up to and
	// including the blank line.
	Head string
	// Path is the request-target of the request line.
	Path string
	// Conn numbers the connection the request came on, from 0 in accept
	// order; Index is the request's position on it, from 0.
	Conn, Index int
	// Seq numbers the request among all the backend read, from 1.
	Seq int64
}

// StartRawBackend starts a RawBackend on a free loopback port; it and every
// connection it accepted are closed when the test ends.
func StartRawBackend(t testing.TB, serve func(c net.Conn, r RawRequest)) *RawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	rb := &RawBackend{Addr: ln.Addr().String()}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards open
		open []net.Conn
	)
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
			conn := int(rb.conns.Add(1)) - 1
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					head, err := readHead(br)
					if err != nil {
						return
					}
					serve(c, RawRequest{Head: head, Path: requestTarget(head), Conn: conn, Index: i, Seq: rb.reqs.Add(1)})
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

// Conns returns how many connections the backend accepted.
func (rb *RawBackend) Conns() int64 { return rb.conns.Load() }

// Requests returns how many request heads the backend read.
func (rb *RawBackend) Requests() int64 { return rb.reqs.Load() }

// readHead reads lines up to and including the blank line ending a head.
func readHead(br *bufio.Reader) (string, error) {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		head.WriteString(line)
		if line == "\r\n" || line == "\n" {
			return head.String(), nil
		}
	}
}

// requestTarget returns the second field of head's request line.
func requestTarget(head string) string {
	line, _, _ := strings.Cut(head, "\n")
	if f := strings.Fields(line); len(f) >= 2 {
		return f[1]
	}
	return ""
}

// OKResponse is a complete 200 answer with body and its Content-Length.
func OKResponse(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// Conn is a raw client connection: for requests no well-behaved client
// sends, and for reading exactly what a server answers, one response at a
// time, and whether it closed the connection.
type Conn struct {
	net.Conn
	// R reads from Conn. Once a response has been read, read through R:
	// bytes after it may already be buffered there.
	R *bufio.Reader
}

// Dial connects to addr with a 10s deadline on every read and write; the
// connection is closed when the test ends.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	return open(t, addr, c, err)
}

// DialTLS is Dial over TLS, trusting whatever certificate addr shows (the
// tests' own self-signed ones).
func DialTLS(t testing.TB, addr string) *Conn {
	t.Helper()
	d := &net.Dialer{Timeout: wait}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificates
	return open(t, addr, c, err)
}

// open finishes Dial and DialTLS: the deadline, and the close at the end.
func open(t testing.TB, addr string, c net.Conn, err error) *Conn {
	t.Helper()
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	return &Conn{Conn: c, R: bufio.NewReader(c)}
}

// Send writes raw as is.
func (c *Conn) Send(t testing.TB, raw string) {
	t.Helper()
	if _, err := io.WriteString(c.Conn, raw); err != nil {
		t.Fatalf("write request: %v", err)
	}
}

// ReadResponse reads the next response and its whole body, failing the
// test when there is none. method is the request's ("HEAD" has no body);
// "" means GET.
func (c *Conn) ReadResponse(t testing.TB, method string) (*http.Response, []byte) {
	t.Helper()
	if method == "" {
		method = http.MethodGet
	}
	resp, err := http.ReadResponse(c.R, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, body
}

// ReadAll reads until the peer closes the connection (closed is then true:
// EOF or a reset), an error, or quiet passes without a byte (closed is then
// false: the peer keeps the connection open and silent). Later reads have
// the usual 10s deadline again.
func (c *Conn) ReadAll(quiet time.Duration) (data []byte, closed bool) {
	defer func() { _ = c.SetReadDeadline(time.Now().Add(wait)) }()
	buf := make([]byte, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.R.Read(buf)
		data = append(data, buf[:n]...)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			return data, false
		default:
			return data, true
		}
	}
}

// Closed reports whether the peer closes the connection, sending nothing
// more, within quiet.
func (c *Conn) Closed(quiet time.Duration) bool {
	data, closed := c.ReadAll(quiet)
	return closed && len(data) == 0
}

// Do sends raw on a new connection and reads one response and its body.
func Do(t testing.TB, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	c := Dial(t, addr)
	c.Send(t, raw)
	return c.ReadResponse(t, "")
}

// RawExchange writes raw on a new connection, closes the connection's
// writing half, and returns the status of the first response (0 when the
// server closed without answering, or answered something that is not HTTP)
// and every byte read until the server closed or went quiet for 3s.
func RawExchange(t testing.TB, addr, raw string) (status int, all string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return 0, ""
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	b, _ := io.ReadAll(c)
	if len(b) == 0 {
		return 0, ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return 0, string(b)
	}
	resp.Body.Close()
	return resp.StatusCode, string(b)
}
