package config

import (
	"reflect"
	"slices"
	"sort"
	"testing"
)

func TestKeyPathTellsMapKeysFromListIndexes(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	tests := []struct{ name, want string }{
		{"listen", "listen"},
		{"server.read_timeout", "server.read_timeout"},
		{"pools[orders].timeout", "pools.orders.timeout"},
		{"pools[orders].backends[1].addr", "pools.orders.backends[1].addr"},
		{"pools[0].timeout", "pools.0.timeout"},
		{"pools[a]b].timeout", "pools.a]b.timeout"},
		{"routes[2].match.headers[x-tenant]", "routes[2].match.headers.x-tenant"},
		{"routes[0].match.methods[3]", "routes[0].match.methods[3]"},
		{"pools[broken", "pools[broken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keyPath(tt.name, typ); got != tt.want {
				t.Errorf("keyPath(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestNaturalLessSortsIndexesByNumber(t *testing.T) {
	got := []string{"routes[10].name", "routes[2].pool", "pools.b", "routes[2].name", "listen", "pools.a"}
	sort.Slice(got, func(i, j int) bool { return naturalLess(got[i], got[j]) })
	want := []string{"listen", "pools.a", "pools.b", "routes[2].name", "routes[2].pool", "routes[10].name"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSplitListDropsBlanks(t *testing.T) {
	if got, want := splitList(" a, ,b ,"), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOnlySizesTakeUnits(t *testing.T) {
	// A schema of the kind a future option adds: a byte size beside plain
	// integers. "4MiB" must not slip into the integers as 4194304.
	type limits struct {
		Body  Size  `mapstructure:"body"`
		Burst int64 `mapstructure:"burst"`
		Rate  int   `mapstructure:"rate"`
	}
	tests := []struct {
		name     string
		settings map[string]any
		want     limits
		errs     []string
	}{
		{"a size takes a unit", map[string]any{"body": "4MiB"}, limits{Body: 4 * MiB}, nil},
		{"integers take plain numbers, from YAML or the environment", map[string]any{"burst": 4096, "rate": "100"}, limits{Burst: 4096, Rate: 100}, nil},
		{"an int64 refuses a unit", map[string]any{"burst": "4MiB"}, limits{}, []string{`burst: invalid integer "4MiB"`}},
		{"an int refuses a unit", map[string]any{"rate": "2KB"}, limits{}, []string{`rate: invalid integer "2KB"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got limits
			_, err := decode(tt.settings, &got)
			if msgs := messages(err); !slices.Equal(msgs, tt.errs) {
				t.Errorf("errors %q, want %q", msgs, tt.errs)
			}
			if err == nil && got != tt.want {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestForeignSizesTakeUnits(t *testing.T) {
	// balancer holds max_response_body in an int64 (it cannot import Size);
	// config parses it as a size all the same, and only it.
	pool := func(kv map[string]any) map[string]any {
		return map[string]any{"pools": map[string]any{"orders": kv}}
	}
	var cfg Config
	if _, err := decode(pool(map[string]any{"max_response_body": "2MiB"}), &cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got := cfg.Pools["orders"].MaxResponseBody; got != int64(2*MiB) {
		t.Errorf("max_response_body %d, want %d", got, 2*MiB)
	}
	want := []string{
		`pools.orders.max_conns_per_backend: invalid integer "1KiB"`,
		`pools.orders.max_response_body: invalid size "lots"`,
	}
	_, err := decode(pool(map[string]any{"max_response_body": "lots", "max_conns_per_backend": "1KiB"}), &cfg)
	if got := messages(err); !slices.Equal(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}
