package cache

import (
	"testing"
)

func TestParseCacheControl(t *testing.T) {
	d := func(s uint32) Delta { return Delta{Seconds: s, Set: true} }
	tests := []struct {
		name string
		in   string
		want CacheControl
	}{
		{"empty value has no directives", "", CacheControl{}},
		{"§5.2.2.1 max-age", "max-age=60", CacheControl{MaxAge: d(60)}},
		{"§5.2.2.10 s-maxage", "s-maxage=30, max-age=60", CacheControl{SMaxAge: d(30), MaxAge: d(60)}},
		{"§5.2 directive names ignore case", "Max-Age=5, NO-STORE", CacheControl{MaxAge: d(5), NoStore: true}},
		{"§5.2 quoted argument is read like a token", `max-age="60"`, CacheControl{MaxAge: d(60)}},
		{"§4.2.1 duplicate max-age keeps the most restrictive", "max-age=60, max-age=10, max-age=30", CacheControl{MaxAge: d(10)}},
		{"§4.2.1 duplicate across lines keeps the most restrictive", "max-age=10,max-age=600", CacheControl{MaxAge: d(10)}},
		{"§1.2.2 non-numeric delta-seconds is stale", `max-age="abc"`, CacheControl{MaxAge: d(0)}},
		{"§1.2.2 negative delta-seconds is stale", "max-age=-1", CacheControl{MaxAge: d(0)}},
		{"§1.2.2 empty delta-seconds is stale", "max-age=", CacheControl{MaxAge: d(0)}},
		{"§1.2.2 missing delta-seconds is stale", "max-age", CacheControl{MaxAge: d(0)}},
		{"§1.2.2 fraction is stale", "max-age=1.5", CacheControl{MaxAge: d(0)}},
		{"§1.2.2 overflow is clamped to 2^31", "max-age=99999999999999999999999", CacheControl{MaxAge: d(1 << 31)}},
		{"§1.2.2 2^31 exactly stays", "max-age=2147483648", CacheControl{MaxAge: d(1 << 31)}},
		{"§5.2.2.4 no-cache", "no-cache", CacheControl{NoCache: true}},
		{"§5.2.2.4 qualified no-cache is no-cache with fields", `no-cache="Set-Cookie, X-Foo", max-age=5`,
			CacheControl{NoCache: true, NoCacheFields: true, MaxAge: d(5)}},
		{"§5.2.2.7 qualified private is private", `private="X-User"`, CacheControl{Private: true, PrivateFields: true}},
		{"§5.2.2.9 public", "public", CacheControl{Public: true}},
		{"§5.2.2.2 must-revalidate", "must-revalidate", CacheControl{MustRevalidate: true}},
		{"§5.2.2.8 proxy-revalidate", "proxy-revalidate", CacheControl{ProxyRevalidate: true}},
		{"§5.2.2.3 must-understand", "must-understand, no-store", CacheControl{MustUnderstand: true, NoStore: true}},
		{"§5.2.2.6 no-transform", "no-transform", CacheControl{NoTransform: true}},
		{"§5.2.1.2 max-stale without argument accepts any", "max-stale", CacheControl{MaxStaleAny: true}},
		{"§5.2.1.2 max-stale with argument", "max-stale=20", CacheControl{MaxStale: d(20)}},
		{"§5.2.1.3 min-fresh keeps the largest", "min-fresh=5, min-fresh=9", CacheControl{MinFresh: d(9)}},
		{"§5.2.1.7 only-if-cached", "only-if-cached", CacheControl{OnlyIfCached: true}},
		{"RFC 5861 §3 stale-while-revalidate", "max-age=1, stale-while-revalidate=59",
			CacheControl{MaxAge: d(1), StaleWhileRevalidate: d(59)}},
		{"RFC 5861 §4 stale-if-error", "stale-if-error=600", CacheControl{StaleIfError: d(600)}},
		{"RFC 8246 immutable", "immutable", CacheControl{Immutable: true}},
		{"§5.2.3 unknown directives are ignored", `foo, bar="a,b", max-age=3, baz=1`, CacheControl{MaxAge: d(3)}},
		{"comma inside a quoted argument does not split", `community="UCI, max-age=9", public`, CacheControl{Public: true}},
		{"garbage after a directive marks the field malformed (it may hide a private)", "max-age=4 junk ; private,,, ,public", CacheControl{MaxAge: d(4), Public: true, Malformed: true}},
		{"a directive after a semicolon is no directive", "max-age=60;no-store", CacheControl{MaxAge: d(60), Malformed: true}},
		{"empty members and whitespace are well-formed", " max-age=60 ,, private ,", CacheControl{MaxAge: d(60), Private: true}},
		{"§5.2 whitespace before = makes the argument invalid", "max-age =3600", CacheControl{MaxAge: d(0)}},
		{"§5.2 whitespace after = makes the argument invalid", "max-age= 3600, public", CacheControl{MaxAge: d(0), Public: true}},
		{"§5.2 a directive with a spaced argument still counts", "no-cache = \"x\"", CacheControl{NoCache: true, NoCacheFields: true}},
		{"unterminated quote ends the value, malformed", `max-age="12`, CacheControl{MaxAge: d(12), Malformed: true}},
		{"escaped quote inside a quoted argument", `x="a\"b", no-store`, CacheControl{NoStore: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseCacheControl([]byte(tt.in)); got != tt.want {
				t.Errorf("ParseCacheControl(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCacheControlAddCombinesLines(t *testing.T) {
	var cc CacheControl
	cc.Add([]byte("max-age=60"))
	cc.Add([]byte("no-cache, max-age=5"))
	if !cc.NoCache || cc.MaxAge != (Delta{Seconds: 5, Set: true}) {
		t.Errorf("two lines read as %+v, want no-cache and max-age=5", cc)
	}
}
