//go:build !race

package bench

import (
	"testing"
	"time"
)

func TestPerRequestStepDoesNotAllocate(t *testing.T) {
	url := startServer(t, fixedLatency(0))
	sc, err := LoadScenario("testdata/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
	}{
		{"a static GET does not allocate", Options{URL: url + "/static"}},
		{"a templated GET does not allocate", Options{URL: url + "/api/orders/{seq}?r={rand:1-100000}&z={zipf:1.1:100000}", Headers: []string{"Accept: */*"}}},
		{"a POST with a templated body does not allocate", Options{URL: url + "/orders", Method: "POST", Body: `{"id":{seq}}`}},
		{"a weighted scenario with keys does not allocate", Options{URL: url, Scenario: sc}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Connections = 1
			o = o.withDefaults()
			specs, keys, err := buildSpecs(o)
			if err != nil {
				t.Fatal(err)
			}
			tgt, err := parseTarget(specs[0].url.src)
			if err != nil {
				t.Fatal(err)
			}
			r := newRunState(o, tgt)
			r.start = time.Now()
			c := newConnection(r, r.shards[0], 0, specs, keys)
			t.Cleanup(r.shards[0].client.CloseIdleConnections)
			step := func() {
				now := r.now()
				c.step(true, now, now, now)
			}
			for i := 0; i < 200; i++ { // dial, grow buffers
				step()
			}
			if n := testing.AllocsPerRun(2000, step); n != 0 {
				t.Errorf("one request allocates %v times, want 0", n)
			}
			if e := r.shards[0].errs.Total(); e != 0 {
				t.Errorf("%d requests failed: %+v", e, r.shards[0].errs)
			}
		})
	}
}
