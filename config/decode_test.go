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
