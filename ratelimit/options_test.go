package ratelimit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	valid := []struct {
		in   string
		want Rate
	}{
		{"100/s", Rate{100, time.Second}},
		{"6000/m", Rate{6000, time.Minute}},
		{"10/h", Rate{10, time.Hour}},
		{"500/10s", Rate{500, 10 * time.Second}},
		{" 5 / 250ms ", Rate{5, 250 * time.Millisecond}},
		{"1/1m30s", Rate{1, 90 * time.Second}},
	}
	for _, tt := range valid {
		t.Run("reads "+tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			back, err := ParseRate(got.String())
			if err != nil || back != got {
				t.Errorf("ParseRate(%q.String() = %q) = %v, %v; want it back", tt.in, got.String(), back, err)
			}
		})
	}

	invalid := []struct {
		in, want string
	}{
		{"", "is required"},
		{"100", `invalid rate "100": no "/"`},
		{"100 per second", `no "/"`},
		{"0/s", `count "0" is not a whole number of at least 1`},
		{"-5/s", `count "-5"`},
		{"1.5/s", `count "1.5"`},
		{"100/sec", `unknown unit "sec"`},
		{"100/", `unknown unit ""`},
		{"100/-1s", `unknown unit "-1s"`},
		{"100/1us", "period 1µs is shorter than 1ms"},
		{"9999999999/s", "more than 2147483647 per second"},
	}
	for _, tt := range invalid {
		t.Run("refuses "+tt.in, func(t *testing.T) {
			_, err := ParseRate(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseRate(%q) error = %v, want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	t.Run("fills every zero field with its documented default", func(t *testing.T) {
		got := Options{Name: "a", Rate: "6000/m"}.WithDefaults()
		if got.Burst != 6000 || got.Scope != ScopeLocal || got.MaxKeys != 1_000_000 ||
			got.SyncInterval != 100*time.Millisecond || got.SyncTimeout != 200*time.Millisecond {
			t.Errorf("WithDefaults() = %+v", got)
		}
	})
	t.Run("keeps values that are set", func(t *testing.T) {
		in := Options{Name: "a", Rate: "1/s", Burst: 7, Scope: ScopeGlobal, MaxKeys: 10, SyncInterval: time.Second, SyncTimeout: time.Second}
		if got := in.WithDefaults(); got.Burst != 7 || got.Scope != ScopeGlobal || got.MaxKeys != 10 ||
			got.SyncInterval != time.Second || got.SyncTimeout != time.Second {
			t.Errorf("WithDefaults() = %+v, want the set values kept", got)
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(o *Options)
		want   []string // every message, in order; nil means valid
	}{
		{"accepts a name and a rate", func(*Options) {}, nil},
		{"accepts a global limit", func(o *Options) { o.Scope = ScopeGlobal; o.FailClosed = true }, nil},
		{"requires a name", func(o *Options) { o.Name = "" }, []string{"name: is required"}},
		{"refuses a name that would need quoting", func(o *Options) { o.Name = `a"b` },
			[]string{`name: "a\"b" has '"': use letters, digits and _-.: only`}},
		{"requires a rate", func(o *Options) { o.Rate = "" }, []string{"rate: is required: want <count>/<unit>, such as 100/s, 6000/m, 10/h or 500/10s"}},
		{"reports a bad rate", func(o *Options) { o.Rate = "100/fortnight" },
			[]string{`rate: invalid rate "100/fortnight": unknown unit "fortnight": want <count>/<unit>, such as 100/s, 6000/m, 10/h or 500/10s`}},
		{"refuses a negative burst", func(o *Options) { o.Burst = -1 }, []string{"burst: -1 must not be negative"}},
		{"refuses an unknown scope", func(o *Options) { o.Scope = "cluster" },
			[]string{`scope: unknown scope "cluster" (want local or global)`}},
		{"refuses negative max_keys", func(o *Options) { o.MaxKeys = -1 }, []string{"max_keys: -1 must not be negative"}},
		{"refuses a sync interval under 10ms", func(o *Options) { o.SyncInterval = time.Millisecond },
			[]string{"sync_interval: 1ms is shorter than 10ms"}},
		{"reports every problem at once", func(o *Options) { o.Name = ""; o.Burst = -2; o.SyncTimeout = -time.Second },
			[]string{"name: is required", "burst: -2 must not be negative", "sync_timeout: -1s must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Name: "api_key", Rate: "100/s"}
			tt.modify(&o)
			err := o.Validate()
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *FieldError
					if !errors.As(e, &fe) {
						t.Errorf("%v is not a *FieldError", e)
					}
					got = append(got, e.Error())
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	t.Run("New refuses invalid options and names the limit", func(t *testing.T) {
		_, err := New(Options{Name: "api_key", Rate: "lots"}, nil, nil)
		if err == nil || !strings.HasPrefix(err.Error(), `rate limit "api_key": rate: invalid rate "lots"`) {
			t.Errorf("New error = %v", err)
		}
	})
}
