package ratelimit

import (
	"testing"
	"time"
)

func TestHeaders(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"a policy names its quota and window",
			AppendPolicy(nil, "per_client", Policy{Quota: 200, Window: 2 * time.Second}), `"per_client";q=200;w=2`},
		{"a policy's window is rounded up, so the rate shown is never higher",
			AppendPolicy(nil, "fast", Policy{Quota: 50, Window: 500 * time.Millisecond}), `"fast";q=50;w=1`},
		{"a policy of an hour",
			AppendPolicy(nil, "slow", Policy{Quota: 10, Window: time.Hour}), `"slow";q=10;w=3600`},
		{"a second policy joins the list after a comma",
			AppendPolicy(append(AppendPolicy(nil, "a", Policy{1, time.Second}), ", "...), "b", Policy{2, time.Second}),
			`"a";q=1;w=1, "b";q=2;w=1`},
		{"the current state shows remaining and reset",
			AppendRateLimit(nil, "api_key", Decision{Allowed: true, Limit: 100, Remaining: 42, ResetAfter: 9100 * time.Millisecond}),
			`"api_key";r=42;t=10`},
		{"a full allowance resets now",
			AppendRateLimit(nil, "api_key", Decision{Allowed: true, Limit: 100, Remaining: 100}), `"api_key";r=100;t=0`},
		{"retry-after is rounded up to whole seconds",
			AppendRetryAfter(nil, Decision{RetryAfter: 1500 * time.Millisecond}), "2"},
		{"retry-after is at least one second",
			AppendRetryAfter(nil, Decision{RetryAfter: 10 * time.Millisecond}), "1"},
		{"a huge reset does not overflow",
			AppendRateLimit(nil, "x", Decision{ResetAfter: 1<<63 - 1}), `"x";r=0;t=9223372037`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestPolicyOfLimits(t *testing.T) {
	tests := []struct {
		rate  string
		burst int
		want  Policy
	}{
		{"100/s", 200, Policy{200, 2 * time.Second}},
		{"6000/m", 100, Policy{100, time.Second}},
		{"10/h", 0, Policy{10, time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.rate, func(t *testing.T) {
			l := mustLocal(t, Options{Name: "p", Rate: tt.rate, Burst: tt.burst}, nil)
			if got := l.Policy(); got.Quota != tt.want.Quota || (got.Window-tt.want.Window).Abs() > time.Microsecond {
				t.Errorf("Policy() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
