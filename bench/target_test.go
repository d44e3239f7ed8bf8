package bench

import (
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
