package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// The end-to-end test builds the real binary and runs origins and the
// gateway as separate processes on loopback.

// builtBinary is the sluice binary TestMain built for every test here.
var builtBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builtBinary = filepath.Join(dir, "sluice")
	if out, err := exec.Command("go", "build", "-o", builtBinary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildBinary(t *testing.T) string {
	t.Helper()
	return builtBinary
}

type proc struct {
	cmd *exec.Cmd
	out *testnet.Buffer
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &testnet.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// exits waits for the process to exit by itself, successfully, within
// limit, and fails the test with late otherwise.
func (p *proc) exits(t *testing.T, limit time.Duration, late string) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(limit):
		t.Fatal(late)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func get(url string) (int, http.Header, string) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func configYAML(listen, admin string, orders []string, slow string, extraRoute bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nadmin: {listen: %s}\nlog: {level: info, format: text}\nserver: {drain_timeout: 10s}\npools:\n", listen, admin)
	b.WriteString("  orders:\n    policy: round_robin\n    health_check: {path: /healthz, interval: 100ms, timeout: 80ms, rise: 1, fall: 2}\n    backends:\n")
	for _, a := range orders {
		fmt.Fprintf(&b, "      - {addr: %s}\n", a)
	}
	fmt.Fprintf(&b, "  slow: {backends: [{addr: %s}], timeout: 5s}\n", slow)
	b.WriteString("routes:\n  - {name: orders, match: {path_prefix: /api/orders}, strip_prefix: /api, pool: orders}\n")
	b.WriteString("  - {name: slow, match: {path_prefix: /slow}, strip_prefix: /slow, pool: slow}\n")
	if extraRoute {
		b.WriteString("  - {name: v2, match: {path_prefix: /v2/orders}, strip_prefix: /v2, pool: orders}\n")
	}
	return b.String()
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildBinary(t)
	a, b, slow := testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t)
	originA := start(t, bin, "origin", "-listen", a, "-name", "a")
	start(t, bin, "origin", "-listen", b, "-name", "b")
	start(t, bin, "origin", "-listen", slow, "-name", "slow", "-latency", "fixed:600ms")

	listen, admin := testnet.FreeAddr(t), testnet.FreeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(s string) {
		t.Helper()
		// Write then rename, as editors and config management do.
		tmp := cfgPath + ".tmp"
		testnet.WriteFile(t, tmp, s)
		if err := os.Rename(tmp, cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	write(configYAML(listen, admin, []string{a, b}, slow, false))

	// validate agrees with run.
	if out, err := exec.Command(bin, "validate", "-c", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	gw := start(t, bin, "run", "-c", cfgPath)
	base, adminURL := "http://"+listen, "http://"+admin
	testnet.Eventually(t, "the gateway to be ready", func() bool { st, _, _ := get(adminURL + "/readyz"); return st == 200 })
	testnet.Eventually(t, "both backends healthy", func() bool {
		_, _, body := get(adminURL + "/metrics")
		return strings.Count(testnet.Lines(body, "sluice_backend_healthy{"), "} 1") == 3
	})

	// Traffic reaches both backends.
	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		st, h, body := get(fmt.Sprintf("%s/api/orders/%d", base, i+1))
		if st != 200 || !strings.Contains(body, fmt.Sprint(i+1)) {
			t.Fatalf("request %d: %d %q", i, st, body)
		}
		seen[h.Get("X-Origin")]++
	}
	if seen["a"] != 20 || seen["b"] != 20 {
		t.Errorf("round robin split %v, want 20/20", seen)
	}

	// Kill a backend: no GET is lost (connect failures retry on the other
	// backend; the health check takes it out).
	_ = originA.cmd.Process.Kill()
	_ = originA.cmd.Wait()
	for i := 0; i < 40; i++ {
		if st, h, body := get(base + "/api/orders/5"); st != 200 || h.Get("X-Origin") != "b" {
			t.Fatalf("after killing a, request %d: %d from %q: %q", i, st, h.Get("X-Origin"), body)
		}
	}
	testnet.Eventually(t, "the dead backend to be marked unhealthy", func() bool {
		_, _, body := get(adminURL + "/metrics")
		return strings.Contains(body, fmt.Sprintf(`sluice_backend_healthy{backend="%s",pool="orders"} 0`, a))
	})

	// A changed file is picked up by the watcher; SIGHUP reloads too.
	if st, _, _ := get(base + "/v2/orders/1"); st != 404 {
		t.Fatalf("/v2 before reload: %d", st)
	}
	write(configYAML(listen, admin, []string{a, b}, slow, true))
	testnet.Eventually(t, "the watcher to apply the new route", func() bool { st, _, _ := get(base + "/v2/orders/1"); return st == 200 })

	// A broken file changes nothing, by watcher or by SIGHUP.
	write("listen: [broken\n")
	_ = gw.cmd.Process.Signal(syscall.SIGHUP)
	testnet.Eventually(t, "the failed reload to be counted", func() bool {
		_, _, body := get(adminURL + "/metrics")
		return strings.Contains(body, `sluice_config_reloads_total{result="failure"}`) &&
			!strings.Contains(body, `sluice_config_reloads_total{result="failure"} 0`)
	})
	if st, _, _ := get(base + "/v2/orders/1"); st != 200 {
		t.Fatalf("after a broken file: %d", st)
	}

	// SIGTERM during in-flight requests: every one is answered, then the
	// process exits by itself within the drain deadline.
	const n = 16
	results := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, h, _ := get(base + "/slow/orders/1")
			results <- fmt.Sprintf("%d %s", st, h.Get("X-Origin"))
		}()
	}
	time.Sleep(200 * time.Millisecond) // the slow origin answers after 600ms
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != "200 slow" {
			t.Errorf("in-flight request during SIGTERM ended %q, want 200 from slow", r)
		}
	}
	gw.exits(t, 15*time.Second, "gateway did not exit after SIGTERM")
	if _, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		t.Error("gateway still accepts connections after exit")
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildBinary(t)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := `listen: 127.0.0.1:8080
pools:
  orders: {backends: [{addr: "nope"}]}
routes:
  - {name: a, match: {path_prefix: /a}, pool: orders}
  - {name: b, match: {path_prefix: /b}, pool: ordrs}
  - {name: c, match: {path_prefix: /c}, pool: orders}
`
	testnet.WriteFile(t, path, bad)
	out, err := exec.Command(bin, "validate", "-c", path).CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a bad file:\n%s", out)
	}
	for _, want := range []string{`routes[1].pool: unknown pool "ordrs"`, `pools.orders.backends[0].addr`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

// The README's first command: `sluice demo` starts an origin for every
// backend of the file and the gateway in front of them, in one process.
func TestDemoServesThroughItsOwnOrigins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildBinary(t)
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "sluice ") {
		t.Fatalf("version: %v %q", err, out)
	}
	listen, admin, a, b := testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := fmt.Sprintf("listen: %s\nadmin: {listen: %s}\npools:\n  orders: {policy: round_robin, backends: [{addr: %s}, {addr: %s}]}\n"+
		"routes:\n  - {name: orders, match: {path_prefix: /api/orders}, strip_prefix: /api, pool: orders}\n", listen, admin, a, b)
	testnet.WriteFile(t, cfg, yaml)
	demo := start(t, bin, "demo", "-c", cfg)
	testnet.Eventually(t, "the demo to answer", func() bool { st, _, _ := get("http://" + listen + "/api/orders/42"); return st == 200 })
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		st, h, body := get("http://" + listen + "/api/orders/42")
		if st != 200 || !strings.Contains(body, `"id":42`) {
			t.Fatalf("demo answered %d %q", st, body)
		}
		seen[h.Get("X-Origin")] = true
	}
	if !seen[a] || !seen[b] {
		t.Errorf("answers came from %v, want both demo origins %s and %s", seen, a, b)
	}
	if !strings.Contains(demo.out.String(), "curl -i http://"+listen+"/api/orders/42") {
		t.Errorf("demo did not print the curl lines:\n%s", demo.out.String())
	}
}

