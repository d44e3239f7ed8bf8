package bench

import (
	"io"
	"runtime"
	"testing"
	"time"
)

func TestOriginClose(t *testing.T) {
	t.Run("Close returns promptly with hung requests and ends their connections", func(t *testing.T) {
		o := originStart(t, OriginOptions{Fault: FaultHang})
		conns := 0
		for _, path := range []string{"/orders/1", "/echo/x", "/orders/2"} {
			c := originDial(t, o.Addr())
			io.WriteString(c, originGet(path))
			conns++
			defer func() {
				if data, closed := originReadAll(t, c, originTestTimeout); !closed || len(data) != 0 {
					t.Errorf("hung connection got %q (closed %v) after Close, want EOF", data, closed)
				}
			}()
		}
		// An idle keep-alive connection must be closed too.
		idle := originDial(t, o.Addr())
		io.WriteString(idle, originGet("/healthz"))
		if data, _ := originReadAll(t, idle, 300*time.Millisecond); len(data) == 0 {
			t.Fatal("no health answer")
		}
		originWaitRequests(t, o, int64(conns)+1)
		originCloseWithin(t, o)
		if data, closed := originReadAll(t, idle, originTestTimeout); !closed || len(data) != 0 {
			t.Errorf("idle connection got %q (closed %v) after Close, want EOF", data, closed)
		}
	})
	t.Run("Close twice is harmless", func(t *testing.T) {
		o := originStart(t, OriginOptions{})
		originCloseWithin(t, o)
		originCloseWithin(t, o)
	})
	t.Run("no goroutine outlives Close", func(t *testing.T) {
		// Warm up fasthttp's process-wide helpers (its date updater) first.
		warm := originStart(t, OriginOptions{})
		originDo(t, warm.Addr(), originGet("/orders/1"))
		originCloseWithin(t, warm)
		before := runtime.NumGoroutine()

		o, err := StartOrigin(OriginOptions{Fault: FaultHang})
		if err != nil {
			t.Fatal(err)
		}
		faults := []Fault{FaultHang, FaultSlowBody, FaultExtraBytes, FaultExtraBytesLate, FaultNone}
		for _, f := range faults {
			o.SetFault(f)
			c := originDial(t, o.Addr())
			io.WriteString(c, originGet("/orders/1"))
		}
		originWaitRequests(t, o, int64(len(faults)))
		originCloseWithin(t, o)
		deadline := time.Now().Add(originTestTimeout)
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
