package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/internal/testnet"
	"go.yaml.in/yaml/v3"
)

// minimal is the smallest file that loads: one pool, one route.
const minimal = `
pools:
  orders:
    backends: [{addr: 127.0.0.1:9001}]
routes:
  - name: orders
    pool: orders
`

// writeConfig writes content to a fresh file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	return testnet.WriteFile(t, filepath.Join(t.TempDir(), "sluice.yaml"), content)
}

// messages returns the message of every problem in err, in order.
func messages(err error) []string {
	var out []string
	for _, e := range Problems(err) {
		out = append(out, e.Error())
	}
	return out
}

func TestLoadExampleGivesExactlyItsValues(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "example.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Listen: "127.0.0.1:8080",
		Admin:  Admin{Listen: "127.0.0.1:9901"},
		Server: Server{
			ReadTimeout:    10 * time.Second,
			WriteTimeout:   10 * time.Second,
			IdleTimeout:    60 * time.Second,
			MaxRequestBody: 4 * MiB,
			BufferRequest:  4 * MiB,
			MaxHeaderBytes: 16 * KiB,
			MaxURILength:   8 * KiB,
			MergeSlashes:   true,
			TrustedProxies: []string{},
			DrainTimeout:   30 * time.Second,
		},
		Log:       Log{Level: "info", Format: "json"},
		AccessLog: AccessLog{Path: "stdout", Buffer: 64 * KiB},
		Redis:     Redis{Timeout: 20 * time.Millisecond},
		Pools: map[string]balancer.Options{
			"orders": balancer.Options{
				Policy:   "round_robin",
				Backends: []balancer.BackendOptions{{Addr: "127.0.0.1:9001", Weight: 1}, {Addr: "127.0.0.1:9002"}},
				HealthCheck: balancer.HealthCheckOptions{
					Path: "/healthz", Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 3,
				},
				Timeout: 5 * time.Second,
			}.WithDefaults(),
		},
		Routes: []Route{{
			Name: "orders",
			Match: Match{
				PathPrefix: "/api/orders",
				Methods:    []string{"GET", "POST"},
				Headers:    map[string]string{"x-tenant": "acme"},
			},
			StripPrefix: "/api",
			Pool:        "orders",
		}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load gave\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestLoadFullExample(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := len(cfg.Routes); got != 5 {
		t.Errorf("routes: got %d, want 5", got)
	}
	if got := cfg.Pools["orders"].MaxResponseBody; got != int64(64*MiB) {
		t.Errorf("pools.orders.max_response_body: got %d, want %d", got, 64*MiB)
	}
	if got := cfg.Routes[3]; !slices.Equal(got.Upgrade, []string{"websocket"}) || got.Tunnel.IdleTimeout != time.Minute {
		t.Errorf("routes[3]: upgrade %q, tunnel %+v; want [websocket], idle_timeout 1m", got.Upgrade, got.Tunnel)
	}
	if got := cfg.Routes[4].Match.PathPrefix; got != "/" {
		t.Errorf("route without a path: path_prefix %q, want \"/\"", got)
	}
	if got := cfg.Server.ShutdownDelay; got != 5*time.Second {
		t.Errorf("server.shutdown_delay: got %v, want 5s", got)
	}
}

func TestLoadFillsDefaults(t *testing.T) {
	cfg, err := Load(writeConfig(t, minimal))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Default()
	want.Pools = map[string]balancer.Options{
		"orders": balancer.Options{Backends: []balancer.BackendOptions{{Addr: "127.0.0.1:9001"}}}.WithDefaults(),
	}
	want.Routes = []Route{{Name: "orders", Pool: "orders", Match: Match{PathPrefix: "/"}}}
	if !reflect.DeepEqual(cfg, &want) {
		t.Errorf("Load gave\n%+v\nwant\n%+v", cfg, &want)
	}
}

func TestLoadDefaultsMatchTheirDocumentation(t *testing.T) {
	d := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", d.Listen, "127.0.0.1:8080"},
		{"admin.listen", d.Admin.Listen, "127.0.0.1:9901"},
		{"server.read_timeout", d.Server.ReadTimeout, 10 * time.Second},
		{"server.write_timeout", d.Server.WriteTimeout, 10 * time.Second},
		{"server.idle_timeout", d.Server.IdleTimeout, 60 * time.Second},
		{"server.max_request_body", d.Server.MaxRequestBody, Size(4 << 20)},
		{"server.max_header_bytes", d.Server.MaxHeaderBytes, Size(16 << 10)},
		{"server.max_uri_length", d.Server.MaxURILength, Size(8 << 10)},
		{"server.merge_slashes", d.Server.MergeSlashes, true},
		{"server.allow_encoded_slash", d.Server.AllowEncodedSlash, false},
		{"server.allow_matrix_params", d.Server.AllowMatrixParams, false},
		{"server.allow_underscores_in_headers", d.Server.AllowUnderscoresInHeaders, false},
		{"server.drain_timeout", d.Server.DrainTimeout, 30 * time.Second},
		{"server.shutdown_delay", d.Server.ShutdownDelay, time.Duration(0)},
		{"log.level", d.Log.Level, "info"},
		{"log.format", d.Log.Format, "json"},
		{"access_log.enabled", d.AccessLog.Enabled, false},
		{"access_log.path", d.AccessLog.Path, "stdout"},
		{"access_log.buffer", d.AccessLog.Buffer, Size(64 << 10)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: default %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadEnvironment(t *testing.T) {
	file := minimal + `
listen: 127.0.0.1:8080
server:
  read_timeout: 10s
  merge_slashes: true
`
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "a duration variable wins over the file",
			env:  map[string]string{"SLUICE_SERVER_READ_TIMEOUT": "3s"},
			check: func(t *testing.T, c *Config) {
				if c.Server.ReadTimeout != 3*time.Second {
					t.Errorf("read_timeout %v, want 3s", c.Server.ReadTimeout)
				}
			},
		},
		{
			name: "listen is overridden",
			env:  map[string]string{"SLUICE_LISTEN": "127.0.0.1:18080"},
			check: func(t *testing.T, c *Config) {
				if c.Listen != "127.0.0.1:18080" {
					t.Errorf("listen %q", c.Listen)
				}
			},
		},
		{
			name: "an empty admin listen disables the admin listener",
			env:  map[string]string{"SLUICE_ADMIN_LISTEN": ""},
			check: func(t *testing.T, c *Config) {
				if c.Admin.Listen != "" {
					t.Errorf("admin.listen %q, want empty", c.Admin.Listen)
				}
			},
		},
		{
			name: "booleans, sizes and lists are parsed from strings",
			env: map[string]string{
				"SLUICE_SERVER_MERGE_SLASHES":    "false",
				"SLUICE_SERVER_MAX_REQUEST_BODY": "1MiB",
				"SLUICE_SERVER_TRUSTED_PROXIES":  "10.0.0.0/8, ::1",
				"SLUICE_ACCESS_LOG_ENABLED":      "true",
			},
			check: func(t *testing.T, c *Config) {
				if c.Server.MergeSlashes {
					t.Error("merge_slashes still true")
				}
				if c.Server.MaxRequestBody != MiB {
					t.Errorf("max_request_body %v, want 1MiB", c.Server.MaxRequestBody)
				}
				if want := []string{"10.0.0.0/8", "::1"}; !slices.Equal(c.Server.TrustedProxies, want) {
					t.Errorf("trusted_proxies %q, want %q", c.Server.TrustedProxies, want)
				}
				if !c.AccessLog.Enabled {
					t.Error("access_log.enabled still false")
				}
			},
		},
		{
			name: "a key the file does not set can still be overridden",
			env:  map[string]string{"SLUICE_LOG_LEVEL": "debug"},
			check: func(t *testing.T, c *Config) {
				if c.Log.Level != "debug" {
					t.Errorf("log.level %q", c.Log.Level)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := Load(writeConfig(t, file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestLoadNamesTheVariableOfABadValue(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		file string
		want []string
	}{
		{"a bad duration names its variable",
			map[string]string{"SLUICE_SERVER_READ_TIMEOUT": "abc"}, minimal,
			[]string{`SLUICE_SERVER_READ_TIMEOUT: invalid duration "abc"`}},
		{"a variable wins over the file, and so does its error",
			map[string]string{"SLUICE_SERVER_READ_TIMEOUT": "10 seconds"}, minimal + "server: {read_timeout: 10s}\n",
			[]string{`SLUICE_SERVER_READ_TIMEOUT: invalid duration "10 seconds"`}},
		{"a value that decodes but does not validate names its variable",
			map[string]string{"SLUICE_LISTEN": "nope"}, minimal,
			[]string{`SLUICE_LISTEN: invalid address "nope": want host:port`}},
		{"an element of a list names its variable and index",
			map[string]string{"SLUICE_SERVER_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, minimal,
			[]string{`SLUICE_SERVER_TRUSTED_PROXIES[1]: invalid CIDR or IP "proxy.local"`}},
		{"a bad value from the file keeps its key though variables are set",
			map[string]string{"SLUICE_LISTEN": "127.0.0.1:1"}, minimal + "server: {read_timeout: 10 seconds}\n",
			[]string{`server.read_timeout: invalid duration "10 seconds"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := Load(writeConfig(t, tt.file))
			if got := messages(err); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadKeepsTheKeyPathOfAVariablesError(t *testing.T) {
	t.Setenv("SLUICE_SERVER_READ_TIMEOUT", "abc")
	_, err := Load(writeConfig(t, minimal))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "server.read_timeout" || fe.Env != "SLUICE_SERVER_READ_TIMEOUT" {
		t.Errorf("got %#v, want a FieldError with both the key and the variable", fe)
	}
}

func TestUnknownVariablesAreWarnedAbout(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin",
		"SLUICE_LISTEN=127.0.0.1:8080",
		"SLUICE_SERVER_READ_TIMOUT=3s",
		"SLUICE_POOLS_ORDERS_TIMEOUT=1s",
		"sluice_admin_listen=",
		"SLUICE_XYZZY=1",
		"SLUICEX=1",
	}
	want := []string{
		"SLUICE_POOLS_ORDERS_TIMEOUT is set but names no setting; it is ignored (pools and routes come from the file only)",
		"SLUICE_SERVER_READ_TIMOUT is set but names no setting; it is ignored (did you mean SLUICE_SERVER_READ_TIMEOUT?)",
		"SLUICE_XYZZY is set but names no setting; it is ignored",
		"sluice_admin_listen is set but names no setting; it is ignored (did you mean SLUICE_ADMIN_LISTEN?)",
	}
	if got := unknownVariables(environ); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestLoadReturnsWarningsForUnknownVariables(t *testing.T) {
	t.Setenv("SLUICE_SERVER_READ_TIMOUT", "3s")
	cfg, err := Load(writeConfig(t, minimal))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := "SLUICE_SERVER_READ_TIMOUT is set but names no setting; it is ignored (did you mean SLUICE_SERVER_READ_TIMEOUT?)"
	if !slices.Contains(cfg.Warnings, want) {
		t.Errorf("warnings %q lack %q", cfg.Warnings, want)
	}
	if cfg.Server.ReadTimeout != 10*time.Second {
		t.Errorf("read_timeout %v: the misspelt variable was used", cfg.Server.ReadTimeout)
	}
}

func TestLoadWarnsAboutSettingsWithoutEffect(t *testing.T) {
	cfg, err := Load(writeConfig(t, minimal+`  - {name: ws, match: {path: /ws}, pool: orders, tunnel: {idle_timeout: 5m}}
  - {name: h, match: {path: /h}, pool: orders, rate_limit_headers: true}
  - {name: fine, match: {path: /f}, pool: orders, upgrade: [websocket], tunnel: {idle_timeout: 5m}}
`))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		"routes[1].tunnel: the route has no upgrade, so it opens no tunnel: these settings have no effect",
		"routes[2].rate_limit_headers: the route has no rate_limits, so there is nothing to report: no header is added",
	}
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("warnings\n%q\nwant\n%q", cfg.Warnings, want)
	}
}

func TestLoadRefusesASecondDocument(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, err string
	}{
		{"a second document", minimal + "---\nserver: {read_timeout: 1s}\n", "line 8: a second YAML document"},
		{"one that begins with ---", "---\n" + minimal, ""},
		{"a trailing ---", minimal + "---\n", ""},
		{"a trailing --- and a comment", minimal + "---\n# the end\n", ""},
		{"an empty mapping after it", minimal + "--- {}\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.yaml))
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("Load: %v, want an error with %q", err, tt.err)
			}
		})
	}
}

func TestLoadRefusesKeysDifferingOnlyInCase(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"two pools", `
pools:
  Orders: {backends: [{addr: 127.0.0.1:9001}]}
  orders: {backends: [{addr: 127.0.0.1:9002}]}
routes: [{name: a, pool: orders}]
`, []string{`pools.orders: "Orders" (line 3) and "orders" (line 4) differ only in case; names are case-insensitive, so one would replace the other`}},
		{"two header conditions", minimal + `    match: {headers: {X-Tenant: a, x-TENANT: b}}
`, []string{`routes[0].match.headers.x-tenant: "X-Tenant" (line 8) and "x-TENANT" (line 8) differ only in case; names are case-insensitive, so one would replace the other`}},
		{"a schema key written twice", minimal + "listen: 127.0.0.1:1\nLISTEN: 127.0.0.1:2\n",
			[]string{`listen: "listen" (line 8) and "LISTEN" (line 9) differ only in case; names are case-insensitive, so one would replace the other`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.yaml))
			if got := messages(err); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadAcceptsAPoolNamedInAnyCase(t *testing.T) {
	cfg, err := Load(writeConfig(t, `
pools:
  Orders: {backends: [{addr: 127.0.0.1:9001}]}
routes: [{name: a, pool: ORDERS}]
`))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if _, ok := cfg.Pools["orders"]; !ok || cfg.Routes[0].Pool != "orders" {
		t.Errorf("pools %v, route pool %q: want both folded to \"orders\"", cfg.Pools, cfg.Routes[0].Pool)
	}
}

func TestEnvVarsNamesEveryScalarKey(t *testing.T) {
	vars := EnvVars()
	for name, key := range map[string]string{
		"SLUICE_LISTEN":                 "listen",
		"SLUICE_SERVER_READ_TIMEOUT":    "server.read_timeout",
		"SLUICE_ADMIN_LISTEN":           "admin.listen",
		"SLUICE_TLS_CERT_FILE":          "tls.cert_file",
		"SLUICE_ACCESS_LOG_BUFFER":      "access_log.buffer",
		"SLUICE_SERVER_TRUSTED_PROXIES": "server.trusted_proxies",
	} {
		if vars[name] != key {
			t.Errorf("%s: got %q, want %q", name, vars[name], key)
		}
	}
	for name := range vars {
		if strings.HasPrefix(name, "SLUICE_POOLS") || strings.HasPrefix(name, "SLUICE_ROUTES") {
			t.Errorf("%s: pools and routes have no variables", name)
		}
	}
}

func TestLoadRefusesUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "a misspelt top-level key is named",
			yaml: minimal + "lisen: :8080\n",
			want: []string{"lisen: unknown key"},
		},
		{
			name: "a misspelt nested key is named with its path",
			yaml: minimal + "server: {read_timout: 1s}\n",
			want: []string{"server.read_timout: unknown key"},
		},
		{
			name: "keys inside list elements and pools are found",
			yaml: `
pools:
  orders:
    backends: [{addr: 127.0.0.1:9001, wieght: 2}]
    health_check: {pth: /healthz}
routes:
  - name: orders
    pool: orders
    match: {path_prefx: /api}
  - name: other
    pool: orders
    strip: /x
`,
			want: []string{
				"pools.orders.backends[0].wieght: unknown key",
				"pools.orders.health_check.pth: unknown key",
				"routes[0].match.path_prefx: unknown key",
				"routes[1].strip: unknown key",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.yaml))
			if got := messages(err); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadRefusesBadValues(t *testing.T) {
	// Each file is complete but for its one bad value, so that the value's
	// problem is the only one.
	const routes = "routes: [{name: orders, pool: orders}]\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"a duration without a valid unit", minimal + "server: {read_timeout: 10 seconds}",
			[]string{`server.read_timeout: invalid duration "10 seconds"`}},
		{"a bare number as a duration", minimal + "server: {write_timeout: 10}",
			[]string{`server.write_timeout: invalid duration 10: a number needs a unit, e.g. "10s"`}},
		{"a bad size", minimal + "server: {max_request_body: 4 MBs}",
			[]string{`server.max_request_body: invalid size "4 MBs"`}},
		{"a fractional size", minimal + "server: {max_request_body: 1.5}",
			[]string{`server.max_request_body: invalid size 1.5: must be a whole number of bytes`}},
		{"a bad boolean", minimal + "server: {merge_slashes: maybe}",
			[]string{`server.merge_slashes: invalid boolean "maybe"`}},
		{"a mapping where a string belongs", minimal + "listen: {host: x}",
			[]string{`listen: expected a string, got a mapping`}},
		{"a string where a mapping belongs", minimal + "server: fast",
			[]string{`server: expected a mapping, got the string "fast"`}},
		{"a mapping where a list belongs", minimal + "server: {trusted_proxies: {a: b}}",
			[]string{`server.trusted_proxies: expected a list, got a mapping`}},
		{"a bad integer inside a pool", routes + "pools: {orders: {backends: [{addr: 127.0.0.1:9001}], health_check: {rise: many}}}",
			[]string{`pools.orders.health_check.rise: invalid integer "many"`}},
		{"a size in a pool", routes + "pools: {orders: {backends: [{addr: 127.0.0.1:9001}], max_response_body: lots}}",
			[]string{`pools.orders.max_response_body: invalid size "lots"`}},
		{"a streaming threshold in a pool", routes + "pools: {orders: {backends: [{addr: 127.0.0.1:9001}], buffer_response: big}}",
			[]string{`pools.orders.buffer_response: invalid size "big"`}},
		{"a list element of the wrong type", "pools: {orders: {backends: [{addr: 127.0.0.1:9001}]}}\nroutes: [{name: a, pool: orders, match: {methods: [GET, [POST]]}}]",
			[]string{`routes[0].match.methods[1]: expected a string, got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.yaml+"\n"))
			if got := messages(err); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadAcceptsNumbersWhereTextIsMeant(t *testing.T) {
	cfg, err := Load(writeConfig(t, `
server: {max_request_body: 1048576}
pools:
  orders:
    backends: [{addr: 127.0.0.1:9001}]
    max_response_body: 2MiB
    buffer_response: 128KiB
routes:
  - name: orders
    pool: Orders
    match: {headers: {X-Version: 2}}
`))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Server.MaxRequestBody != MiB {
		t.Errorf("max_request_body %v", cfg.Server.MaxRequestBody)
	}
	if got := cfg.Routes[0].Match.Headers["x-version"]; got != "2" {
		t.Errorf("header value %q, want \"2\"", got)
	}
	if got := cfg.Pools["orders"].MaxResponseBody; got != int64(2*MiB) {
		t.Errorf("max_response_body %d", got)
	}
	if got := cfg.Pools["orders"].BufferResponse; got != int64(128*KiB) {
		t.Errorf("buffer_response %d", got)
	}
	if got := cfg.Routes[0].Pool; got != "orders" {
		t.Errorf("pool %q, want it lower-cased to match the pool key", got)
	}
}

func TestLoadNamesTheFileAndLineOfASyntaxError(t *testing.T) {
	path := writeConfig(t, "listen: 127.0.0.1:8080\nserver:\n  read_timeout: [10s\n")
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load accepted broken YAML")
	}
	if msg := err.Error(); !strings.HasPrefix(msg, path+": yaml: line ") {
		t.Errorf("error %q does not start with the file and line", msg)
	}
}

func TestLoadNamesAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want a not-exist error naming %s", err, path)
	}
}

func TestLoadValidates(t *testing.T) {
	_, err := Load(writeConfig(t, strings.Replace(minimal, "pool: orders", "pool: ordrs", 1)))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "routes[0].pool" || err.Error() != `routes[0].pool: unknown pool "ordrs"` {
		t.Errorf("got %v, want the unknown pool reported as a FieldError", err)
	}
}

func TestLoadListsEveryProblemAtOnce(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"two bad values of one section", minimal + "server: {read_timeout: x, max_request_body: y}", []string{
			`server.max_request_body: invalid size "y"`,
			`server.read_timeout: invalid duration "x"`,
		}},
		{"bad values in a pool and in a route", `
pools: {orders: {timeout: q, backends: [{addr: 127.0.0.1:9001}]}}
routes: [{name: orders, pool: orders, timeout: w}]`, []string{
			`pools.orders.timeout: invalid duration "q"`,
			`routes[0].timeout: invalid duration "w"`,
		}},
		{"a bad value, then what is wrong with the rest", `
listen: nope
server: {read_timeout: x}
pools: {orders: {backends: [{addr: 127.0.0.1:9001}]}}
routes: [{name: orders, pool: nope}]`, []string{
			`listen: invalid address "nope": want host:port`,
			`routes[0].pool: unknown pool "nope"`,
			`server.read_timeout: invalid duration "x"`,
		}},
		// A failed value stands at its default: a rule comparing it with
		// a neighbour would blame the neighbour for the default.
		{"a neighbour is not compared with a failed value", minimal + "server: {drain_timeout: abc, shutdown_delay: 40s}", []string{
			`server.drain_timeout: invalid duration "abc"`,
		}},
		{"nor in a health check", `
pools: {orders: {health_check: {path: /h, interval: x, timeout: 2s}, backends: [{addr: 127.0.0.1:9001}]}}
routes: [{name: orders, pool: orders}]`, []string{
			`pools.orders.health_check.interval: invalid duration "x"`,
		}},
		{"a route's strip_prefix is not checked against a failed match", `
pools: {orders: {backends: [{addr: 127.0.0.1:9001}]}}
routes: [{name: orders, pool: orders, match: {path_prefix: [x]}, strip_prefix: /api}]`, []string{
			`routes[0].match.path_prefix: expected a string, got a list`,
		}},
		{"a top-level value that failed silences the rest", `
listen: [127.0.0.1:9901]
admin: {listen: 127.0.0.1:8080}
pools: [orders]
routes: [{name: orders, pool: orders}]`, []string{
			`listen: expected a string, got a list`,
			`pools: expected a mapping, got a list`,
		}},
		{"a pool with a bad value still exists for its routes", `
pools: {orders: {health_check: {rise: many}, backends: [{addr: 127.0.0.1:9001}, {addr: "127.0.0.1:0"}]}}
routes: [{name: orders, pool: orders}, {name: orders, pool: orders}]`, []string{
			`pools.orders.backends[1].addr: invalid port "0" in address "127.0.0.1:0" (want 1-65535)`,
			`pools.orders.health_check.rise: invalid integer "many"`,
			`routes[1].name: duplicate route name "orders" (first at routes[0])`,
		}},
		{"nothing is said of a value left at its zero by a failure", `
pools: {orders: {backends: many}}
routes: [{name: [orders], pool: orders}]`, []string{
			`pools.orders.backends: expected a list, got the string "many"`,
			`routes[0].name: expected a string, got a list`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.yaml+"\n"))
			if got := messages(err); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadUsesNoSharedState(t *testing.T) {
	a := writeConfig(t, minimal+"listen: 127.0.0.1:1111\n")
	b := writeConfig(t, minimal+"log: {level: debug}\n")
	if _, err := Load(a); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" {
		t.Errorf("a key from an earlier Load leaked: listen %q", cfg.Listen)
	}
}

func TestFullExampleHasEveryKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[Config]()
	written := map[string]bool{}
	writtenKeys("", doc, typ, written)
	for _, key := range schemaKeys("", typ) {
		if !written[key] {
			t.Errorf("testdata/full.yaml lacks %s: give it with its default and what it is for", key)
		}
	}
}

// schemaKeys lists the leaf keys of the schema type t, a map's names
// written "*" and a list's elements "[]" ("pools.*.backends[].addr").
func schemaKeys(prefix string, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && t.NumField() > 0:
		var keys []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			switch {
			case name == "-" || !f.IsExported():
			case opts == "squash":
				keys = append(keys, schemaKeys(prefix, f.Type)...)
			default:
				keys = append(keys, schemaKeys(joinPath(prefix, name), f.Type)...)
			}
		}
		return keys
	case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct:
		return schemaKeys(joinPath(prefix, "*"), t.Elem())
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return schemaKeys(prefix+"[]", t.Elem())
	}
	return []string{prefix}
}

// writtenKeys records in out the keys of data, a YAML document decoded
// for the schema type t, in schemaKeys' form.
func writtenKeys(prefix string, data any, t reflect.Type, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out[prefix] = true
	switch m, isMap := asMap(data); {
	case t.Kind() == reflect.Struct && isMap:
		for k, v := range m {
			if f, ok := fieldByKey(t, k); ok {
				writtenKeys(joinPath(prefix, k), v, f.Type, out)
			}
		}
	case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct && isMap:
		for _, v := range m {
			writtenKeys(joinPath(prefix, "*"), v, t.Elem(), out)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		list, _ := data.([]any)
		for _, v := range list {
			writtenKeys(prefix+"[]", v, t.Elem(), out)
		}
	}
}