// runningGateway is `sluice run -watch=false` on file cfg, in front of one
// origin process listening on orig and slow.
type runningGateway struct {
	*proc
	listen, admin, cfg, orig, slow string
}

// startRun starts the origin and the gateway on configYAML's file for them,
// changed by edit, and waits until the gateway is ready.
func startRun(t *testing.T, edit func(yaml string) string) *runningGateway {
	t.Helper()
	bin := buildBinary(t)
	g := &runningGateway{orig: testnet.FreeAddr(t), slow: testnet.FreeAddr(t)}
	start(t, bin, "origin", "-listen", g.orig+","+g.slow)
	g.listen, g.admin = testnet.FreeAddr(t), testnet.FreeAddr(t)
	g.cfg = filepath.Join(t.TempDir(), "gateway.yaml")
	testnet.WriteFile(t, g.cfg, edit(configYAML(g.listen, g.admin, []string{g.orig}, g.slow, false)))
	g.proc = start(t, bin, "run", "-watch=false", "-c", g.cfg)
	testnet.Eventually(t, "the gateway to be ready", func() bool { st, _, _ := get("http://" + g.admin + "/readyz"); return st == 200 })
	return g
}

// SIGHUP alone reloads a changed file (the watcher is off here).
func TestSIGHUPReloadsTheFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	gw := startRun(t, func(yaml string) string { return yaml })
	testnet.WriteFile(t, gw.cfg, configYAML(gw.listen, gw.admin, []string{gw.orig}, gw.slow, true))
	time.Sleep(300 * time.Millisecond) // a watcher, were one running, would have acted by now
	if st, _, _ := get("http://" + gw.listen + "/v2/orders/1"); st != 404 {
		t.Fatalf("the change was applied without SIGHUP (status %d); the watcher should be off", st)
	}
	if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, "SIGHUP to apply the new route", func() bool { st, _, _ := get("http://" + gw.listen + "/v2/orders/1"); return st == 200 })
}

// SIGTERM with server.shutdown_delay: /readyz fails at once while requests
// are still answered (with Connection: close); a second SIGTERM skips the
// rest of the delay and the process exits by itself.
func TestSIGTERMFailsReadinessServesThroughTheDelayAndASecondSkipsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	gw := startRun(t, func(yaml string) string {
		return strings.Replace(yaml, "server: {drain_timeout: 10s}", "server: {drain_timeout: 2m, shutdown_delay: 1m}", 1)
	})
	listen, admin := gw.listen, gw.admin

	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, "/readyz to fail", func() bool { st, _, _ := get("http://" + admin + "/readyz"); return st == 503 })
	resp, err := client.Get("http://" + listen + "/api/orders/1")
	if err != nil {
		t.Fatalf("a request during the delay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("a request during the delay: %d, Connection: close %v; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}

	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gw.exits(t, 20*time.Second, "the gateway still waits out its one-minute delay after a second SIGTERM")
}
