package cache

import (
	"testing"
	"time"
)

func TestSurrogateControlReplacesCacheControlForThisCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	d := func(s uint32) Delta { return Delta{Seconds: s, Set: true} }
	tests := []struct {
		name      string
		cc, sc    string // "": no such field
		wantCache CacheControl
	}{
		{"Surrogate-Control max-age wins over Cache-Control no-store", "no-store", "max-age=60", CacheControl{MaxAge: d(60)}},
		{"Surrogate-Control no-store wins over Cache-Control max-age", "max-age=60", "no-store", CacheControl{NoStore: true}},
		{"a directive targeted at another device does not count", "private", "max-age=3600;cdn", CacheControl{Private: true}},
		{"a directive targeted at this cache counts", "no-store", "max-age=60;Sluice", CacheControl{MaxAge: d(60)}},
		{"only the directives for this cache count", "", "max-age=5, max-age=3600 ; cdn, no-store;other", CacheControl{MaxAge: d(5)}},
		{"unknown directives alone leave Cache-Control in charge", "max-age=30", `foo, content="ESI/1.0"`, CacheControl{MaxAge: d(30)}},
		{"without Surrogate-Control, Cache-Control counts", "max-age=30", "", CacheControl{MaxAge: d(30)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []Field
			if tt.cc != "" {
				h = append(h, Field{[]byte("Cache-Control"), []byte(tt.cc)})
			}
			if tt.sc != "" {
				h = append(h, Field{[]byte("Surrogate-Control"), []byte(tt.sc)})
			}
			if m := ParseMeta(200, h, now, now, now); m.CacheControl != tt.wantCache {
				t.Fatalf("got %+v\nwant %+v", m.CacheControl, tt.wantCache)
			}
		})
	}
	if !SurrogateField([]byte("Surrogate-control")) || SurrogateField([]byte("Cache-Control")) {
		t.Fatal("SurrogateField")
	}
}
