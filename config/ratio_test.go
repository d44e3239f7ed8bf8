package config

import (
	"strings"
	"testing"
)

func TestRatioAcceptsPercentagesAndFractions(t *testing.T) {
	tests := []struct {
		in   any
		want float64
		err  string
	}{
		{"20%", 0.2, ""},
		{" 2.5 % ", 0.025, ""},
		{"0.2", 0.2, ""},
		{0.5, 0.5, ""},
		{1, 1, ""},
		{0, 0, ""},
		{"100%", 1, ""},
		{"150%", 0, "between 0% and 100%"},
		{20, 0, "between 0% and 100%"},
		{"-5%", 0, "between 0% and 100%"}, // a percentage, out of range
		{"%", 0, "invalid ratio"},
		{"twenty", 0, "invalid ratio"},
		{true, 0, "expected a ratio"},
	}
	for _, tt := range tests {
		got, err := toRatio(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%v: error %v, want one containing %q", tt.in, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("%v: %v", tt.in, err)
		case tt.err == "" && got.(float64) != tt.want:
			t.Errorf("%v: %v, want %v", tt.in, got, tt.want)
		}
	}
	if s := Ratio(0.2).String(); s != "20%" {
		t.Errorf("String: %q", s)
	}
}

func TestRouteResilienceKeysLoadFromYAML(t *testing.T) {
	yaml := `
pools:
  a: {backends: [{addr: "127.0.0.1:9001"}]}
  b: {backends: [{addr: "127.0.0.1:9002"}]}
server: {max_concurrency: 5000}
routes:
  - name: orders
    match: {path_prefix: /orders}
    shards: {key: "header:X-Customer-ID", pools: [a, b]}
    timeout: 3s
    priority: high
    retries: {attempts: 3, on: [connect, 503, timeout], budget: 25%, per_try_timeout: 1s}
`
	c, err := Load(writeConfig(t, yaml))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routes[0]
	if r.Shards.Key != "header:X-Customer-ID" || len(r.Shards.Pools) != 2 || r.Priority != "high" ||
		r.Retries.Attempts != 3 || r.Retries.Budget == nil || *r.Retries.Budget != 0.25 || r.Retries.PerTryTimeout.String() != "1s" ||
		c.Server.MaxConcurrency != 5000 {
		t.Fatalf("loaded %+v, server %+v", r, c.Server)
	}
	if _, err := Load(writeConfig(t, strings.Replace(yaml, "25%", "250%", 1))); err == nil ||
		!strings.Contains(err.Error(), "routes[0].retries.budget") {
		t.Fatalf("budget 250%%: %v, want an error naming routes[0].retries.budget", err)
	}
}

func TestAnExplicitZeroRetryBudgetIsKept(t *testing.T) {
	tests := []struct {
		name    string
		retries string
		budget  Ratio
		min     int
	}{
		{"unset keys take the defaults", "{attempts: 3}", DefaultRetryBudget, DefaultRetryMinPerSecond},
		{"a zero budget and minimum stay zero", "{budget: 0%, min_per_second: 0}", 0, 0},
		{"a zero budget written as a fraction stays zero", "{budget: 0}", 0, DefaultRetryMinPerSecond},
		{"a zero minimum alone stays zero", "{min_per_second: 0}", DefaultRetryBudget, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, minimal+"    retries: "+tt.retries+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			rt := c.Routes[0].Retries.WithDefaults()
			if *rt.Budget != tt.budget || *rt.MinPerSecond != tt.min {
				t.Errorf("budget %v, min_per_second %d; want %v, %d", *rt.Budget, *rt.MinPerSecond, tt.budget, tt.min)
			}
		})
	}
}
