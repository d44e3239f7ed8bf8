package testnet

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server process started for one test on a free loopback
// port, with nothing persisted. A test may kill, pause (SIGSTOP), resume and
// restart it to see how its code behaves when Redis fails; Cleanup stops it.
type Redis struct {
	t    testing.TB
	port int
	dir  string

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
}

// StartRedis starts a redis-server for t on a free port of 127.0.0.1 and waits
// until it answers PING. Without redis-server on PATH the test is skipped,
// unless CI=true, where it fails: CI must run every test.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required under CI=true: %v", err)
		}
		t.Skipf("redis-server not installed (%v); CI=true makes this a failure", err)
	}
	r := &Redis{t: t, port: freePort(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// Kill stops the server at once with SIGKILL; Restart brings it back on the
// same port, empty.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Pause freezes the server with SIGSTOP: connections stay open and requests
// hang, as with a server stuck in a long command or a stalled host.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

// Restart kills the server if it runs and starts a new, empty one on the
// same port.
func (r *Redis) Restart() {
	r.Kill()
	r.start()
}

func (r *Redis) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(sig)
	}
}

func (r *Redis) start() {
	r.t.Helper()
	cmd := exec.Command("redis-server",
		"--bind", "127.0.0.1", "--port", fmt.Sprint(r.port),
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--protected-mode", "no", "--loglevel", "warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(r.Addr()) == nil {
			return
		}
		if time.Now().After(deadline) {
			r.Kill()
			r.t.Fatalf("redis-server on %s did not answer PING within 10s", r.Addr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *Redis) stop() {
	r.Resume() // a stopped process ignores nothing but SIGKILL; be explicit
	r.Kill()
}

// ping sends one inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected answer %q", line)
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before redis-server binds it; that is rare enough on loopback and
// shows as a start-up failure, never as a wrong result.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
