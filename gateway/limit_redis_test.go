package gateway

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// Global limits with a real redis-server and several gateways in one
// process: what the cluster admits, and what happens when Redis goes away.

// globalLimitGateways starts n gateways sharing redis behind one global
// limit "api" keyed by X-API-Key (rate 100/s, burst 50), and waits until
// each counts all n instances. logs, when given, receives the first
// gateway's log.
func globalLimitGateways(t *testing.T, n int, redisAddr string, logs *testnet.Buffer) []*Server {
	t.Helper()
	backend := limitBackend(t)
	yaml := strings.Replace(limitYAML(backend, `  api: {key: "header:X-API-Key", rate: 100/s, burst: 50, scope: global}`, "[api]", false),
		"log:", fmt.Sprintf("redis: {addrs: [%s]}\nlog:", redisAddr), 1)
	var gws []*Server
	for i := 0; i < n; i++ {
		var opts []func(*Options)
		if i == 0 && logs != nil {
			opts = append(opts, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
		}
		gws = append(gws, startGateway(t, yaml, opts...))
	}
	for i, s := range gws {
		testnet.Eventually(t, fmt.Sprintf("gateway %d to see %d instances", i, n), func() bool {
			return s.table.Load().limits["api"].lim.Stats().Instances == n
		})
	}
	return gws
}

// offered is what a run of traffic got.
type offered struct {
	admitted, refused int
	elapsed           time.Duration // from the first request sent to the last
	slowest           time.Duration
}

// offerLoad sends perSecond requests a second for d with API key key,
// open loop from 6 senders spread over targets in turn, and counts the
// answers. Any answer but 200 and 429 fails the test.
func offerLoad(t *testing.T, targets []*Server, key string, perSecond int, d time.Duration) offered {
	t.Helper()
	const senders = 6
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	defer client.CloseIdleConnections()
	interval := time.Duration(float64(time.Second) * senders / float64(perSecond))
	start := time.Now()
	var (
		mu        sync.Mutex
		out       offered
		last      time.Time
		failure   string
		waitGroup sync.WaitGroup
	)
	for w := 0; w < senders; w++ {
		target := targets[w%len(targets)]
		waitGroup.Add(1)
		go func() {
			defer waitGroup.Done()
			// Senders start staggered so that requests are spread evenly.
			for at := start.Add(interval * time.Duration(w) / senders); at.Before(start.Add(d)); at = at.Add(interval) {
				time.Sleep(time.Until(at))
				sent := time.Now()
				req, _ := http.NewRequest("GET", target.url("/api/orders/1"), nil)
				req.Header.Set("X-API-Key", key)
				resp, err := client.Do(req)
				took := time.Since(sent)
				mu.Lock()
				switch {
				case err != nil:
					failure = err.Error()
				case resp.StatusCode == 200:
					out.admitted++
				case resp.StatusCode == 429:
					out.refused++
				default:
					failure = resp.Status
				}
				out.slowest = max(out.slowest, took)
				if sent.After(last) {
					last = sent
				}
				mu.Unlock()
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	waitGroup.Wait()
	if failure != "" {
		t.Fatalf("unexpected answer: %s", failure)
	}
	out.elapsed = last.Sub(start)
	return out
}

// within fails the test unless got is within tolerance (a fraction) of want.
func within(t *testing.T, what string, got int, want, tolerance float64) {
	t.Helper()
	if math.Abs(float64(got)-want) > tolerance*want {
		t.Errorf("%s: admitted %d, want %.0f ± %.0f%%", what, got, want, tolerance*100)
	} else {
		t.Logf("%s: admitted %d, want %.0f (%+.1f%%)", what, got, want, 100*(float64(got)-want)/want)
	}
}

func TestThreeInstancesShareOneGlobalLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("sends traffic for 6s; skipped with -short")
	}
	r := testnet.StartRedis(t)
	gws := globalLimitGateways(t, 3, r.Addr(), nil)
	// 100/s with a burst of 50, offered at 3× for 3s: the burst weighs in
	// the total about as much as in the 10s example.
	for _, tt := range []struct {
		name    string
		targets []*Server
	}{
		{"traffic spread evenly", gws},
		{"all traffic on one instance", gws[:1]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := offerLoad(t, tt.targets, "key-"+strings.ReplaceAll(tt.name, " ", "-"), 300, 3*time.Second)
			want := 50 + 100*got.elapsed.Seconds()
			within(t, tt.name, got.admitted, want, 0.10)
		})
	}
}

func TestAGlobalLimitFallsBackToItsShareWhenRedisStops(t *testing.T) {
	if testing.Short() {
		t.Skip("sends traffic for 3s; skipped with -short")
	}
	r := testnet.StartRedis(t)
	var logs testnet.Buffer
	gws := globalLimitGateways(t, 2, r.Addr(), &logs)
	degraded := func(s *Server) string {
		return testnet.Lines(adminGet(t, s, "/metrics").body, `sluice_ratelimit_degraded{limit="api"}`)
	}

	// Before: the limit holds across both instances.
	if got := offerLoad(t, gws, "before", 300, time.Second); float64(got.admitted) > (50+100*got.elapsed.Seconds())*1.1 {
		t.Errorf("before the outage: admitted %d in %v, more than the limit", got.admitted, got.elapsed)
	}

	r.Kill()
	testnet.Eventually(t, "the limit to report degraded mode", func() bool {
		return degraded(gws[0]) == `sluice_ratelimit_degraded{limit="api"} 1`
	})
	// Each instance now enforces its share: half the rate and burst. A
	// client on one instance gets 25 + 50/s, never the whole limit, and
	// nobody waits for Redis.
	got := offerLoad(t, gws[:1], "during", 200, time.Second)
	want := 25 + 50*got.elapsed.Seconds()
	within(t, "one instance while Redis is down", got.admitted, want, 0.15)
	if got.slowest > 500*time.Millisecond {
		t.Errorf("a request took %v while Redis was down: requests must not wait for it", got.slowest)
	}
	if !strings.Contains(logs.String(), "rate limit degraded") {
		t.Errorf("entering degraded mode was not logged:\n%s", logs.String())
	}

	r.Restart()
	for i, s := range gws {
		testnet.Eventually(t, fmt.Sprintf("gateway %d to leave degraded mode", i), func() bool {
			return degraded(s) == `sluice_ratelimit_degraded{limit="api"} 0`
		})
	}
	if !strings.Contains(logs.String(), "rate limit recovered") {
		t.Errorf("leaving degraded mode was not logged:\n%s", logs.String())
	}
	// After: the cluster-wide bucket again, so one instance alone admits
	// the whole limit, not its share.
	got = offerLoad(t, gws[:1], "after", 300, time.Second)
	within(t, "one instance after Redis came back", got.admitted, 50+100*got.elapsed.Seconds(), 0.15)
}

// syncLoops counts the running sync loops of global limits.
func syncLoops() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "ratelimit.(*Global).run(")
}

