package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// startOrigin starts a synthetic order backend on a free loopback port.
func startOrigin(t *testing.T, o origin.Options) *origin.Server {
	t.Helper()
	or, err := origin.Start(o)
	if err != nil {
		t.Fatalf("start origin: %v", err)
	}
	t.Cleanup(func() { or.Close() })
	return or
}

// gatewayYAML is a configuration with one pool "orders" over addrs and one
// route "orders" on /api/orders stripping /api, and a route "echo" on /echo
// to the same pool.
func gatewayYAML(addrs ...string) string {
	var b strings.Builder
	b.WriteString("listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nlog: {level: error}\n")
	b.WriteString("pools:\n  orders:\n    timeout: 2s\n    backends:\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "      - {addr: %s}\n", a)
	}
	b.WriteString("routes:\n  - name: orders\n    match: {path_prefix: /api/orders}\n    strip_prefix: /api\n    pool: orders\n")
	b.WriteString("  - name: echo\n    match: {path_prefix: /echo}\n    pool: orders\n")
	return b.String()
}

func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	return testnet.WriteFile(t, filepath.Join(t.TempDir(), "gateway.yaml"), yaml)
}

func loadConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Load(writeConfig(t, yaml))
	if err != nil {
		t.Fatalf("config:\n%s\nerror: %v", yaml, err)
	}
	return cfg
}

// startGateway runs a gateway with the given configuration and stops it when
// the test ends.
func startGateway(t *testing.T, yaml string, opts ...func(*Options)) *Server {
	t.Helper()
	o := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range opts {
		f(&o)
	}
	s, err := New(loadConfig(t, yaml), o)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return s
}

func (s *Server) url(path string) string { return "http://" + s.Addr().String() + path }

// response is what a test client saw.
type response struct {
	status int
	header http.Header
	body   string
}

var testClient = &http.Client{Timeout: 10 * time.Second}

func do(t *testing.T, method, url string, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serveRaw returns a function that parses raw into a request, as the
// fasthttp server does, and runs it through the gateway's handler.
func serveRaw(t testing.TB, s *Server, raw string) func() int {
	var (
		ctx      fasthttp.RequestCtx
		rd       bytes.Reader
		br       = bufio.NewReaderSize(nil, 4096)
		remote   = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
		rawBytes = []byte(raw)
	)
	ctx.Init(&fasthttp.Request{}, remote, nil)
	return func() int {
		rd.Reset(rawBytes)
		br.Reset(&rd)
		ctx.Request.Reset()
		ctx.Response.Reset()
		if err := ctx.Request.Read(br); err != nil {
			t.Fatalf("parse: %v", err)
		}
		s.handle(&ctx)
		return ctx.Response.StatusCode()
	}
}
