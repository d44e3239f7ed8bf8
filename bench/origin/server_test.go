package origin

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestOptionsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"an error rate above 1", Options{ErrorRate: 1.5}},
		{"a negative payload", Options{PayloadBytes: -1}},
		{"an unknown fault", Options{Fault: "explode"}},
		{"an unknown latency distribution", Options{Latency: Latency{Dist: "pareto"}}},
		{"an address that cannot be listened on", Options{Addr: "127.0.0.1:-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			if o, err := Start(tt.opts); err == nil {
				o.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}

func TestClose(t *testing.T) {
	t.Run("Close returns promptly with hung requests and ends their connections", func(t *testing.T) {
		o := startServer(t, Options{Fault: FaultHang})
		conns := 0
		for _, path := range []string{"/orders/1", "/echo/x", "/orders/2"} {
			c := testnet.Dial(t, o.Addr())
			io.WriteString(c, rawGet(path))
			conns++
			defer func() {
				if data, closed := c.ReadAll(testTimeout); !closed || len(data) != 0 {
					t.Errorf("hung connection got %q (closed %v) after Close, want EOF", data, closed)
				}
			}()
		}
		// An idle keep-alive connection must be closed too.
		idle := testnet.Dial(t, o.Addr())
		io.WriteString(idle, rawGet("/healthz"))
		if data, _ := idle.ReadAll(300 * time.Millisecond); len(data) == 0 {
			t.Fatal("no health answer")
		}
		waitRequests(t, o, int64(conns)+1)
		closeWithin(t, o)
		if data, closed := idle.ReadAll(testTimeout); !closed || len(data) != 0 {
			t.Errorf("idle connection got %q (closed %v) after Close, want EOF", data, closed)
		}
	})
	t.Run("Close twice is harmless", func(t *testing.T) {
		o := startServer(t, Options{})
		closeWithin(t, o)
		closeWithin(t, o)
	})
	t.Run("no goroutine outlives Close", func(t *testing.T) {
		// Warm up fasthttp's process-wide helpers (its date updater) first.
		warm := startServer(t, Options{})
		testnet.Do(t, warm.Addr(), rawGet("/orders/1"))
		closeWithin(t, warm)
		before := runtime.NumGoroutine()

		o, err := Start(Options{Fault: FaultHang})
		if err != nil {
			t.Fatal(err)
		}
		faults := []Fault{FaultHang, FaultSlowBody, FaultExtraBytes, FaultExtraBytesLate, FaultNone}
		for _, f := range faults {
			o.SetFault(f)
			c := testnet.Dial(t, o.Addr())
			io.WriteString(c, rawGet("/orders/1"))
		}
		waitRequests(t, o, int64(len(faults)))
		closeWithin(t, o)
		deadline := time.Now().Add(testTimeout)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("%d goroutines after Close, %d before:\n%s",
					runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestUnderConcurrentLoad(t *testing.T) {
	// Several keep-alive clients at once while another goroutine reads the
	// capture: the race detector checks the counters and the ring.
	o := startServer(t, Options{})
	const clients, perClient = 8, 40
	errs := make(chan error, clients)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
				o.Received()
			}
		}
	}()
	for i := 0; i < clients; i++ {
		go func() {
			c, err := net.DialTimeout("tcp", o.Addr(), testTimeout)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(testTimeout))
			br := bufio.NewReader(c)
			for j := 1; j <= perClient; j++ {
				io.WriteString(c, rawGet("/orders/"+strconv.Itoa(j)))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				if err != nil || resp.StatusCode != 200 {
					errs <- errors.Join(err, errors.New(resp.Status))
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < clients; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	<-readerDone
	if n := o.Requests(); n != clients*perClient {
		t.Errorf("Requests() = %d, want %d", n, clients*perClient)
	}
	if n := len(o.Received()); n != captureSlots {
		t.Errorf("captured %d, want %d", n, captureSlots)
	}
}
