package cache

import (
	"testing"
	"time"
)

// t0 is the fixed "now" of the rule tests.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func httpDate(t time.Time) string { return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") }

func fields(kv ...string) []Field {
	out := make([]Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Field{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return out
}

func meta(status int, kv ...string) Meta {
	return ParseMeta(status, fields(kv...), t0, t0, t0)
}

func TestParseMeta(t *testing.T) {
	t.Run("RFC 9111 §5.3 invalid Expires means already expired", func(t *testing.T) {
		m := meta(200, "Expires", "0")
		if !m.HasExpires || !m.Expires.IsZero() {
			t.Errorf("Expires: 0 read as %v (has %v), want expired", m.Expires, m.HasExpires)
		}
	})
	t.Run("RFC 9111 §4.2.1 of two Expires the earliest wins", func(t *testing.T) {
		m := meta(200, "Expires", httpDate(t0.Add(time.Hour)), "Expires", httpDate(t0.Add(time.Minute)))
		if !m.Expires.Equal(t0.Add(time.Minute)) {
			t.Errorf("Expires = %v, want %v", m.Expires, t0.Add(time.Minute))
		}
	})
	t.Run("RFC 9110 §5.3 Cache-Control lines combine", func(t *testing.T) {
		m := meta(200, "cache-control", "public", "Cache-Control", "max-age=5")
		if !m.CacheControl.Public || m.CacheControl.MaxAge.Seconds != 5 {
			t.Errorf("got %+v", m.CacheControl)
		}
	})
	t.Run("RFC 9110 §12.5.5 Vary star is seen in any line", func(t *testing.T) {
		m := meta(200, "Vary", "Accept", "Vary", " * ")
		if !m.Vary || !m.VaryStar {
			t.Errorf("Vary %v star %v, want both", m.Vary, m.VaryStar)
		}
	})
}

func TestStorable(t *testing.T) {
	get, head := []byte("GET"), []byte("HEAD")
	none := CacheControl{}
	tests := []struct {
		name   string
		method []byte
		req    CacheControl
		auth   bool
		m      Meta
		ttl    time.Duration
		want   NotStored
	}{
		{"§3 a fresh 200 is stored", get, none, false, meta(200, "Cache-Control", "max-age=60"), 0, StoreOK},
		{"§3 only GET responses are stored (policy)", head, none, false, meta(200, "Cache-Control", "max-age=60"), 0, NotStoredMethod},
		{"§3 POST responses are not stored", []byte("POST"), none, false, meta(200, "Cache-Control", "max-age=60"), 0, NotStoredMethod},
		{"RFC 9110 §15 a status above 599 is invalid, never stored", get, none, false, meta(999, "Cache-Control", "max-age=60"), 0, NotStoredStatus},
		{"§3 no-store in the response", get, none, false, meta(200, "Cache-Control", "max-age=60, no-store"), 0, NotStoredNoStore},
		{"§3 no-store in the request", get, CacheControl{NoStore: true}, false, meta(200, "Cache-Control", "max-age=60"), 0, NotStoredNoStore},
		{"§5.2.2.3 must-understand with an understood status ignores no-store", get, none, false,
			meta(200, "Cache-Control", "max-age=60, no-store, must-understand"), 0, StoreOK},
		{"§5.2.2.3 must-understand with a status not understood is not stored", get, none, false,
			meta(302, "Cache-Control", "max-age=60, must-understand"), 0, NotStoredMustUnderstand},
		{"§3 private is never stored in a shared cache", get, none, false, meta(200, "Cache-Control", "private, max-age=60"), 0, NotStoredPrivate},
		{"§5.2.2.7 qualified private is not stored either", get, none, false,
			meta(200, "Cache-Control", `private="X-User", max-age=60`), 0, NotStoredPrivate},
		{"§3.5 Authorization without permission is not stored", get, none, true, meta(200, "Cache-Control", "max-age=60"), 0, NotStoredAuthorization},
		{"§3.5 Authorization with public is stored", get, none, true, meta(200, "Cache-Control", "max-age=60, public"), 0, StoreOK},
		{"§3.5 Authorization with s-maxage is stored", get, none, true, meta(200, "Cache-Control", "s-maxage=60"), 0, StoreOK},
		{"§3.5 Authorization with must-revalidate is stored", get, none, true, meta(200, "Cache-Control", "max-age=60, must-revalidate"), 0, StoreOK},
		{"Set-Cookie is never stored (policy)", get, none, false, meta(200, "Cache-Control", "max-age=60, public", "Set-Cookie", "a=b"), 0, NotStoredSetCookie},
		{"§4.1 Vary: * is never stored", get, none, false, meta(200, "Cache-Control", "max-age=60", "Vary", "*"), 0, NotStoredVaryStar},
		{"a Cache-Control that cannot be read whole is not stored", get, none, false, meta(200, "Cache-Control", "max-age=60 private"), 0, NotStoredMalformed},
		{"§3 206 is not stored (no range support)", get, none, false, meta(206, "Cache-Control", "max-age=60"), 0, NotStoredStatus},
		{"§3 304 is not stored", get, none, false, meta(304, "Cache-Control", "max-age=60"), 0, NotStoredStatus},
		{"§3 1xx is not stored", get, none, false, meta(103, "Cache-Control", "max-age=60"), 0, NotStoredStatus},
		{"RFC 9110 §15.1 404 is cacheable by default", get, none, false, meta(404), time.Minute, StoreOK},
		{"RFC 9110 §15.1 302 needs explicit freshness", get, none, false, meta(302), time.Minute, NotStoredStatus},
		{"RFC 9110 §15.1 302 with max-age is stored", get, none, false, meta(302, "Cache-Control", "max-age=60"), 0, StoreOK},
		{"RFC 9110 §15.1 500 with Expires is stored", get, none, false,
			meta(500, "Expires", httpDate(t0.Add(time.Minute)), "Date", httpDate(t0)), 0, StoreOK},
		{"§4.2.2 without default_ttl a bare 200 is useless", get, none, false, meta(200), 0, NotStoredNoFreshness},
		{"§4.2.2 with default_ttl a bare 200 is stored", get, none, false, meta(200), time.Minute, StoreOK},
		{"§4.3 a stale 200 with an ETag is stored for revalidation", get, none, false,
			meta(200, "Cache-Control", "no-cache", "ETag", `"v1"`), 0, StoreOK},
		{"§4.3 a stale 200 with Last-Modified is stored for revalidation", get, none, false,
			meta(200, "Last-Modified", httpDate(t0.Add(-time.Hour))), 0, StoreOK},
		{"RFC 5861 a stale 200 with stale-if-error is stored", get, none, false,
			meta(200, "Cache-Control", "max-age=0, stale-if-error=60"), 0, StoreOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Storable(tt.method, &tt.req, tt.auth, &tt.m, Heuristic{Fixed: tt.ttl}); got != tt.want {
				t.Errorf("Storable = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLifetime(t *testing.T) {
	tests := []struct {
		name string
		m    Meta
		ttl  time.Duration
		want time.Duration
	}{
		{"§4.2.1 s-maxage wins over max-age", meta(200, "Cache-Control", "max-age=60, s-maxage=10"), 0, 10 * time.Second},
		{"§4.2.1 max-age wins over Expires", meta(200, "Cache-Control", "max-age=60",
			"Expires", httpDate(t0.Add(time.Hour)), "Date", httpDate(t0)), 0, time.Minute},
		{"§4.2.1 Expires minus Date", meta(200, "Expires", httpDate(t0.Add(90*time.Second)),
			"Date", httpDate(t0.Add(-30*time.Second))), 0, 2 * time.Minute},
		{"§4.2.1 Expires minus the response time without Date", meta(200, "Expires", httpDate(t0.Add(time.Minute))), 0, time.Minute},
		{"§4.2.1 Expires before Date is zero", meta(200, "Expires", httpDate(t0.Add(-time.Minute)), "Date", httpDate(t0)), 0, 0},
		{"§5.3 invalid Expires is zero and blocks heuristics", meta(200, "Expires", "-1"), time.Hour, 0},
		{"§4.2.2 default_ttl applies without explicit freshness", meta(200), time.Hour, time.Hour},
		{"§4.2.2 default_ttl only for statuses cacheable by default", meta(302), time.Hour, 0},
		{"§4.2.2 no heuristic without default_ttl or a Last-Modified", meta(200), 0, 0},
		{"§4.2.2 default_ttl for a public response of any status", meta(500, "Cache-Control", "public"), time.Hour, time.Hour},
		{"§4.2.1 invalid max-age is stale", meta(200, "Cache-Control", `max-age="x"`), time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Lifetime(&tt.m, Heuristic{Fixed: tt.ttl}); got != tt.want {
				t.Errorf("Lifetime = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLastModifiedHeuristic(t *testing.T) {
	day := 24 * time.Hour
	lm := func(status int, since time.Duration, fields ...string) Meta {
		return meta(status, append([]string{"Date", httpDate(t0), "Last-Modified", httpDate(t0.Add(-since))}, fields...)...)
	}
	h := Heuristic{LastModifiedMax: day}
	tests := []struct {
		name string
		m    Meta
		h    Heuristic
		want time.Duration
	}{
		{"§4.2.2 a tenth of the time since Last-Modified", lm(200, 100*time.Minute), h, 10 * time.Minute},
		{"§4.2.2 capped", lm(200, 30*day), h, day},
		{"§4.2.2 for every status cacheable by default", lm(404, 100*time.Minute), h, 10 * time.Minute},
		{"§4.2.2 and for public responses", lm(599, 100*time.Minute, "Cache-Control", "public"), h, 10 * time.Minute},
		{"§4.2.2 not for other statuses", lm(302, 100*time.Minute), h, 0},
		{"§4.2.2 not with explicit freshness", lm(200, 100*time.Minute, "Cache-Control", "max-age=5"), h, 5 * time.Second},
		{"§4.2.2 not with an Expires, even invalid", lm(200, 100*time.Minute, "Expires", "0"), h, 0},
		{"§4.2.2 a Last-Modified after Date earns nothing", lm(200, -time.Hour), h, 0},
		{"§4.2.2 default_ttl comes first", lm(200, 100*time.Minute), Heuristic{Fixed: time.Hour, LastModifiedMax: day}, time.Hour},
		{"off", lm(200, 100*time.Minute), Heuristic{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Lifetime(&tt.m, tt.h); got != tt.want {
				t.Errorf("Lifetime = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		name     string
		date     string
		age      string
		req, rsp time.Time
		now      time.Time
		want     time.Duration
	}{
		{"§4.2.3 a fresh response has age 0", httpDate(t0), "", t0, t0, t0, 0},
		{"§4.2.3 apparent age from Date", httpDate(t0.Add(-10 * time.Second)), "", t0, t0, t0, 10 * time.Second},
		{"§4.2.3 Age plus response delay", httpDate(t0), "5", t0.Add(-2 * time.Second), t0, t0, 7 * time.Second},
		{"§4.2.3 the larger of apparent and corrected age", httpDate(t0.Add(-30 * time.Second)), "5", t0, t0, t0, 30 * time.Second},
		{"§4.2.3 a Date in the future gives no negative age", httpDate(t0.Add(time.Hour)), "", t0, t0, t0, 0},
		{"§4.2.3 resident time adds up", httpDate(t0), "3", t0, t0, t0.Add(time.Minute), 63 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := []string{"Date", tt.date}
			if tt.age != "" {
				kv = append(kv, "Age", tt.age)
			}
			m := ParseMeta(200, fields(kv...), tt.req, tt.rsp, t0)
			if got := CurrentAge(InitialAge(&m), tt.rsp, tt.now); got != tt.want {
				t.Errorf("age = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUsable(t *testing.T) {
	cc := func(s string) CacheControl { return ParseCacheControl([]byte(s)) }
	const s = time.Second
	tests := []struct {
		name     string
		lifetime time.Duration
		age      time.Duration
		resp     string
		req      string
		want     Decision
	}{
		{"§4.2 fresh is served", 60 * s, 10 * s, "max-age=60", "", Fresh},
		{"§4.2 stale at exactly its lifetime", 60 * s, 60 * s, "max-age=60", "", Revalidate},
		{"§5.2.2.4 response no-cache always revalidates", 60 * s, 0, "max-age=60, no-cache", "", Revalidate},
		{"§5.2.1.4 request no-cache revalidates a fresh entry", 60 * s, 0, "max-age=60", "no-cache", RevalidateRequested},
		{"§5.2.1.1 request max-age below the age revalidates", 60 * s, 30 * s, "max-age=60", "max-age=10", RevalidateRequested},
		{"§5.2.1.1 request max-age=0 revalidates", 60 * s, 1 * s, "max-age=60", "max-age=0", RevalidateRequested},
		{"§5.2.1.1 request max-age above the age serves", 60 * s, 5 * s, "max-age=60", "max-age=10", Fresh},
		{"§5.2.1.3 min-fresh not met revalidates", 60 * s, 50 * s, "max-age=60", "min-fresh=20", RevalidateRequested},
		{"§5.2.1.3 min-fresh met serves", 60 * s, 30 * s, "max-age=60", "min-fresh=20", Fresh},
		{"§5.2.1.2 max-stale within the limit serves stale", 60 * s, 70 * s, "max-age=60", "max-stale=15", StaleAccepted},
		{"§5.2.1.2 max-stale beyond the limit revalidates", 60 * s, 80 * s, "max-age=60", "max-stale=15", Revalidate},
		{"§5.2.1.2 max-stale without a value accepts any staleness", 60 * s, 9000 * s, "max-age=60", "max-stale", StaleAccepted},
		{"§5.2.2.2 must-revalidate forbids max-stale", 60 * s, 70 * s, "max-age=60, must-revalidate", "max-stale", Revalidate},
		{"§5.2.2.8 proxy-revalidate forbids max-stale in a shared cache", 60 * s, 70 * s, "max-age=60, proxy-revalidate", "max-stale", Revalidate},
		{"§5.2.2.10 s-maxage implies proxy-revalidate", 60 * s, 70 * s, "s-maxage=60", "max-stale", Revalidate},
		{"RFC 5861 §3 within stale-while-revalidate serves stale", 60 * s, 80 * s, "max-age=60, stale-while-revalidate=30", "", StaleWhileRevalidate},
		{"RFC 5861 §3 past stale-while-revalidate revalidates", 60 * s, 90 * s, "max-age=60, stale-while-revalidate=30", "", Revalidate},
		{"RFC 5861 §3 stale-while-revalidate=0 is no window", 60 * s, 60 * s, "max-age=60, stale-while-revalidate=0", "", Revalidate},
		{"RFC 5861 §3 s-maxage with an explicit window still serves stale", 60 * s, 70 * s, "s-maxage=60, stale-while-revalidate=30", "", StaleWhileRevalidate},
		{"§5.2.2.2 must-revalidate forbids stale-while-revalidate", 60 * s, 70 * s, "max-age=60, must-revalidate, stale-while-revalidate=30", "", Revalidate},
		{"§5.2.1.1 request max-age forbids stale-while-revalidate", 60 * s, 70 * s, "max-age=60, stale-while-revalidate=30", "max-age=65", Revalidate},
		{"§5.2.1.3 request min-fresh forbids stale-while-revalidate", 60 * s, 70 * s, "max-age=60, stale-while-revalidate=30", "min-fresh=1", Revalidate},
		{"§4.2.1 zero lifetime is always stale", 0, 0, "max-age=0", "", Revalidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, req := cc(tt.resp), cc(tt.req)
			if got := Usable(tt.lifetime, tt.age, &resp, &req); got != tt.want {
				t.Errorf("Usable = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStaleIfError(t *testing.T) {
	cc := func(s string) CacheControl { return ParseCacheControl([]byte(s)) }
	const s = time.Second
	tests := []struct {
		name       string
		age        time.Duration
		resp, req  string
		configured time.Duration // the route's stale_if_error
		want       bool
	}{
		{"RFC 5861 §4 within the response window", 100 * s, "max-age=60, stale-if-error=60", "", 0, true},
		{"RFC 5861 §4 past the response window", 130 * s, "max-age=60, stale-if-error=60", "", 0, false},
		{"RFC 5861 §4 the request window counts too", 100 * s, "max-age=60", "stale-if-error=60", 0, true},
		{"RFC 5861 §4 without a window nothing stale is served", 61 * s, "max-age=60", "", 0, false},
		{"§5.2.2.2 must-revalidate forbids stale-if-error", 100 * s, "max-age=60, must-revalidate, stale-if-error=600", "", 0, false},
		{"§5.2.2.8 proxy-revalidate forbids stale-if-error", 100 * s, "max-age=60, proxy-revalidate, stale-if-error=600", "", 0, false},
		{"§5.2.2.4 response no-cache forbids stale-if-error", 100 * s, "max-age=60, no-cache, stale-if-error=600", "", 0, false},
		{"§5.2.1.4 request no-cache forbids the response window", 100 * s, "max-age=60, stale-if-error=600", "no-cache", 0, false},
		{"§5.2.1.4 request no-cache with its own window allows it", 100 * s, "max-age=60", "no-cache, stale-if-error=600", 0, true},
		{"§4.2.4 the route's window serves a response that was fresh", 100 * s, "max-age=60", "", 60 * s, true},
		{"§4.2.4 past the route's window the error goes through", 130 * s, "max-age=60", "", 60 * s, false},
		{"§4.2.4 a longer response window wins over the route's", 130 * s, "max-age=60, stale-if-error=600", "", 60 * s, true},
		{"§4.2.4 a response never fresh gets no route window", 30 * s, "max-age=0", "", 60 * s, false},
		{"§5.2.2.10 s-maxage rules out the route's window", 100 * s, "s-maxage=60", "", 60 * s, false},
		{"§5.2.2.10 s-maxage keeps the origin's own window", 100 * s, "s-maxage=60, stale-if-error=600", "", 60 * s, true},
		{"§5.2.2.2 must-revalidate rules out the route's window", 100 * s, "max-age=60, must-revalidate", "", 60 * s, false},
		{"§5.2.2.8 proxy-revalidate rules out the route's window", 100 * s, "max-age=60, proxy-revalidate", "", 60 * s, false},
		{"§5.2.2.4 response no-cache rules out the route's window", 100 * s, "max-age=60, no-cache", "", 60 * s, false},
		{"§5.2.1.4 request no-cache rules out the route's window", 100 * s, "max-age=60", "no-cache", 60 * s, false},
		{"§5.2.1.4 request no-cache with stale-if-error=0 rules out the route's window", 100 * s, "max-age=60", "no-cache, stale-if-error=0", 60 * s, false},
		{"RFC 5861 §4 the request's stale-if-error caps the route's window", 100 * s, "max-age=60", "stale-if-error=30", 60 * s, false},
		{"RFC 5861 §4 the origin's stale-if-error caps the route's window", 100 * s, "max-age=60, stale-if-error=0", "", 60 * s, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, req := cc(tt.resp), cc(tt.req)
			lifetime := resp.MaxAge.Duration() // as Lifetime gives it, for these
			if resp.SMaxAge.Set {
				lifetime = resp.SMaxAge.Duration()
			}
			if got := StaleIfError(lifetime, tt.age, &resp, &req, tt.configured); got != tt.want {
				t.Errorf("StaleIfError = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOriginFailed(t *testing.T) {
	for status, want := range map[int]bool{0: true, 500: true, 502: true, 503: true, 504: true, 501: false, 404: false, 200: false, 599: false, 600: true, 999: true} {
		if got := OriginFailed(status); got != want {
			t.Errorf("RFC 5861 §4: OriginFailed(%d) = %v, want %v", status, got, want)
		}
	}
}

// RFC 9111 §5.1: the Age field is one non-negative integer. This cache
// reads anything else (a list, a second line, a sign, a fraction, a
// parameter, garbage) as an age it cannot trust and counts the response as
// stale, rather than taking the list's first member or ignoring the field
// as §5.1 allows, either of which can make a response look younger than it
// is. A value too large to represent is 2^31 (§1.2.2).
func TestRFC9111Section5_1AgeParsing(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  Delta
	}{
		{"a plain value", []string{"17"}, Delta{Seconds: 17, Set: true}},
		{"whitespace around it is not part of it", []string{" 17 "}, Delta{Seconds: 17, Set: true}},
		{"zero", []string{"0"}, Delta{Seconds: 0, Set: true}},
		{"a list is not one age: stale", []string{"0, 7200"}, untrustedAge},
		{"a list is not one age, old first: stale", []string{"7200,0"}, untrustedAge},
		{"a list of equal members: stale", []string{"0, 0"}, untrustedAge},
		{"two lines: stale", []string{"0", "7200"}, untrustedAge},
		{"two lines, old first: stale", []string{"7200", "0"}, untrustedAge},
		{"two equal lines: stale", []string{"0", "0"}, untrustedAge},
		{"non-numeric: stale", []string{"abc"}, untrustedAge},
		{"negative: stale", []string{"-7200"}, untrustedAge},
		{"a float: stale", []string{"7200.0"}, untrustedAge},
		{"a parameter: stale", []string{"7200;foo=bar"}, untrustedAge},
		{"empty: stale", []string{""}, untrustedAge},
		{"2^31-1 is kept", []string{"2147483647"}, Delta{Seconds: 2147483647, Set: true}},
		{"larger than 2^31 is 2^31", []string{"99999999999"}, Delta{Seconds: maxDelta, Set: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kv []string
			for _, l := range tt.lines {
				kv = append(kv, "Age", l)
			}
			kv = append(kv, "Date", httpDate(t0), "Cache-Control", "max-age=3600")
			m := meta(200, kv...)
			if m.Age != tt.want {
				t.Fatalf("Age = %+v, want %+v", m.Age, tt.want)
			}
			// Fresh exactly when the age counted is within the lifetime.
			fresh := Usable(Lifetime(&m, Heuristic{}), CurrentAge(InitialAge(&m), t0, t0), &m.CacheControl, &CacheControl{}) == Fresh
			if want := tt.want.Seconds < 3600; fresh != want {
				t.Errorf("fresh = %v, want %v", fresh, want)
			}
		})
	}
}
