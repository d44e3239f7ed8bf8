package bench

import (
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestTemplatesRender(t *testing.T) {
	keys := [][]byte{[]byte("k1"), []byte("k2"), []byte("k3")}
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, out string, i int)
	}{
		{"literal text renders as is", "http://h/a/b?c=d", func(t *testing.T, out string, _ int) {
			if out != "http://h/a/b?c=d" {
				t.Errorf("got %q", out)
			}
		}},
		{"seq counts from one", "/o/{seq}", func(t *testing.T, out string, i int) {
			if want := "/o/" + strconv.Itoa(i+1); out != want {
				t.Errorf("got %q, want %q", out, want)
			}
		}},
		{"rand stays in its bounds", "/r/{rand:5-7}", func(t *testing.T, out string, _ int) {
			n, err := strconv.Atoi(strings.TrimPrefix(out, "/r/"))
			if err != nil || n < 5 || n > 7 {
				t.Errorf("got %q, want /r/5../r/7", out)
			}
		}},
		{"zipf stays in 1..N", "/z/{zipf:1.1:100}", func(t *testing.T, out string, _ int) {
			n, err := strconv.Atoi(strings.TrimPrefix(out, "/z/"))
			if err != nil || n < 1 || n > 100 {
				t.Errorf("got %q, want /z/1../z/100", out)
			}
		}},
		{"key picks a key of the file", "/k/{key}", func(t *testing.T, out string, _ int) {
			if k := strings.TrimPrefix(out, "/k/"); k != "k1" && k != "k2" && k != "k3" {
				t.Errorf("got %q", out)
			}
		}},
		{"a JSON body keeps its braces", `{"id":{seq},"o":{}}`, func(t *testing.T, out string, i int) {
			if want := `{"id":` + strconv.Itoa(i+1) + `,"o":{}}`; out != want {
				t.Errorf("got %q, want %q", out, want)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := parseTemplate(tc.src, len(keys))
			if err != nil {
				t.Fatal(err)
			}
			var seq atomic.Uint64
			r := newRenderer(1, &seq, keys)
			r.prepare(tpl)
			var buf []byte
			for i := 0; i < 200; i++ {
				buf = r.render(buf[:0], tpl)
				tc.check(t, string(buf), i)
			}
		})
	}
}

func TestZipfMakesFewKeysHot(t *testing.T) {
	tpl, err := parseTemplate("{zipf:1.1:100000}", 0)
	if err != nil {
		t.Fatal(err)
	}
	var seq atomic.Uint64
	r := newRenderer(7, &seq, nil)
	r.prepare(tpl)
	const n = 20000
	hot := 0
	var buf []byte
	for i := 0; i < n; i++ {
		buf = r.render(buf[:0], tpl)
		if v, _ := strconv.Atoi(string(buf)); v <= 10 {
			hot++
		}
	}
	// Uniform keys would put 0.01% of draws on the first 10 of 100000 keys;
	// Zipf(1.1) puts a large share there.
	if hot < n/5 {
		t.Errorf("%d of %d draws on the 10 hottest keys, want a large share", hot, n)
	}
}

func TestBadTemplatesAreRejected(t *testing.T) {
	tests := []struct{ name, src string }{
		{"a typo in a placeholder name", "/{sq}"},
		{"rand with reversed bounds", "/{rand:9-1}"},
		{"rand without a range", "/{rand:9}"},
		{"zipf with an exponent of one", "/{zipf:1:100}"},
		{"zipf without N", "/{zipf:1.2}"},
		{"key without a key file", "/{key}"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is an error", func(t *testing.T) {
			if _, err := parseTemplate(tc.src, 0); err == nil {
				t.Errorf("parseTemplate(%q) returned no error", tc.src)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		url  string
		host string
		tls  bool
	}{
		{"http://127.0.0.1:8080/x/{seq}", "127.0.0.1:8080", false},
		{"http://localhost/", "localhost:80", false},
		{"https://example.test?q=1", "example.test:443", true},
		{"http://[::1]:9000/", "[::1]:9000", false},
		{"http://[::1]/", "[::1]:80", false},
	}
	for _, tc := range tests {
		t.Run(tc.url+" dials "+tc.host, func(t *testing.T) {
			got, err := parseTarget(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if got.host != tc.host || got.tls != tc.tls {
				t.Errorf("got %+v, want host %q tls %v", got, tc.host, tc.tls)
			}
		})
	}
}

// {rand:LO-HI} drew lo + Uint64N(hi-lo+1), which panics when the span is the
// whole uint64 range (hi-lo+1 overflows to 0), although the parser accepts it.
func TestRandIncludesBothEndsAndTheFullRange(t *testing.T) {
	var seq atomic.Uint64
	t.Run("the full uint64 range renders", func(t *testing.T) {
		tpl, err := parseTemplate("{rand:0-18446744073709551615}", 0)
		if err != nil {
			t.Fatal(err)
		}
		r := newRenderer(1, &seq, nil)
		r.prepare(tpl)
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("render panicked: %v", p)
			}
		}()
		if _, err := strconv.ParseUint(string(r.render(nil, tpl)), 10, 64); err != nil {
			t.Error(err)
		}
	})
	t.Run("a small range draws both of its ends and nothing outside", func(t *testing.T) {
		tpl, _ := parseTemplate("{rand:3-5}", 0)
		r := newRenderer(2, &seq, nil)
		r.prepare(tpl)
		seen := map[string]int{}
		for i := 0; i < 300; i++ {
			seen[string(r.render(nil, tpl))]++
		}
		if len(seen) != 3 || seen["3"] == 0 || seen["5"] == 0 {
			t.Errorf("drew %v, want 3, 4 and 5", seen)
		}
	})
}

// {zipf:S:N} must draw k in [1, N] with P(k) ∝ k^-S. The draws are seeded,
// so the counts are deterministic; the bounds are loose statistically.
func TestZipfFollowsItsExponent(t *testing.T) {
	const s, n, draws = 1.1, 100000, 200000
	tpl, err := parseTemplate("{zipf:1.1:100000}", 0)
	if err != nil {
		t.Fatal(err)
	}
	var seq atomic.Uint64
	r := newRenderer(42, &seq, nil)
	r.prepare(tpl)
	counts := map[uint64]int{}
	var buf []byte
	for i := 0; i < draws; i++ {
		buf = r.render(buf[:0], tpl)
		v, err := strconv.ParseUint(string(buf), 10, 64)
		if err != nil || v < 1 || v > n {
			t.Fatalf("drew %q, want an integer in [1, %d]", buf, n)
		}
		counts[v]++
	}
	var h float64 // generalised harmonic number H(N, s)
	for k := 1; k <= n; k++ {
		h += math.Pow(float64(k), -s)
	}
	for _, k := range []uint64{1, 2, 4, 10} {
		want := draws * math.Pow(float64(k), -s) / h
		if got := float64(counts[k]); math.Abs(got-want) > 0.05*want+5*math.Sqrt(want) {
			t.Errorf("key %d drawn %.0f times, want about %.0f", k, got, want)
		}
	}
	one, _ := parseTemplate("{zipf:1.1:1}", 0)
	r.prepare(one)
	for i := 0; i < 20; i++ {
		if got := string(r.render(nil, one)); got != "1" {
			t.Fatalf("{zipf:1.1:1} drew %q, want 1", got)
		}
	}
}
