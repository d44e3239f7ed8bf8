package cache

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	d := Options{}.WithDefaults()
	if d.Memory != DefaultMemory || d.MaxEntry != DefaultMaxEntry || d.RedisTimeout != DefaultRedisTimeout ||
		d.LockTimeout != DefaultLockTimeout || d.LeaseTTL != DefaultLockTimeout || d.Counters != DefaultMemory/256 ||
		d.PurgeChannel != DefaultPurgeChannel || d.Now == nil {
		t.Errorf("defaults: %+v", d)
	}
	if small := (Options{Memory: 1 << 10}).WithDefaults(); small.MaxEntry != 1<<10 {
		t.Errorf("a memory below the default max_entry should cap it: %d", small.MaxEntry)
	}
	if err := (&Options{}).Validate(); err != nil {
		t.Errorf("the zero Options do not validate: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"negative memory", Options{Memory: -1}, "memory: -1 must not be negative"},
		{"max_entry over memory", Options{Memory: 1 << 20, MaxEntry: 2 << 20}, "max_entry: 2097152 is larger than memory"},
		{"negative timeout", Options{RedisTimeout: -time.Second}, "redis_timeout: -1s must not be negative"},
		{"lease poll too slow for the lock timeout", Options{LockTimeout: time.Second, LeasePoll: 600 * time.Millisecond},
			"lease_poll: 600ms must be less than half of lock_timeout"},
		{"negative writers", Options{Writers: -2}, "writers: -2 must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestRouteOptions(t *testing.T) {
	tests := []struct {
		name string
		o    RouteOptions
		want string // "" for valid
	}{
		{"a full route", RouteOptions{Enabled: true, DefaultTTL: time.Minute, MaxEntry: 1 << 20,
			Key: []string{"header:Accept-Language", "cookie:currency", "query:lang"}}, ""},
		{"negative default_ttl", RouteOptions{DefaultTTL: -1}, "default_ttl"},
		{"negative max_entry", RouteOptions{MaxEntry: -1}, "max_entry"},
		{"negative heuristic_max", RouteOptions{HeuristicMax: new(time.Duration(-1))}, "heuristic_max"},
		{"negative stale_if_error", RouteOptions{StaleIfError: -1}, "stale_if_error"},
		{"unknown key part", RouteOptions{Key: []string{"body:x"}}, "key[0]"},
		{"repeated key part", RouteOptions{Key: []string{"header:Accept", "header:accept"}}, "key[1]: \"header:accept\" repeats key[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestNewPolicy(t *testing.T) {
	p, err := NewPolicy(RouteOptions{Enabled: true, Key: []string{"header:Accept-Language"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxEntry != DefaultMaxEntry || len(p.Key) != 1 || string(p.Key[0].Name) != "accept-language" {
		t.Errorf("policy %+v", p)
	}
	if _, err := NewPolicy(RouteOptions{MaxEntry: 2 << 20}, Options{Memory: 1 << 20}); err == nil {
		t.Error("a route max_entry over the cache memory was accepted")
	}
	d := func(d time.Duration) *time.Duration { return &d }
	for _, tt := range []struct {
		set  *time.Duration
		want time.Duration
	}{{nil, DefaultHeuristicMax}, {d(24 * time.Hour), 24 * time.Hour}, {d(0), 0}} {
		p, err := NewPolicy(RouteOptions{HeuristicMax: tt.set, DefaultTTL: time.Minute}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want := (Heuristic{Fixed: time.Minute, LastModifiedMax: tt.want}); p.Heuristic != want {
			t.Errorf("heuristic_max %v: heuristic %+v, want %+v", tt.want, p.Heuristic, want)
		}
	}
	if p, err := NewPolicy(RouteOptions{StaleIfError: time.Minute}, Options{}); err != nil || p.StaleIfError != time.Minute {
		t.Errorf("stale_if_error 1m: policy %+v, %v", p, err)
	}
}
