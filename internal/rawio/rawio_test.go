package rawio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns a Conn on one end of a loopback TCP connection and the
// other end as a plain net.Conn.
func pair(t *testing.T) (*Conn, *net.TCPConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	tcp := c.(*net.TCPConn)
	t.Cleanup(func() { tcp.Close(); peer.Close() })
	x, err := New(tcp)
	if err != nil {
		t.Fatal(err)
	}
	return x, tcp, peer
}

func TestReadWaitsForDataAndSeesEOF(t *testing.T) {
	x, _, peer := pair(t)
	go func() {
		time.Sleep(20 * time.Millisecond) // Read must wait, not fail with EAGAIN
		_, _ = peer.Write([]byte("hello"))
		_ = peer.Close()
	}()
	got, err := io.ReadAll(struct{ io.Reader }{x})
	if err != nil || string(got) != "hello" {
		t.Fatalf("ReadAll = %q, %v; want hello, nil (io.EOF at the end)", got, err)
	}
	if n, err := x.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := x.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
}

func TestWriteMovesLargeBuffersWholeWhileThePeerReadsSlowly(t *testing.T) {
	x, _, peer := pair(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: many EAGAINs
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		time.Sleep(20 * time.Millisecond) // let the socket buffers fill
		_, _ = io.Copy(&buf, peer)
		got <- buf.Bytes()
	}()
	n, err := x.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(data))
	}
	if n, err := x.Write(nil); n != 0 || err != nil {
		t.Errorf("Write(nil) = %d, %v; want 0, nil", n, err)
	}
	_ = closeWrite(t, x)
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("peer read %d bytes, not what was written (%d)", len(b), len(data))
	}
}

func closeWrite(t *testing.T, x *Conn) error {
	t.Helper()
	var err error
	cerr := x.raw.Control(func(fd uintptr) { err = shutdownWrite(fd) })
	if cerr != nil {
		return cerr
	}
	return err
}

func TestDeadlinesApply(t *testing.T) {
	x, tcp, _ := pair(t)
	if err := tcp.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := x.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v; want a timeout", err)
	}
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Errorf("Read returned after %v, before its deadline", d)
	}
}

func TestErrorsNameTheConnection(t *testing.T) {
	x, tcp, peer := pair(t)
	_ = peer.(*net.TCPConn).SetLinger(0) // the peer resets instead of closing
	_ = peer.Close()
	time.Sleep(20 * time.Millisecond)
	_, err := x.Read(make([]byte, 8))
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "read" || op.Addr.String() != tcp.RemoteAddr().String() {
		t.Fatalf("Read after a reset = %v; want a *net.OpError for read from %v", err, tcp.RemoteAddr())
	}
	_ = tcp.Close()
	if _, err := x.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v; want net.ErrClosed", err)
	}
}

func TestReadAndWriteAllocateNothing(t *testing.T) {
	x, _, peer := pair(t)
	msg := []byte("ping")
	buf := make([]byte, 16)
	pbuf := make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := x.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, pbuf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a Write and a Read allocate %v times, want 0", allocs)
	}
}

func shutdownWrite(fd uintptr) error { return unix.Shutdown(int(fd), unix.SHUT_WR) }

// echoOnce answers each message the peer reads with reply, after delay.
func echoOnce(t *testing.T, peer net.Conn, want string, reply string, delay time.Duration) <-chan string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(peer, buf); err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(buf)
		time.Sleep(delay)
		_, _ = peer.Write([]byte(reply))
	}()
	return got
}

// exchanges are WriteThenRead and WriteThenWait, which behave alike for a
// peer that speaks only when spoken to.
var exchanges = []struct {
	name string
	do   func(x *Conn, out, p []byte) (int, error)
}{
	{"WriteThenRead", (*Conn).WriteThenRead},
	{"WriteThenWait", func(x *Conn, out, p []byte) (int, error) {
		n, _, err := x.WriteThenWait(out, p, nil)
		return n, err
	}},
}

func TestAnExchangeSendsThenWaitsForTheAnswer(t *testing.T) {
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			x, tcp, peer := pair(t)
			_ = tcp.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := echoOnce(t, peer, "request", "answer", 20*time.Millisecond) // the wait must wait
			buf := make([]byte, 64)
			n, err := ex.do(x, []byte("request"), buf)
			if err != nil || string(buf[:n]) != "answer" {
				t.Fatalf("%s = %q, %v; want answer", ex.name, buf[:n], err)
			}
			if s := <-got; s != "request" {
				t.Fatalf("the peer read %q", s)
			}
		})
	}
}

// Many exchanges with a peer that answers at once: an answer that arrives
// between the write and the wait must not be missed (the wait would last
// until the deadline).
func TestAnExchangeNeverMissesAQuickAnswer(t *testing.T) {
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			x, tcp, peer := pair(t)
			go func() {
				buf := make([]byte, 1)
				for {
					if _, err := io.ReadFull(peer, buf); err != nil {
						return
					}
					if _, err := peer.Write(buf); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 8)
			for i := 0; i < 3000; i++ {
				_ = tcp.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := ex.do(x, []byte{byte(i)}, buf)
				if err != nil || n != 1 || buf[0] != byte(i) {
					t.Fatalf("exchange %d: %d, %v, %v", i, n, err, buf[:n])
				}
			}
		})
	}
}

