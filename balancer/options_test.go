package balancer

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func validOptions() Options {
	return Options{Backends: []BackendOptions{{Addr: "127.0.0.1:9001"}, {Addr: "backend.internal:9002", Weight: 3}}}
}

func TestWithDefaults(t *testing.T) {
	t.Run("fills every zero field with its documented default", func(t *testing.T) {
		o := validOptions().WithDefaults()
		want := Options{
			Policy:              "p2c_ewma",
			Backends:            []BackendOptions{{Addr: "127.0.0.1:9001", Weight: 1}, {Addr: "backend.internal:9002", Weight: 3}},
			HealthCheck:         HealthCheckOptions{Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 3},
			Timeout:             5 * time.Second,
			ConnectTimeout:      time.Second,
			MaxConnsPerBackend:  512,
			MaxIdleConnDuration: 30 * time.Second,
			MaxResponseBody:     64 << 20,
			HashKey:             "client",
			HashLoadFactor:      1.25,
			Outlier: OutlierOptions{ConsecutiveFailures: 5, BaseEjectionTime: 30 * time.Second,
				MaxEjectionTime: 5 * time.Minute, MaxEjectionPercent: 50},
			CircuitBreaker: CircuitBreakerOptions{MaxQueue: 128, QueueTimeout: 250 * time.Millisecond},
			DNSRefresh:     30 * time.Second,
		}
		if o.Policy != want.Policy || o.DNSRefresh != want.DNSRefresh || o.HealthCheck != want.HealthCheck || o.Timeout != want.Timeout ||
			o.ConnectTimeout != want.ConnectTimeout || o.MaxConnsPerBackend != want.MaxConnsPerBackend ||
			o.MaxIdleConnDuration != want.MaxIdleConnDuration || o.MaxResponseBody != want.MaxResponseBody ||
			o.HashKey != want.HashKey || o.HashLoadFactor != want.HashLoadFactor || o.SlowStart != 0 ||
			o.Outlier != want.Outlier || o.CircuitBreaker != want.CircuitBreaker {
			t.Errorf("WithDefaults() = %+v, want %+v", o, want)
		}
		for i := range want.Backends {
			if o.Backends[i] != want.Backends[i] {
				t.Errorf("backends[%d] = %+v, want %+v", i, o.Backends[i], want.Backends[i])
			}
		}
	})
	t.Run("keeps values that are set", func(t *testing.T) {
		in := Options{Policy: "least_conn", Timeout: 2 * time.Second, HealthCheck: HealthCheckOptions{Rise: 5}}
		o := in.WithDefaults()
		if o.Policy != "least_conn" || o.Timeout != 2*time.Second || o.HealthCheck.Rise != 5 {
			t.Errorf("WithDefaults() overwrote set values: %+v", o)
		}
	})
	t.Run("keeps Off, and raises the default max ejection time to an explicit base", func(t *testing.T) {
		in := Options{Outlier: OutlierOptions{ConsecutiveFailures: Off, BaseEjectionTime: 10 * time.Minute},
			CircuitBreaker: CircuitBreakerOptions{MaxQueue: Off}}
		o := in.WithDefaults()
		if o.Outlier.Enabled() || o.Outlier.MaxEjectionTime != 10*time.Minute || o.CircuitBreaker.MaxQueue != Off {
			t.Errorf("WithDefaults() = %+v %+v", o.Outlier, o.CircuitBreaker)
		}
	})
	t.Run("leaves pipelining off, and fills its defaults once it has a depth", func(t *testing.T) {
		if p := validOptions().WithDefaults().Upstream.Pipeline; p != (PipelineOptions{}) {
			t.Errorf("pipeline = %+v, want off and untouched", p)
		}
		in := validOptions()
		in.Upstream.Pipeline.Depth = 8
		want := PipelineOptions{Depth: 8, Conns: 8, BatchDelay: 50 * time.Microsecond, SlowResponse: 10 * time.Millisecond}
		if p := in.WithDefaults().Upstream.Pipeline; p != want {
			t.Errorf("pipeline = %+v, want %+v", p, want)
		}
	})
	t.Run("does not modify the caller's backends", func(t *testing.T) {
		in := validOptions()
		_ = in.WithDefaults()
		if in.Backends[0].Weight != 0 {
			t.Errorf("caller's backends[0].weight = %d, want it left at 0", in.Backends[0].Weight)
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(o *Options)
		want   []string // every message, in order; nil means valid
	}{
		{"accepts the defaults with backends", func(*Options) {}, nil},
		{"accepts every policy name", func(o *Options) { o.Policy = "weighted_round_robin" }, nil},
		{"accepts p2c_ewma", func(o *Options) { o.Policy = "p2c_ewma" }, nil},
		{"accepts consistent_hash on a header with a load factor and slow start", func(o *Options) {
			o.Policy, o.HashKey, o.HashLoadFactor, o.SlowStart = "consistent_hash", "header:X-Tenant", 2, 30*time.Second
		}, nil},
		{"rejects an unknown hash key kind", func(o *Options) { o.HashKey = "ip" },
			[]string{`hash_key: key "ip": want client, header:<name>, cookie:<name>, query:<name> or path:<n>`}},
		{"rejects a path segment 0", func(o *Options) { o.HashKey = "path:0" },
			[]string{`hash_key: key "path:0": the path segment must be a number from 1 up`}},
		{"rejects a load factor below 1", func(o *Options) { o.HashLoadFactor = 0.5 },
			[]string{"hash_load_factor: 0.5 must be a number of at least 1"}},
		{"rejects a load factor that is not a number", func(o *Options) { o.HashLoadFactor = math.NaN() },
			[]string{"hash_load_factor: NaN must be a number of at least 1"}},
		{"rejects a negative slow start", func(o *Options) { o.SlowStart = -time.Second },
			[]string{"slow_start: -1s must not be negative"}},
		{"rejects an unknown policy", func(o *Options) { o.Policy = "rr" },
			[]string{`policy: unknown policy "rr" (want round_robin, weighted_round_robin, least_conn, p2c_ewma or consistent_hash)`}},
		{"requires a backend", func(o *Options) { o.Backends = nil },
			[]string{"backends: at least one backend is required"}},
		{"rejects an address without a port", func(o *Options) { o.Backends[1].Addr = "10.0.0.1" },
			[]string{`backends[1].addr: missing port in address "10.0.0.1"`}},
		{"rejects an empty address", func(o *Options) { o.Backends[0].Addr = "" },
			[]string{`backends[0].addr: required (host:port)`}},
		{"accepts an srv name instead of an address", func(o *Options) {
			o.Backends[0] = BackendOptions{SRV: "_orders._tcp.svc.local."}
		}, nil},
		{"rejects both addr and srv", func(o *Options) { o.Backends[0].SRV = "_orders._tcp.svc.local" },
			[]string{`backends[0].srv: set addr or srv, not both`}},
		{"rejects an srv with a port", func(o *Options) { o.Backends[0] = BackendOptions{SRV: "_orders._tcp.svc:80"} },
			[]string{`backends[0].srv: "_orders._tcp.svc:80" is not a DNS name (character ':'); want e.g. _orders._tcp.svc.local, with no port`}},
		{"rejects an IP as srv", func(o *Options) { o.Backends[0] = BackendOptions{SRV: "10.0.0.1"} },
			[]string{`backends[0].srv: "10.0.0.1" is an IP address, want a DNS name such as _orders._tcp.svc.local`}},
		{"rejects a duplicate srv, whatever its case", func(o *Options) {
			o.Backends = []BackendOptions{{SRV: "_a._tcp.svc"}, {SRV: "_A._tcp.svc."}}
		}, []string{"backends[1].srv: duplicate of backends[0]"}},
		{"rejects a negative dns refresh", func(o *Options) { o.DNSRefresh = -time.Second },
			[]string{"dns_refresh: -1s must not be negative"}},
		{"rejects a URL", func(o *Options) { o.Backends[0].Addr = "http://a:80" },
			[]string{`backends[0].addr: "http://a:80" is a URL, want host:port`}},
		{"rejects a port out of range", func(o *Options) { o.Backends[0].Addr = "a:70000" },
			[]string{`backends[0].addr: invalid port "70000" in address "a:70000" (want 1-65535)`}},
		{"rejects a missing host", func(o *Options) { o.Backends[0].Addr = ":80" },
			[]string{`backends[0].addr: missing host in address ":80"`}},
		{"rejects a duplicate address", func(o *Options) {
			o.Backends = append(o.Backends, BackendOptions{Addr: "127.0.0.1:9001"})
		}, []string{"backends[2].addr: duplicate of backends[0]"}},
		{"rejects a negative weight", func(o *Options) { o.Backends[0].Weight = -1 },
			[]string{"backends[0].weight: -1 must not be negative"}},
		{"rejects a probe timeout not below the interval", func(o *Options) {
			o.HealthCheck = HealthCheckOptions{Path: "/healthz", Interval: time.Second, Timeout: 2 * time.Second}
		}, []string{"health_check.timeout: 2s must be less than interval 1s"}},
		{"rejects a relative health path", func(o *Options) { o.HealthCheck.Path = "healthz" },
			[]string{`health_check.path: "healthz" must start with "/"`}},
		{"rejects negative rise and fall", func(o *Options) { o.HealthCheck.Rise, o.HealthCheck.Fall = -1, -2 },
			[]string{"health_check.rise: -1 must not be negative", "health_check.fall: -2 must not be negative"}},
		{"rejects a connect timeout above the timeout", func(o *Options) { o.Timeout, o.ConnectTimeout = time.Second, 2*time.Second },
			[]string{"connect_timeout: 2s must not exceed timeout 1s"}},
		{"rejects negative limits", func(o *Options) {
			o.Timeout, o.MaxConnsPerBackend, o.MaxIdleConnDuration, o.MaxResponseBody = -1, -1, -time.Second, -1
		}, []string{
			"timeout: -1ns must not be negative",
			"max_conns_per_backend: -1 must not be negative",
			"max_idle_conn_duration: -1s must not be negative",
			"max_response_body: -1 must not be negative",
		}},
		{"rejects negative streaming options", func(o *Options) { o.BufferResponse, o.StreamTimeout = -1, -time.Second },
			[]string{"buffer_response: -1 must not be negative", "stream_timeout: -1s must not be negative"}},
		{"accepts Off for outlier detection and the queue", func(o *Options) {
			o.Outlier.ConsecutiveFailures, o.CircuitBreaker.MaxQueue = Off, Off
		}, nil},
		{"rejects negative outlier options other than Off", func(o *Options) {
			o.Outlier = OutlierOptions{ConsecutiveFailures: -2, BaseEjectionTime: -time.Second, MaxEjectionTime: -time.Second, MaxEjectionPercent: -1}
		}, []string{
			"outlier_detection.consecutive_failures: -2 must be positive, or -1 (off)",
			"outlier_detection.base_ejection_time: -1s must not be negative",
			"outlier_detection.max_ejection_time: -1s must not be negative",
			"outlier_detection.max_ejection_percent: -1 must be between 1 and 100",
		}},
		{"rejects a max ejection time below the base, and a percentage above 100", func(o *Options) {
			o.Outlier = OutlierOptions{BaseEjectionTime: time.Minute, MaxEjectionTime: time.Second, MaxEjectionPercent: 101}
		}, []string{
			"outlier_detection.max_ejection_time: 1s must not be less than base_ejection_time 1m0s",
			"outlier_detection.max_ejection_percent: 101 must be between 1 and 100",
		}},
		{"rejects negative circuit breaker options other than Off", func(o *Options) {
			o.CircuitBreaker = CircuitBreakerOptions{MaxRequestsPerBackend: -1, MaxRequests: -1, MaxQueue: -5, QueueTimeout: -time.Millisecond}
		}, []string{
			"circuit_breaker.max_requests_per_backend: -1 must not be negative",
			"circuit_breaker.max_requests: -1 must not be negative",
			"circuit_breaker.max_queue: -5 must be positive, or -1 (off)",
			"circuit_breaker.queue_timeout: -1ms must not be negative",
		}},
		{"accepts pipelining with only a depth", func(o *Options) { o.Upstream.Pipeline.Depth = 8 }, nil},
		{"rejects pipelining options out of range", func(o *Options) {
			o.Upstream.Pipeline = PipelineOptions{Depth: 65, Conns: -1, BatchDelay: -1, SlowResponse: -time.Millisecond}
		}, []string{
			"upstream.pipeline.depth: 65 must be between 0 (off) and 64",
			"upstream.pipeline.conns: -1 must not be negative",
			"upstream.pipeline.batch_delay: -1ns must not be negative",
			"upstream.pipeline.slow_response: -1ms must not be negative",
		}},
		{"reports every problem at once", func(o *Options) {
			o.Policy = "rr"
			o.Backends[1].Addr = "10.0.0.1"
		}, []string{
			`policy: unknown policy "rr" (want round_robin, weighted_round_robin, least_conn, p2c_ewma or consistent_hash)`,
			`backends[1].addr: missing port in address "10.0.0.1"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.modify(&o)
			err := o.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("Validate() error %T is not joined", err)
			}
			var got []string
			for _, e := range joined.Unwrap() {
				// The config package prefixes Path with the pool's key; it
				// must never have to parse the message for it.
				var fe *FieldError
				if !errors.As(e, &fe) || fe.Path == "" || strings.Contains(fe.Path, " ") {
					t.Errorf("problem %q is not a *FieldError with a key path", e)
				}
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate() messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
