package balancer

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestAnExchangeDeadlineIsKeptWithinTheSlackAndReplacedOtherwise(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}()
	c, err := dial(ln.Addr().String(), time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bc := c.(*backendConn)
	const slack = time.Second
	base := time.Now().Add(time.Hour)
	for _, step := range []struct {
		name    string
		foreign bool // a deadline set by other code first
		want    time.Time
		inForce time.Time
	}{
		{"the first deadline is applied", false, base, base},
		{"a later one within the slack is not", false, base.Add(slack), base},
		{"a later one beyond the slack is", false, base.Add(slack + 1), base.Add(slack + 1)},
		{"an earlier one is", false, base, base},
		{"after another deadline was set, the same one is", true, base, base},
		{"none is", false, time.Time{}, time.Time{}},
	} {
		if step.foreign {
			_ = bc.SetReadDeadline(time.Now().Add(time.Minute))
		}
		moved := bc.moved.Load()
		if err := bc.settleDeadline(step.want, slack); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if !bc.deadline.Equal(step.inForce) || (step.foreign && !moved) || bc.moved.Load() {
			t.Errorf("%s: in force %v (moved before %v, after %v), want %v", step.name,
				bc.deadline, moved, bc.moved.Load(), step.inForce)
		}
	}
}

// A request with a short deadline on a connection the request before left
// with a long one times out at its own deadline.
func TestAShorterDeadlineOnAReusedConnectionIsInForce(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	rb := testnet.StartRawBackend(t, func(w net.Conn, r testnet.RawRequest) {
		if r.Path == "/hang" {
			<-release
		}
		_, _ = w.Write([]byte(testnet.OKResponse(r.Path)))
	})
	t.Cleanup(free) // before the backend's cleanup, which waits for it
	b := NewBackend(rb.Addr, 1, testOptions())
	t.Cleanup(b.Close)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.Header.SetHost("backend")
	req.SetRequestURI("/warm")
	if err := b.Do(req, resp, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Answered after 5s if the deadline is not in force: then Do succeeds
	// and the test fails instead of hanging.
	time.AfterFunc(5*time.Second, free)
	req.SetRequestURI("/hang")
	if err := b.Do(req, resp, time.Now().Add(200*time.Millisecond)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if n := rb.Conns(); n != 1 {
		t.Errorf("backend saw %d connections, want the one reused", n)
	}
}