// WriteThenWait makes no check: it sends whatever the peer said before, and
// what the peer said is read at once or, if the runtime had seen it before
// the call, at the deadline.
func TestWriteThenWaitSendsWithoutAProbe(t *testing.T) {
	x, tcp, peer := pair(t)
	if _, err := peer.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	_ = tcp.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 16)
	n, sent, err := x.WriteThenWait([]byte("request"), buf, nil)
	if sent != len("request") {
		t.Fatalf("WriteThenWait sent %d bytes (%v); want all 7", sent, err)
	}
	if err == nil && string(buf[:n]) != "early" || err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteThenWait = %q, %v; want early or a timeout", buf[:n], err)
	}
	got := make([]byte, 7)
	_ = peer.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "request" {
		t.Fatalf("the peer read %q, %v", got, err)
	}
}

// WriteThenWait's sent runs once, after out is written whole and before the
// wait: here the peer answers only once it has run, small and large writes
// alike (a large one is finished outside the read callback).
func TestWriteThenWaitSignalsOnceWrittenBeforeTheWait(t *testing.T) {
	for _, size := range []int{7, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			x, tcp, peer := pair(t)
			_ = tcp.SetDeadline(time.Now().Add(5 * time.Second))
			out := bytes.Repeat([]byte("r"), size)
			sent := make(chan struct{}, 2)
			go func() {
				if _, err := io.ReadFull(peer, make([]byte, size)); err != nil {
					return
				}
				<-sent
				_, _ = peer.Write([]byte("answer"))
			}()
			buf := make([]byte, 16)
			n, nsent, err := x.WriteThenWait(out, buf, func() { sent <- struct{}{} })
			if err != nil || string(buf[:n]) != "answer" || nsent != size {
				t.Fatalf("WriteThenWait = %q, %d sent, %v; want answer, %d", buf[:n], nsent, err, size)
			}
			if len(sent) != 0 {
				t.Fatal("sent ran more than once")
			}
		})
	}
}

func TestWaitedTellsWhetherAReadFoundItsBytesThere(t *testing.T) {
	x, _, peer := pair(t)
	if _, err := peer.Write([]byte("here")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	buf := make([]byte, 16)
	if n, err := x.Read(buf); err != nil || n != 4 || x.Waited() {
		t.Fatalf("Read = %d, %v, waited %v; want 4 bytes there at once", n, err, x.Waited())
	}
	go func() {
		time.Sleep(50 * time.Millisecond) // after the read has begun
		_, _ = peer.Write([]byte("later"))
	}()
	if n, err := x.Read(buf); err != nil || n != 5 || !x.Waited() {
		t.Fatalf("Read = %d, %v, waited %v; want 5 bytes after a wait", n, err, x.Waited())
	}
}

func TestWriteThenReadSendsNothingWhenTheProbeFindsSomething(t *testing.T) {
	t.Run("bytes nobody asked for", func(t *testing.T) {
		x, _, peer := pair(t)
		if _, err := peer.Write([]byte("stray")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		_, err := x.WriteThenRead([]byte("request"), make([]byte, 64))
		var ns *NotSentError
		if !errors.As(err, &ns) || !ns.Unsolicited {
			t.Fatalf("WriteThenRead = %v; want a *NotSentError for unsolicited bytes", err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := peer.Read(make([]byte, 16)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the peer read %d bytes (%v); want none", n, err)
		}
	})
	t.Run("closed by the peer", func(t *testing.T) {
		x, _, peer := pair(t)
		_ = peer.Close()
		time.Sleep(20 * time.Millisecond)
		_, err := x.WriteThenRead([]byte("request"), make([]byte, 64))
		var ns *NotSentError
		if !errors.As(err, &ns) || ns.Unsolicited || !errors.Is(err, io.EOF) {
			t.Fatalf("WriteThenRead = %v; want a *NotSentError wrapping io.EOF", err)
		}
	})
}

func TestAnExchangeFinishesALargeWriteThenReads(t *testing.T) {
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			x, tcp, peer := pair(t)
			data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: the socket takes part
			_ = tcp.SetDeadline(time.Now().Add(10 * time.Second))
			go func() {
				time.Sleep(20 * time.Millisecond)
				buf := make([]byte, len(data))
				if _, err := io.ReadFull(peer, buf); err != nil || !bytes.Equal(buf, data) {
					_ = peer.Close()
					return
				}
				_, _ = peer.Write([]byte("done"))
			}()
			buf := make([]byte, 16)
			n, err := ex.do(x, data, buf)
			if err != nil || string(buf[:n]) != "done" {
				t.Fatalf("%s = %q, %v; want done", ex.name, buf[:n], err)
			}
		})
	}
}

func TestAnExchangePastItsDeadlineSendsNothing(t *testing.T) {
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			x, tcp, peer := pair(t)
			_ = tcp.SetReadDeadline(time.Now().Add(-time.Second))
			if _, err := ex.do(x, []byte("request"), make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s past the deadline = %v; want a timeout", ex.name, err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, _ := peer.Read(make([]byte, 16)); n != 0 {
				t.Fatalf("the peer read %d bytes; want none", n)
			}
		})
	}
	x, tcp, _ := pair(t)
	_ = tcp.SetReadDeadline(time.Now().Add(-time.Second))
	if _, sent, _ := x.WriteThenWait([]byte("request"), make([]byte, 8), nil); sent != 0 {
		t.Errorf("WriteThenWait past the deadline reports %d bytes sent; want 0", sent)
	}
}

func TestAnExchangeAllocatesNothing(t *testing.T) {
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			x, tcp, peer := pair(t)
			_ = tcp.SetReadDeadline(time.Now().Add(time.Minute))
			msg := []byte("ping")
			buf := make([]byte, 16)
			pbuf := make([]byte, 16)
			go func() {
				for {
					if _, err := io.ReadFull(peer, pbuf[:len(msg)]); err != nil {
						return
					}
					if _, err := peer.Write(msg); err != nil {
						return
					}
				}
			}()
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := ex.do(x, msg, buf); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s allocates %v times, want 0", ex.name, allocs)
			}
		})
	}
}
