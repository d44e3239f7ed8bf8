package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// writeDemoConfig writes a demo configuration with one pool of backends
// behind /api/orders, and /v2/orders too when v2 is set.
func writeDemoConfig(t *testing.T, path, listen, admin string, backends []string, v2 bool) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nadmin: {listen: %s}\nlog: {level: info, format: text}\npools:\n  orders:\n    policy: round_robin\n    backends:\n", listen, admin)
	for _, a := range backends {
		fmt.Fprintf(&b, "      - {addr: %s}\n", a)
	}
	b.WriteString("routes:\n  - {name: orders, match: {path_prefix: /api/orders}, strip_prefix: /api, pool: orders}\n")
	if v2 {
		b.WriteString("  - {name: v2, match: {path_prefix: /v2/orders}, strip_prefix: /v2, pool: orders}\n")
	}
	testnet.WriteFile(t, path, b.String())
}

// below is addr with its port lowered by offset.
func below(t *testing.T, addr string, offset int) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	if n-offset < 1 {
		t.Skipf("free port %d is below the offset %d", n, offset)
	}
	return net.JoinHostPort(host, strconv.Itoa(n-offset))
}

// hold keeps addr taken until the test ends, as another program would. A
// port someone else holds already is just as taken.
func hold(t *testing.T, addr string) {
	t.Helper()
	if ln, err := net.Listen("tcp", addr); err == nil {
		t.Cleanup(func() { ln.Close() })
	}
}

func TestDemoMovedByAPortOffsetRunsBesideATakenPort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	const offset = 1000
	// Where the moved demo listens, and the ports the file names.
	listen, admin, a, b := testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t)
	fileListen := below(t, listen, offset)
	hold(t, fileListen)
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	writeDemoConfig(t, cfg, fileListen, below(t, admin, offset), []string{below(t, a, offset), below(t, b, offset)}, false)

	demo := start(t, buildBinary(t), "demo", "-watch=false", "-port-offset", strconv.Itoa(offset), "-c", cfg)
	base := "http://" + listen
	testnet.Eventually(t, "the moved demo to answer", func() bool { st, _, _ := get(base + "/api/orders/42"); return st == 200 })
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		st, h, body := get(base + "/api/orders/42")
		if st != 200 {
			t.Fatalf("demo answered %d %q", st, body)
		}
		seen[h.Get("X-Origin")] = true
	}
	if !seen[a] || !seen[b] {
		t.Errorf("answers came from %v, want the moved origins %s and %s", seen, a, b)
	}
	if st, _, _ := get("http://" + admin + "/readyz"); st != 200 {
		t.Errorf("admin listener moved to %s answered %d", admin, st)
	}
	if !strings.Contains(demo.out.String(), "curl -i "+base+"/api/orders/42") {
		t.Errorf("demo did not print curl lines for %s:\n%s", base, demo.out.String())
	}

	// A reload reads the file again, and must not move the backends back
	// to the file's ports, where no origin listens.
	writeDemoConfig(t, cfg, fileListen, below(t, admin, offset), []string{below(t, a, offset), below(t, b, offset)}, true)
	if err := demo.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, "SIGHUP to add the route", func() bool { st, _, _ := get(base + "/v2/orders/1"); return st != 404 })
	if st, h, body := get(base + "/v2/orders/1"); st != 200 || (h.Get("X-Origin") != a && h.Get("X-Origin") != b) {
		t.Errorf("after the reload: %d from %q %q, want 200 from a moved origin", st, h.Get("X-Origin"), body)
	}
}

func TestDemoListensWhereToldWhenItsPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	taken, listen, admin, a := testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t)
	hold(t, taken)
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	writeDemoConfig(t, cfg, taken, admin, []string{a}, false)

	out, err := exec.Command(buildBinary(t), "demo", "-watch=false", "-c", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-port-offset") {
		t.Errorf("demo on a taken port: err %v, output does not say how to move it:\n%s", err, out)
	}

	start(t, buildBinary(t), "demo", "-watch=false", "-listen", listen, "-c", cfg)
	testnet.Eventually(t, "the demo to answer on -listen", func() bool { st, _, _ := get("http://" + listen + "/api/orders/42"); return st == 200 })
}

func TestDemoHelpNamesTheDemo(t *testing.T) {
	var stderr bytes.Buffer
	err := run([]string{"demo", "-h"}, io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("error %v, want flag.ErrHelp", err)
	}
	if usage := stderr.String(); !strings.HasPrefix(usage, "Usage of demo:") || !strings.Contains(usage, "-port-offset") {
		t.Errorf("demo -h printed:\n%s\nwant the usage of demo, with its flags", usage)
	}
}

func TestDemoRefusesABadListenBeforeStartingAnything(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	backends := []string{testnet.FreeAddr(t), testnet.FreeAddr(t)}
	writeDemoConfig(t, cfg, testnet.FreeAddr(t), testnet.FreeAddr(t), backends, false)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct{ listen, want string }{
		{"bogus", `-listen: invalid address "bogus": want host:port`},
		{busy.Addr().String(), "-listen: listen tcp " + busy.Addr().String() + ": bind: address already in use"},
		{backends[1], "demo: the gateway's listen address " + backends[1] + " is also a backend's"},
	} {
		var stderr bytes.Buffer
		err := run([]string{"demo", "-watch=false", "-listen", tt.listen, "-c", cfg}, io.Discard, &stderr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("-listen %s: error %v, want one with %q", tt.listen, err, tt.want)
		}
		if strings.Contains(stderr.String(), "demo origin started") {
			t.Errorf("-listen %s: origins were started before it was refused:\n%s", tt.listen, stderr.String())
		}
	}
}
