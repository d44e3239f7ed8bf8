package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench"
)

func TestReloadKeepsUnchangedBackendsAndRefusesBrokenFiles(t *testing.T) {
	a := startOrigin(t, bench.OriginOptions{Name: "a"})
	b := startOrigin(t, bench.OriginOptions{Name: "b"})
	yaml := gatewayYAML(a.Addr())
	path := writeConfig(t, yaml)
	s := startGateway(t, yaml)
	do(t, "GET", s.url("/api/orders/1"), "")
	before := s.table.Load().pools["orders"].pool.Backends()[0]

	// A changed file: a second backend and a renamed route.
	changed := strings.Replace(gatewayYAML(a.Addr(), b.Addr()), "name: orders", "name: orders-v2", 1)
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadFile(path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	after := s.table.Load().pools["orders"].pool.Backends()
	if len(after) != 2 || after[0] != before {
		t.Fatalf("backend %s was not carried over (got %v)", a.Addr(), after)
	}
	if after[0].Stats().Requests == 0 {
		t.Error("carried-over backend lost its counters")
	}
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		seen[do(t, "GET", s.url("/api/orders/1"), "").header.Get("X-Origin")] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("after reload requests reached %v, want a and b", seen)
	}
	metrics := do(t, "GET", "http://"+s.AdminAddr().String()+"/metrics", "").body
	if !strings.Contains(metrics, `route="orders-v2"`) || strings.Contains(metrics, `route="orders"`) {
		t.Error("metrics do not follow the renamed route")
	}

	// Broken files change nothing.
	for _, broken := range []string{
		"listen: [oops\n",
		strings.Replace(changed, "pool: orders\n", "pool: ordrs\n", 1),
	} {
		if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.ReloadFile(path); err == nil {
			t.Fatalf("reload of a broken file succeeded:\n%s", broken)
		}
		if r := do(t, "GET", s.url("/api/orders/1"), ""); r.status != 200 {
			t.Fatalf("after a broken reload: status %d", r.status)
		}
	}
	metrics = do(t, "GET", "http://"+s.AdminAddr().String()+"/metrics", "").body
	if !strings.Contains(metrics, `sluice_config_reloads_total{result="failure"} 2`) {
		t.Errorf("failed reloads not counted:\n%s", grepLines(metrics, "reloads"))
	}
}

func TestTLSIsTerminatedAndReloaded(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, "first")
	yaml := strings.Replace(gatewayYAML(o.Addr()), "log:", fmt.Sprintf("tls: {cert_file: %s, key_file: %s}\nlog:", certFile, keyFile), 1)
	path := writeConfig(t, yaml)
	s := startGateway(t, yaml)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}} //nolint:gosec // self-signed test cert
	get := func() (*http.Response, string) {
		resp, err := client.Get("https://" + s.Addr().String() + "/echo/tls")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	resp, cn := get()
	if resp.StatusCode != 200 || cn != "first" {
		t.Fatalf("status %d cert %q", resp.StatusCode, cn)
	}
	if got, _ := lastReceived(t, o).Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", got)
	}
	writeSelfSigned(t, certFile, keyFile, "second")
	if err := s.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if _, cn := get(); cn != "second" {
		t.Errorf("after reload the certificate is %q, want second", cn)
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAdminListenerReportsStateAndMetrics(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	s := startGateway(t, gatewayYAML(o.Addr(), deadAddr(t)))
	for i := 0; i < 4; i++ {
		do(t, "GET", s.url("/api/orders/1"), "")
	}
	admin := "http://" + s.AdminAddr().String()
	if r := do(t, "GET", admin+"/healthz", ""); r.status != 200 {
		t.Errorf("/healthz %d", r.status)
	}
	eventually(t, "readyz", func() bool { return do(t, "GET", admin+"/readyz", "").status == 200 })

	var pools []poolView
	if err := json.Unmarshal([]byte(do(t, "GET", admin+"/admin/pools", "").body), &pools); err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 || pools[0].Name != "orders" || len(pools[0].Backends) != 2 {
		t.Fatalf("/admin/pools = %+v", pools)
	}
	if pools[0].Backends[1].ConnectErrors == 0 {
		t.Errorf("the dead backend shows no connect errors: %+v", pools[0].Backends[1])
	}

	m := do(t, "GET", admin+"/metrics", "").body
	for _, want := range []string{
		`sluice_requests_total{code="2xx",route="orders"} 4`,
		`sluice_request_duration_seconds_count{route="orders"} 4`,
		`sluice_requests_in_flight{route="orders"} 0`,
		fmt.Sprintf(`sluice_backend_healthy{backend="%s",pool="orders"} 1`, o.Addr()),
		fmt.Sprintf(`sluice_upstream_requests_total{backend="%s",pool="orders"}`, o.Addr()),
		`sluice_upstream_errors_total{backend=`,
		`sluice_config_reloads_total{result="success"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestAccessLogWritesOneJSONLinePerRequest(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{})
	out := &syncBuffer{}
	yaml := strings.Replace(gatewayYAML(o.Addr()), "log:", "access_log: {enabled: true}\nlog:", 1)
	s := startGateway(t, yaml, func(o *Options) { o.AccessLogOutput = out })
	do(t, "GET", s.url("/api/orders/9"), "", "X-Request-ID", "log-me")
	rawExchange(t, s.Addr().String(), "GET /nope\"}\\ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	eventually(t, "two access log lines", func() bool { return strings.Count(out.String(), "\n") >= 2 })
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	if first["request_id"] != "log-me" || first["status"] != float64(200) || first["route"] != "orders" || first["backend"] != o.Addr() {
		t.Errorf("access log line %v", first)
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatalf("a line with a control character in the URI is not valid JSON: %q: %v", lines[1], err)
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{Latency: bench.OriginLatency{Dist: "fixed", Fixed: 300 * time.Millisecond}})
	s, err := New(loadConfig(t, gatewayYAML(o.Addr())), Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	const n = 20
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := testClient.Get(s.url("/api/orders/3"))
			if err != nil {
				statuses <- -1
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	eventually(t, "requests in flight", func() bool { return o.Requests() >= n })
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Errorf("an in-flight request ended with %d during shutdown", st)
		}
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("the gateway still accepts connections after shutdown")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestLogsReportStartReloadsAndHealthTransitions(t *testing.T) {
	o := startOrigin(t, bench.OriginOptions{Fault: bench.FaultHealthFail})
	logs := &syncBuffer{}
	yaml := strings.Replace(gatewayYAML(o.Addr()), "    timeout: 2s\n",
		"    timeout: 2s\n    health_check: {path: /healthz, interval: 50ms, rise: 1, fall: 1}\n", 1)
	path := writeConfig(t, yaml)
	s := startGateway(t, yaml, func(opts *Options) {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	eventually(t, "the start-up line", func() bool { return strings.Contains(logs.String(), `"msg":"sluice listening"`) })
	eventually(t, "the health transition", func() bool {
		return strings.Contains(logs.String(), `"msg":"backend unhealthy"`) && strings.Contains(logs.String(), o.Addr())
	})
	if err := s.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("listen: [broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = s.ReloadFile(path)
	for _, want := range []string{`"msg":"configuration reloaded"`, `"msg":"configuration not reloaded; keeping the running one"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}
