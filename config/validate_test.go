package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/balancer"
)

// validConfig is a complete, valid configuration that each case breaks in
// its own way.
func validConfig() *Config {
	c := Default()
	c.Pools = map[string]balancer.Options{
		"orders": {Backends: []balancer.BackendOptions{{Addr: "127.0.0.1:9001"}}},
	}
	c.Routes = []Route{{
		Name:        "orders",
		Match:       Match{PathPrefix: "/api/orders", Methods: []string{"GET"}, Headers: map[string]string{"X-Tenant": "acme"}},
		StripPrefix: "/api",
		Pool:        "orders",
	}}
	return &c
}

// writeKeyPair writes a self-signed certificate and its key as PEM files
// into dir and returns their paths.
func writeKeyPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestValidateAcceptsAValidConfig(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateAcceptsAMatchingKeyPair(t *testing.T) {
	c := validConfig()
	c.TLS.CertFile, c.TLS.KeyFile = writeKeyPair(t, t.TempDir(), "a")
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateRules(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := writeKeyPair(t, dir, "a")
	_, keyB := writeKeyPair(t, dir, "b")
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		// Listeners.
		{"an empty listen is refused", func(c *Config) { c.Listen = "" },
			[]string{"listen: must not be empty"}},
		{"a listen without a port is refused", func(c *Config) { c.Listen = "127.0.0.1" },
			[]string{`listen: invalid address "127.0.0.1": want host:port`}},
		{"a listen with a bad port is refused", func(c *Config) { c.Listen = "127.0.0.1:http2" },
			[]string{`listen: invalid port "http2" in address "127.0.0.1:http2" (want 0-65535)`}},
		{"admin on the public address is refused", func(c *Config) { c.Admin.Listen = c.Listen },
			[]string{`admin.listen: must differ from listen "127.0.0.1:8080"`}},
		{"an empty admin listen disables it", func(c *Config) { c.Admin.Listen = "" }, nil},

		// TLS.
		{"a cert without a key is refused", func(c *Config) { c.TLS.CertFile = certA },
			[]string{"tls.key_file: required when tls.cert_file is set"}},
		{"a key without a cert is refused", func(c *Config) { c.TLS.KeyFile = keyA },
			[]string{"tls.cert_file: required when tls.key_file is set"}},
		{"a missing file is named", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = missing, keyA },
			[]string{"tls.cert_file: stat " + missing + ": no such file or directory"}},
		{"a key that does not match the cert is refused", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = certA, keyB },
			[]string{"tls: cannot load certificate and key: tls: private key does not match public key"}},

		// Server.
		{"negative timeouts are refused", func(c *Config) {
			c.Server.ReadTimeout, c.Server.WriteTimeout = -time.Second, -2*time.Second
			c.Server.IdleTimeout, c.Server.DrainTimeout = -3*time.Second, -4*time.Second
		}, []string{
			"server.read_timeout: -1s must not be negative",
			"server.write_timeout: -2s must not be negative",
			"server.idle_timeout: -3s must not be negative",
			"server.drain_timeout: -4s must not be negative",
		}},
		{"zero timeouts are allowed", func(c *Config) { c.Server.ReadTimeout, c.Server.DrainTimeout = 0, 0 }, nil},
		{"a negative shutdown delay is refused", func(c *Config) { c.Server.ShutdownDelay = -time.Second },
			[]string{"server.shutdown_delay: -1s must not be negative"}},
		{"a shutdown delay shorter than the drain timeout is allowed", func(c *Config) {
			c.Server.ShutdownDelay, c.Server.DrainTimeout = 5*time.Second, 30*time.Second
		}, nil},
		{"a shutdown delay that uses up the drain timeout is refused", func(c *Config) {
			c.Server.ShutdownDelay, c.Server.DrainTimeout = 30*time.Second, 30*time.Second
		}, []string{"server.shutdown_delay: 30s must be shorter than server.drain_timeout (30s), which it counts towards"}},
		{"a shutdown delay needs a drain timeout", func(c *Config) {
			c.Server.ShutdownDelay, c.Server.DrainTimeout = time.Second, 0
		}, []string{"server.shutdown_delay: 1s must be shorter than server.drain_timeout (0s), which it counts towards"}},
		{"sizes must be positive", func(c *Config) {
			c.Server.MaxRequestBody, c.Server.MaxHeaderBytes, c.Server.MaxURILength = 0, -1, 0
		}, []string{
			"server.max_request_body: 0 must be positive",
			"server.max_header_bytes: -1 must be positive",
			"server.max_uri_length: 0 must be positive",
		}},
		{"a header limit that no request head fits is refused", func(c *Config) { c.Server.MaxHeaderBytes = 10 },
			[]string{"server.max_header_bytes: 10 is too small to hold a request head; at least 1024 (1KiB), 16KiB by default"}},
		{"1KiB of head is allowed", func(c *Config) { c.Server.MaxHeaderBytes = KiB }, nil},
		{"trusted proxies take CIDRs and IPs", func(c *Config) {
			c.Server.TrustedProxies = []string{"10.0.0.0/8", "::1", "192.168.0.1", "10.0.0.0/33", "proxy.local"}
		}, []string{
			`server.trusted_proxies[3]: invalid CIDR or IP "10.0.0.0/33"`,
			`server.trusted_proxies[4]: invalid CIDR or IP "proxy.local"`,
		}},

		// Logs.
		{"an unknown log level and format are refused", func(c *Config) { c.Log = Log{Level: "verbose", Format: "xml"} },
			[]string{
				`log.level: unknown level "verbose" (want debug, info, warn or error)`,
				`log.format: unknown format "xml" (want json or text)`,
			}},
		{"an access log in a missing directory is refused", func(c *Config) {
			c.AccessLog = AccessLog{Enabled: true, Path: filepath.Join(dir, "no", "access.log"), Buffer: KiB}
		}, []string{`access_log.path: directory "` + filepath.Join(dir, "no") + `" does not exist`}},
		{"an access log file in an existing directory is fine", func(c *Config) {
			c.AccessLog = AccessLog{Enabled: true, Path: filepath.Join(dir, "access.log"), Buffer: KiB}
		}, nil},
		{"an access log buffer must be positive", func(c *Config) { c.AccessLog.Buffer = 0 },
			[]string{"access_log.buffer: 0 must be positive"}},

		// Pools.
		{"no pools is refused", func(c *Config) { c.Pools = nil; c.Routes = nil },
			[]string{"pools: at least one pool is required", "routes: at least one route is required"}},
		{"balancer problems are prefixed with the pool, pools in name order", func(c *Config) {
			c.Pools["b"] = balancer.Options{Backends: []balancer.BackendOptions{{Addr: "127.0.0.1:1"}, {Addr: "127.0.0.1"}}}
			c.Pools["a"] = balancer.Options{Policy: "random", Backends: []balancer.BackendOptions{{Addr: "127.0.0.1:1"}}}
		}, []string{
			`pools.a.policy: unknown policy "random" (want round_robin, weighted_round_robin, least_conn, p2c_ewma or consistent_hash)`,
			`pools.b.backends[1].addr: missing port in address "127.0.0.1"`,
		}},

		// Routes.
		{"a route needs a name and a pool", func(c *Config) { c.Routes[0].Name, c.Routes[0].Pool = "", "" },
			[]string{"routes[0].name: required", "routes[0].pool: required (or shards)"}},
		{"a duplicate route name is refused", func(c *Config) { c.Routes = append(c.Routes, c.Routes[0]) },
			[]string{`routes[1].name: duplicate route name "orders" (first at routes[0])`}},
		{"an unknown pool is refused", func(c *Config) { c.Routes[0].Pool = "ordrs" },
			[]string{`routes[0].pool: unknown pool "ordrs"`}},
		{"what a route matches is left to the gateway", func(c *Config) {
			// gateway/internal/route checks host, path, methods and headers
			// where it compiles them, for validate and run alike
			// (gateway.Check); config has no second opinion to disagree.
			c.Routes[0].Match = Match{Host: "example.com:443", Path: "api", Methods: []string{"get"}, Headers: map[string]string{"X-A": ""}}
			c.Routes[0].StripPrefix = ""
		}, nil},
		{"strip_prefix must be a prefix of the path", func(c *Config) { c.Routes[0].StripPrefix = "/apx" },
			[]string{`routes[0].strip_prefix: "/apx" is not a prefix of path_prefix "/api/orders"`}},
		{"strip_prefix must end at a segment boundary", func(c *Config) { c.Routes[0].StripPrefix = "/api/ord" },
			[]string{`routes[0].strip_prefix: "/api/ord" does not end at a "/" boundary of path_prefix "/api/orders"`}},
		{"strip_prefix may be the whole prefix or end in a slash", func(c *Config) {
			r := c.Routes[0]
			c.Routes[0].StripPrefix = "/api/orders"
			r.Name, r.StripPrefix = "two", "/api/"
			c.Routes = append(c.Routes, r)
		}, nil},
		{"a route takes a pool or shards, not both", func(c *Config) {
			c.Routes[0].Shards = Shards{Key: "header:X-Customer-ID", Pools: []string{"orders"}}
		}, []string{"routes[0].pool: set either pool or shards, not both"}},
		{"shards need a valid key and known, distinct pools", func(c *Config) {
			c.Routes[0].Pool = ""
			c.Routes[0].Shards = Shards{Key: "body:id", Pools: []string{"orders", "nope", "orders"}}
		}, []string{
			`routes[0].shards.key: ` + keyErr("body:id"),
			`routes[0].shards.pools[1]: unknown pool "nope"`,
			`routes[0].shards.pools[2]: "orders" is already shard 0`,
		}},
		{"a shard map needs its key", func(c *Config) {
			c.Routes[0].Pool = ""
			c.Routes[0].Shards = Shards{Pools: []string{"orders"}}
		}, []string{"routes[0].shards.key: required (header:NAME, cookie:NAME, query:NAME, path:N or client)"}},
		{"retries are checked", func(c *Config) {
			c.Routes[0].Timeout = time.Second
			c.Routes[0].Retries = Retries{Attempts: 11, On: []string{"connect", "500", "5xx", "404"}, MinPerSecond: new(-1), PerTryTimeout: 2 * time.Second}
		}, []string{
			"routes[0].retries.attempts: 11 must be between 1 and 10",
			`routes[0].retries.on[3]: unknown condition "404" (want connect, timeout, reset, 5xx or a status from 500 to 599)`,
			"routes[0].retries.min_per_second: -1 must not be negative (0: no retries beyond the budget)",
			"routes[0].retries.per_try_timeout: 2s must not exceed the route's timeout 1s",
		}},
		{"an unknown priority is refused", func(c *Config) { c.Routes[0].Priority = "urgent" },
			[]string{`routes[0].priority: unknown priority "urgent" (want low, normal or high)`}},
		{"upgrade protocols are tokens, named once, any case", func(c *Config) {
			c.Routes[0].Upgrade = []string{"websocket", "", "web socket", "WebSocket", "h2c", "foo/2"}
			c.Routes[0].Tunnel = Tunnel{IdleTimeout: -time.Second, MaxDuration: -time.Second}
		}, []string{
			"routes[0].upgrade[1]: must not be empty (a protocol such as websocket)",
			`routes[0].upgrade[2]: "web socket" is not a protocol token (RFC 9110 section 7.8, e.g. websocket)`,
			`routes[0].upgrade[3]: "WebSocket" is already upgrade[0]`,
			"routes[0].upgrade[4]: h2c cannot be tunnelled (the gateway forwards HTTP/1.1 only)",
			"routes[0].tunnel.idle_timeout: -1s must not be negative",
			"routes[0].tunnel.max_duration: -1s must not be negative",
		}},
		{"a websocket route with tunnel bounds is fine", func(c *Config) {
			c.Routes[0].Upgrade = []string{"websocket"}
			c.Routes[0].Tunnel = Tunnel{IdleTimeout: time.Minute, MaxDuration: time.Hour}
		}, nil},
		{"a negative max_concurrency is refused", func(c *Config) { c.Server.MaxConcurrency = -1 },
			[]string{"server.max_concurrency: -1 must not be negative (0: no limit)"}},
		{"strip_prefix applies to an exact path too", func(c *Config) {
			c.Routes[0].Match = Match{Path: "/v1/ping"}
			c.Routes[0].StripPrefix = "/v2"
		}, []string{`routes[0].strip_prefix: "/v2" is not a prefix of path "/v1/ping"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			if got := messages(c.Validate()); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateListsEveryProblemInSchemaOrder(t *testing.T) {
	c := validConfig()
	c.Listen = ""
	c.Server.ReadTimeout = -time.Second
	c.Log.Level = "loud"
	c.Pools["z"] = balancer.Options{}
	c.Pools["a"] = balancer.Options{Backends: []balancer.BackendOptions{{Addr: ""}}}
	c.Routes[0].Pool = "ordrs"
	c.Routes = append(c.Routes, Route{Name: "", Pool: "orders"})
	want := []string{
		"listen: must not be empty",
		"server.read_timeout: -1s must not be negative",
		`log.level: unknown level "loud" (want debug, info, warn or error)`,
		"pools.a.backends[0].addr: required (host:port)",
		"pools.z.backends: at least one backend is required",
		`routes[0].pool: unknown pool "ordrs"`,
		"routes[1].name: required",
	}
	for range 3 { // map order must not show
		if got := messages(c.Validate()); !slices.Equal(got, want) {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
	}
}

func TestValidateDoesNotChangeTheConfig(t *testing.T) {
	c := validConfig()
	c.Pools["orders"] = balancer.Options{Backends: []balancer.BackendOptions{{Addr: "127.0.0.1:1"}}}
	_ = c.Validate()
	if got := c.Pools["orders"]; got.Timeout != 0 || got.Backends[0].Weight != 0 {
		t.Errorf("Validate filled defaults into the config: %+v", got)
	}
}

func TestTrustedPrefixes(t *testing.T) {
	s := Server{TrustedProxies: []string{"10.1.2.3/8", "::1", "192.168.0.1"}}
	var got []string
	for _, p := range s.TrustedPrefixes() {
		got = append(got, p.String())
	}
	want := []string{"10.0.0.0/8", "::1/128", "192.168.0.1/32"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// keyErr is the balancer's verdict on a key source, which config passes on.
func keyErr(s string) string {
	_, err := balancer.ParseKeySource(s)
	return err.Error()
}