func TestReloadAndShutdownStopTheSyncLoopsOfGlobalLimits(t *testing.T) {
	r := testnet.StartRedis(t)
	before := syncLoops()
	// A loop is a goroutine: it shows up when scheduled and goes away a
	// moment after Close has seen it stop, so the count is polled.
	loops := func(want int, after string) {
		t.Helper()
		testnet.Eventually(t, fmt.Sprintf("%d sync loops %s", want, after), func() bool { return syncLoops()-before == want })
	}
	backend := limitBackend(t)
	yaml := func(limits string) string {
		return strings.Replace(limitYAML(backend, limits, "[api]", false), "log:", "redis: {addrs: ["+r.Addr()+"]}\nlog:", 1)
	}
	api := `  api: {key: "header:X-API-Key", rate: 100/s, scope: global}`
	other := "\n  other: {key: ip, rate: 1/s, scope: global}"
	path := writeConfig(t, yaml(api))
	s, err := New(loadConfig(t, yaml(api)), Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve() //nolint:errcheck
	reload := func(limits string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(yaml(limits)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.ReloadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	loops(1, "for one global limit")
	reload(api + other)
	reload(strings.Replace(api, "100/s", "50/s", 1) + other)
	loops(2, "after reloads that kept two global limits (one of them changed)")
	reload(api)
	loops(1, "after a reload removed a limit")
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	loops(0, "after shutdown")
}
