package cache

import (
	"testing"
	"time"
)

func TestSurrogateControlReplacesCacheControlForThisCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name    string
		header  []Field
		noStore bool
		maxAge  int64
	}{
		{"Surrogate-Control max-age wins over Cache-Control no-store",
			[]Field{{[]byte("Cache-Control"), []byte("no-store")}, {[]byte("Surrogate-Control"), []byte("max-age=60")}}, false, 60},
		{"Surrogate-Control no-store wins over Cache-Control max-age",
			[]Field{{[]byte("Cache-Control"), []byte("max-age=60")}, {[]byte("Surrogate-Control"), []byte("no-store")}}, true, -1},
		{"without Surrogate-Control, Cache-Control counts",
			[]Field{{[]byte("Cache-Control"), []byte("max-age=30")}}, false, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ParseMeta(200, tt.header, now, now, now)
			got := int64(-1)
			if m.CacheControl.MaxAge.Set {
				got = int64(m.CacheControl.MaxAge.Seconds)
			}
			if m.CacheControl.NoStore != tt.noStore || got != tt.maxAge {
				t.Fatalf("no-store %v, max-age %d; want %v, %d", m.CacheControl.NoStore, got, tt.noStore, tt.maxAge)
			}
		})
	}
	if !SurrogateField([]byte("Surrogate-control")) || SurrogateField([]byte("Cache-Control")) {
		t.Fatal("SurrogateField")
	}
}
