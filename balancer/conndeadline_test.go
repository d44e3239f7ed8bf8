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
		name     string
		foreign  func() // other code sets a deadline first
		readOnly bool   // settleReadDeadline, not settleDeadline
		want     time.Time
		applied  bool
	}{
		{"the first deadline is applied", nil, false, base, true},
		{"a later one within the slack is not", nil, false, base.Add(slack), false},
		{"a later one beyond the slack is", nil, false, base.Add(slack + 1), true},
		{"an earlier one is", nil, false, base, true},
		{"after another read deadline was set, the same one is", func() { _ = bc.SetReadDeadline(base) }, false, base, true},
		{"after another write deadline was set, the same one is", func() { _ = bc.SetWriteDeadline(base) }, false, base, true},
		{"for reading, a later one within the slack is not", nil, true, base.Add(slack), false},
		{"for reading, after a write deadline was set, still not", func() { _ = bc.SetWriteDeadline(base) }, true, base.Add(slack), false},
		{"for reading, after a read deadline was set, it is", func() { _ = bc.SetReadDeadline(base) }, true, base.Add(slack), true},
		{"none is", nil, false, time.Time{}, true},
	} {
		if step.foreign != nil {
			step.foreign()
		}
		rd := bc.rd
		settle := bc.settleDeadline
		if step.readOnly {
			settle = bc.settleReadDeadline
		}
		if err := settle(step.want, slack); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		wantRD := rd
		if step.applied {
			wantRD = step.want
		}
		if !bc.rd.Equal(wantRD) || bc.rdMoved.Load() {
			t.Errorf("%s: read deadline in force %v (moved %v), want %v", step.name, bc.rd, bc.rdMoved.Load(), wantRD)
		}
		if !step.readOnly && (!bc.wd.Equal(wantRD) || bc.wdMoved.Load()) {
			t.Errorf("%s: write deadline in force %v (moved %v), want %v", step.name, bc.wd, bc.wdMoved.Load(), wantRD)
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
