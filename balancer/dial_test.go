package balancer

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestDialOpensAConnectionOutsideThePool(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c) // echo
	}()
	b := NewBackend(ln.Addr().String(), 1, testOptions())
	t.Cleanup(b.Close)

	c, err := b.Dial(time.Now().Add(time.Second))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("Dial gave a %T, want a plain *net.TCPConn (splice)", c)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
	st := b.Stats()
	if st.OpenConns != 0 || st.Requests != 1 {
		t.Errorf("stats after Dial: open conns %d, requests %d; want 0 pooled and 1 request", st.OpenConns, st.Requests)
	}
}

func TestDialFailuresAreClassified(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	b := NewBackend(addr, 1, testOptions())
	t.Cleanup(b.Close)
	if _, err := b.Dial(time.Now().Add(time.Second)); !errors.Is(err, ErrConnect) {
		t.Errorf("Dial to a closed port: %v, want ErrConnect", err)
	}
	if _, err := b.Dial(time.Now().Add(-time.Second)); !errors.Is(err, ErrTimeout) {
		t.Errorf("Dial past the deadline: %v, want ErrTimeout", err)
	}
	if st := b.Stats(); st.ConnectErrors != 1 || st.TimeoutErrors != 1 {
		t.Errorf("connect errors %d, timeout errors %d; want 1 and 1", st.ConnectErrors, st.TimeoutErrors)
	}
}
