//go:build !race

package cache

import (
	"testing"
)

func TestHotPathDoesNotAllocate(t *testing.T) {
	tc := newTestTiered(t, newClock(), nil)
	plain := req("GET", "/a")
	get(tc, plain, answer(200, "hello", "Cache-Control", "max-age=60", "ETag", `"v1"`))
	varied := req("GET", "/v")
	varied.Fields = header("Accept-Language", "de, fr")
	get(tc, varied, answer(200, "hallo", "Cache-Control", "max-age=60", "Vary", "Accept-Language"))
	conditional := req("GET", "/a")
	conditional.IfNoneMatch = []byte(`W/"v0", "v1"`)
	tc.l1.Wait()

	cc := []byte("public, max-age=60, s-maxage=30, stale-while-revalidate=30, no-cache=\"a, b\"")
	respHeader := fields("Cache-Control", "max-age=60", "Date", httpDate(t0), "ETag", `"x"`,
		"Last-Modified", "Sunday, 06-Nov-94 08:49:37 GMT", "Vary", "Accept", "Age", "3")
	keyBuf := make([]byte, 0, 1024)

	tests := []struct {
		name string
		fn   func()
	}{
		{"ParseCacheControl", func() { _ = ParseCacheControl(cc) }},
		{"ParseMeta", func() { _ = ParseMeta(200, respHeader, t0, t0, t0) }},
		{"AppendKey into a large enough buffer", func() { keyBuf = AppendKey(keyBuf[:0], varied) }},
		{"Local.Get hit", func() { _ = tc.l1.Get(AppendKey(keyBuf[:0], plain)) }},
		{"Tiered.Get L1 hit", func() { _ = tc.Get(plain, AppendKey(keyBuf[:0], plain), nil) }},
		{"Tiered.Get L1 hit through Vary", func() { _ = tc.Get(varied, AppendKey(keyBuf[:0], varied), nil) }},
		{"Tiered.Get L1 hit answering If-None-Match", func() {
			_ = tc.Get(conditional, AppendKey(keyBuf[:0], conditional), nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.fn); n != 0 {
				t.Errorf("%s allocates %v times per call, want 0", tt.name, n)
			}
		})
	}
	if res := tc.Get(varied, AppendKey(nil, varied), nil); res.Tier != TierL1 {
		t.Fatalf("the Vary lookup measured was not a hit: %+v", res)
	}
	if res := tc.Get(conditional, AppendKey(nil, conditional), nil); !res.NotModified {
		t.Fatalf("the conditional lookup measured was not a 304: %+v", res)
	}
}
