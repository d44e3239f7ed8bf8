package cache

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTieredMissThenHit(t *testing.T) {
	c := newClock()
	tc := newTestTiered(t, c, nil)
	o := answer(200, "hello", "Cache-Control", "max-age=60", "Content-Type", "text/plain")
	r := req("GET", "/a")

	res := get(tc, r, o)
	if res.Entry == nil || !res.Stored || res.Tier != TierOrigin || res.Fwd != FwdMiss || res.FwdStatus != 200 {
		t.Fatalf("first Get = %+v, want a stored fill after a miss", res)
	}
	c.Advance(10 * time.Second)
	res = get(tc, r, o)
	if res.Tier != TierL1 || res.Fwd != FwdNone || string(res.Entry.Body) != "hello" {
		t.Fatalf("second Get = %+v, want an L1 hit", res)
	}
	if res.Age != 10*time.Second || res.TTL != 50*time.Second {
		t.Errorf("RFC 9111 §4.2.3: Age %v TTL %v, want 10s and 50s", res.Age, res.TTL)
	}
	if got := get(tc, req("HEAD", "/a"), o); got.Tier != TierL1 {
		t.Errorf("a HEAD was not answered from the stored GET: %+v", got)
	}
	if n := o.calls.Load(); n != 1 {
		t.Errorf("origin called %d times, want 1", n)
	}
}

func TestTieredNotStored(t *testing.T) {
	tests := []struct {
		name string
		r    *Request
		o    *origin
		max  int64
		why  NotStored
	}{
		{"RFC 9111 §3 private", req("GET", "/a"), answer(200, "x", "Cache-Control", "private, max-age=60"), 0, NotStoredPrivate},
		{"RFC 9111 §3.5 Authorization", func() *Request { r := req("GET", "/a"); r.Authorization = true; return r }(),
			answer(200, "x", "Cache-Control", "max-age=60"), 0, NotStoredAuthorization},
		{"Set-Cookie", req("GET", "/a"), answer(200, "x", "Cache-Control", "max-age=60", "Set-Cookie", "s=1"), 0, NotStoredSetCookie},
		{"larger than max_entry", req("GET", "/a"), answer(200, strings.Repeat("x", 4096), "Cache-Control", "max-age=60"), 1024, NotStoredTooLarge},
		{"a streamed body", req("GET", "/a"), &origin{respond: func(*Entry, int32) *Response {
			return &Response{Status: 200, Header: fields("Cache-Control", "max-age=60"), Streamed: true}
		}}, 0, NotStoredTooLarge},
		{"no response", req("GET", "/a"), &origin{respond: func(*Entry, int32) *Response { return nil }}, 0, NotStoredFailed},
		{"a HEAD response", req("HEAD", "/a"), answer(200, "", "Cache-Control", "max-age=60"), 0, NotStoredMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestTiered(t, newClock(), nil)
			if tt.max > 0 {
				tt.r.Policy.MaxEntry = tt.max
			}
			res := get(tc, tt.r, tt.o)
			if res.Entry != nil || res.Stored || res.NotStored != tt.why || res.Tier != TierOrigin {
				t.Fatalf("Get = %+v, want nothing stored because %q", res, tt.why)
			}
			get(tc, tt.r, tt.o)
			if n := tt.o.calls.Load(); n != 2 {
				t.Errorf("origin called %d times for two requests, want 2", n)
			}
		})
	}
}

func TestTieredVary(t *testing.T) {
	tc := newTestTiered(t, newClock(), nil)
	o := &origin{respond: func(_ *Entry, n int32) *Response {
		return &Response{Status: 200, Header: fields("Cache-Control", "max-age=60", "Vary", "Accept-Language"),
			Body: []byte{byte('0' + n)}}
	}}
	lang := func(v string) *Request { r := req("GET", "/a"); r.Fields = header("Accept-Language", v); return r }

	de := get(tc, lang("de"), o)
	fr := get(tc, lang("fr"), o)
	if fr.Fwd != FwdVaryMiss {
		t.Errorf("RFC 9211: a second language forwarded as %q, want vary-miss", fr.Fwd)
	}
	again := get(tc, lang(" de"), o)
	if again.Tier != TierL1 || string(again.Entry.Body) != string(de.Entry.Body) {
		t.Errorf("RFC 9111 §4.1: de again = %+v, want the de variant from L1", again)
	}
	if string(fr.Entry.Body) == string(de.Entry.Body) {
		t.Errorf("RFC 9111 §4.1: fr was served de's response")
	}
	none := get(tc, req("GET", "/a"), o)
	if none.Tier != TierOrigin {
		t.Errorf("RFC 9111 §4.1: a request without the field was served a variant: %+v", none)
	}
	if n := o.calls.Load(); n != 3 {
		t.Errorf("origin called %d times, want 3 (de, fr, absent)", n)
	}
}

func TestTieredRevalidation(t *testing.T) {
	c := newClock()
	tc := newTestTiered(t, c, nil)
	o := &origin{stales: make(chan *Entry, 4), respond: func(stale *Entry, n int32) *Response {
		if n == 1 {
			return &Response{Status: 200, Header: fields("Cache-Control", "max-age=1", "ETag", `"v1"`, "X-Version", "1"), Body: []byte("body")}
		}
		return &Response{Status: 304, Header: fields("Cache-Control", "max-age=100", "ETag", `"v1"`, "X-Version", "2", "Content-Length", "0")}
	}}
	r := req("GET", "/a")
	get(tc, r, o)
	if s := <-o.stales; s != nil {
		t.Fatalf("the first fill was given a stale entry")
	}
	c.Advance(5 * time.Second)
	res := get(tc, r, o)
	stale := <-o.stales
	if stale == nil {
		t.Fatal("RFC 9111 §4.3.1: the revalidation was not given the stored entry")
	}
	if inm, _ := stale.Validators(); string(inm) != `"v1"` {
		t.Errorf("RFC 9111 §4.3.1: If-None-Match would be %q, want \"v1\"", inm)
	}
	if res.Fwd != FwdStale || res.FwdStatus != 304 || !res.Stored || string(res.Entry.Body) != "body" {
		t.Fatalf("RFC 9111 §4.3.4: revalidation result %+v", res)
	}
	if got := headerValue(res.Entry, "X-Version"); got != "2" {
		t.Errorf("RFC 9111 §4.3.4: X-Version = %q after the 304, want 2", got)
	}
	if res.Entry.Lifetime() != 100*time.Second {
		t.Errorf("RFC 9111 §4.3.4: lifetime %v after the 304, want 100s", res.Entry.Lifetime())
	}
	if hit := get(tc, r, o); hit.Tier != TierL1 || hit.Stale {
		t.Errorf("after revalidation: %+v, want a fresh L1 hit", hit)
	}
	if st := tc.Stats(); st.Revalidations != 1 || st.Revalidated != 1 {
		t.Errorf("stats: %d revalidations, %d updated; want 1 and 1", st.Revalidations, st.Revalidated)
	}
}

// A 304 updates the stored response's fields (§4.3.4), and the result is
// stored only if a response with those fields may be (§3): a 304 that says
// private, no-store or Vary: *, or varies on other fields, answers its
// request and leaves nothing stored. Found by a poisoning sweep: the
// private answer was served to the next client from cache.
func TestTieredA304ThatForbidsStoringLeavesNothingStored(t *testing.T) {
	for _, fields304 := range [][]string{
		{"Cache-Control", "private, max-age=60"},
		{"Cache-Control", "no-store, max-age=60"},
		{"Cache-Control", "max-age=60", "Vary", "*"},
		{"Cache-Control", "max-age=60", "Vary", "X-Lang"},
	} {
		t.Run(fmt.Sprint(fields304), func(t *testing.T) {
			c := newClock()
			tc := newTestTiered(t, c, nil)
			o := &origin{respond: func(_ *Entry, n int32) *Response {
				switch n {
				case 1:
					return &Response{Status: 200, Header: fields("Cache-Control", "max-age=1", "ETag", `"v1"`), Body: []byte("body")}
				case 2:
					return &Response{Status: 304, Header: fields(append([]string{"ETag", `"v1"`}, fields304...)...)}
				}
				return &Response{Status: 200, Header: fields("Cache-Control", "max-age=60"), Body: []byte("anew")}
			}}
			r := req("GET", "/a")
			get(tc, r, o)
			c.Advance(5 * time.Second)
			res := get(tc, r, o)
			if res.FwdStatus != 304 || res.Stored || res.NotStored == StoreOK || string(res.Entry.Body) != "body" {
				t.Fatalf("the revalidated answer: %+v, want the updated response, not stored", res)
			}
			if next := get(tc, r, o); next.Tier != TierOrigin || string(next.Entry.Body) != "anew" {
				t.Fatalf("the next request: %+v, want a fill from the origin", next)
			}
		})
	}
}

// A request that forbids storing what answers it (its no-store, its
// Authorization without the response allowing sharing) stores nothing from
// its revalidation, and leaves the entry as it was: dropping it let any
// client evict a shared entry with one request.
func TestTieredARequestThatForbidsStoringLeavesTheEntry(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Request)
	}{
		{"no-store", func(r *Request) { r.CacheControl = ParseCacheControl([]byte("no-cache, no-store")) }},
		{"Authorization", func(r *Request) {
			r.CacheControl = ParseCacheControl([]byte("no-cache"))
			r.Authorization = true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc2 := newTestTiered(t, newClock(), nil)
			o := &origin{respond: func(_ *Entry, n int32) *Response {
				if n == 1 {
					return &Response{Status: 200, Header: fields("Cache-Control", "max-age=600", "ETag", `"v1"`), Body: []byte("body")}
				}
				return &Response{Status: 304, Header: fields("Cache-Control", "max-age=600", "ETag", `"v1"`)}
			}}
			get(tc2, req("GET", "/a"), o)
			r := req("GET", "/a")
			tc.edit(r)
			if res := get(tc2, r, o); res.FwdStatus != 304 || res.Stored {
				t.Fatalf("the revalidation: %+v, want a 304, not stored", res)
			}
			if res := get(tc2, req("GET", "/a"), o); res.Tier != TierL1 {
				t.Fatalf("the next request: %+v, want the entry, still in L1", res)
			}
		})
	}
}

func TestTieredA304ForAnotherRepresentationRefetches(t *testing.T) {
	c := newClock()
	tc := newTestTiered(t, c, nil)
	o := &origin{stales: make(chan *Entry, 4), respond: func(stale *Entry, n int32) *Response {
		switch n {
		case 2:
			return &Response{Status: 304, Header: fields("ETag", `"v2"`)}
		}
		return &Response{Status: 200, Header: fields("Cache-Control", "max-age=1", "ETag", `"v1"`), Body: []byte{byte('0' + n)}}
	}}
	r := req("GET", "/a")
	get(tc, r, o)
	<-o.stales
	c.Advance(5 * time.Second)
	res := get(tc, r, o)
	if s2, s3 := <-o.stales, <-o.stales; s2 == nil || s3 != nil {
		t.Fatalf("RFC 9111 §4.3.4: want a conditional fill then an unconditional one, got %v then %v", s2, s3)
	}
	if res.FwdStatus != 200 || string(res.Entry.Body) != "3" {
		t.Errorf("result %+v, want the refetched response", res)
	}
}

func TestTieredStaleIfError(t *testing.T) {
	tests := []struct {
		name      string
		cc        string
		after     time.Duration
		failure   *Response
		wantStale bool
	}{
		{"RFC 5861 §4 a 503 within the window serves stale", "max-age=1, stale-if-error=60", 10 * time.Second,
			&Response{Status: 503}, true},
		{"RFC 5861 §4 no response within the window serves stale", "max-age=1, stale-if-error=60", 10 * time.Second, nil, true},
		{"RFC 5861 §4 past the window the error goes through", "max-age=1, stale-if-error=60", 2 * time.Minute,
			&Response{Status: 503}, false},
		{"RFC 9111 §5.2.2.2 must-revalidate forbids it", "max-age=1, must-revalidate, stale-if-error=60", 10 * time.Second,
			&Response{Status: 502}, false},
		{"RFC 5861 §4 a 404 is not an error", "max-age=1, stale-if-error=60", 10 * time.Second,
			&Response{Status: 404}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tc := newTestTiered(t, c, nil)
			o := &origin{respond: func(_ *Entry, n int32) *Response {
				if n == 1 {
					return &Response{Status: 200, Header: fields("Cache-Control", tt.cc), Body: []byte("good")}
				}
				return tt.failure
			}}
			r := req("GET", "/a")
			get(tc, r, o)
			c.Advance(tt.after)
			res := get(tc, r, o)
			if got := res.Entry != nil && res.Stale; got != tt.wantStale {
				t.Fatalf("served stale = %v, want %v (%+v)", got, tt.wantStale, res)
			}
			if tt.wantStale && (string(res.Entry.Body) != "good" || res.Fwd != FwdStale) {
				t.Errorf("stale result %+v", res)
			}
		})
	}
}

func TestTieredRouteStaleIfError(t *testing.T) {
	tests := []struct {
		name      string
		cc        string
		after     time.Duration
		wantStale bool
	}{
		{"RFC 9111 §4.2.4 a backend that fails within the route's window gets stale served", "max-age=1", 10 * time.Second, true},
		{"RFC 9111 §4.2.4 past the route's window the failure goes through", "max-age=1", 40 * time.Second, false},
		{"RFC 9111 §5.2.2.10 s-maxage rules the route's window out", "s-maxage=1", 10 * time.Second, false},
		{"RFC 9111 §5.2.2.2 must-revalidate rules the route's window out", "max-age=1, must-revalidate", 10 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tc := newTestTiered(t, c, nil)
			o := &origin{respond: func(_ *Entry, n int32) *Response {
				if n == 1 {
					return &Response{Status: 200, Header: fields("Cache-Control", tt.cc), Body: []byte("good")}
				}
				return nil // refused, closed, timed out
			}}
			r := req("GET", "/a")
			r.Policy.StaleIfError = 30 * time.Second
			get(tc, r, o)
			c.Advance(tt.after)
			res := get(tc, r, o)
			if got := res.Entry != nil && res.Stale; got != tt.wantStale {
				t.Fatalf("served stale = %v, want %v (%+v)", got, tt.wantStale, res)
			}
		})
	}
}

func TestARouteStaleIfErrorWindowKeepsAnEntryWithoutValidators(t *testing.T) {
	const s = time.Second
	now := time.Now()
	e := newEntry([]byte("k"), []byte("u"), 200, nil, nil, nil, nil, &Meta{RequestTime: now, ResponseTime: now, Date: now}, 10*s)
	if got := e.keepFor(now, time.Minute, 0); got != 10*s {
		t.Errorf("without a window: kept %v, want its freshness, 10s (no validator for keep_stale)", got)
	}
	if got := e.keepFor(now, time.Minute, 30*s); got != 40*s {
		t.Errorf("with a route window of 30s: kept %v, want 40s", got)
	}
	never := newEntry([]byte("k"), []byte("u"), 200, nil, nil, nil, nil, &Meta{RequestTime: now, ResponseTime: now, Date: now}, 0)
	if got := never.keepFor(now, time.Minute, 30*s); got > 0 {
		t.Errorf("a response never fresh: kept %v, want nothing", got)
	}
}

func TestTieredStaleWhileRevalidate(t *testing.T) {
	c := newClock()
	tc := newTestTiered(t, c, nil)
	o := &origin{respond: func(_ *Entry, n int32) *Response {
		return &Response{Status: 200, Header: fields("Cache-Control", "max-age=1, stale-while-revalidate=30"),
			Body: []byte{byte('0' + n)}}
	}}
	r := req("GET", "/a")
	key := AppendKey(nil, r)
	get(tc, r, o)
	c.Advance(5 * time.Second)

	first := get(tc, r, o)
	second := get(tc, r, o)
	if !first.Stale || !first.Refresh || string(first.Entry.Body) != "1" {
		t.Fatalf("RFC 5861 §3: first stale Get = %+v, want stale with the refresh", first)
	}
	if !second.Stale || second.Refresh {
		t.Fatalf("RFC 5861 §3: second stale Get = %+v, want stale without a second refresh", second)
	}
	tc.Refresh(r, key, o)
	fresh := get(tc, r, o)
	if fresh.Stale || string(fresh.Entry.Body) != "2" || fresh.Tier != TierL1 {
		t.Fatalf("after Refresh: %+v, want the refreshed entry, fresh", fresh)
	}
	c.Advance(5 * time.Second)
	if again := get(tc, r, o); !again.Refresh {
		t.Errorf("after a refresh finished, the key could not be refreshed again")
	}
}

func TestTieredClientConditionals(t *testing.T) {
	tc := newTestTiered(t, newClock(), nil)
	o := answer(200, "x", "Cache-Control", "max-age=60", "ETag", `"v1"`)
	r := req("GET", "/a")
	r.IfNoneMatch = []byte(`"v0", "v1"`)
	if res := get(tc, r, o); !res.NotModified || res.Entry == nil {
		t.Errorf("RFC 9110 §13.1.2: a matching If-None-Match on a fill = %+v, want NotModified", res)
	}
	if res := get(tc, r, o); !res.NotModified || res.Tier != TierL1 {
		t.Errorf("RFC 9110 §13.1.2: a matching If-None-Match on a hit = %+v, want NotModified", res)
	}
	r.IfNoneMatch = []byte(`"v2"`)
	if res := get(tc, r, o); res.NotModified {
		t.Errorf("RFC 9110 §13.1.2: a different tag answered 304")
	}
	for _, status := range []int{404, 301} {
		o := answer(status, "x", "Cache-Control", "max-age=60", "ETag", `"v1"`, "Location", "/b")
		r := req("GET", fmt.Sprintf("/s%d", status))
		r.IfNoneMatch = []byte(`"v1"`)
		get(tc, r, o)
		if res := get(tc, r, o); res.NotModified || res.Tier != TierL1 {
			t.Errorf("RFC 9110 §13.2.1: a stored %d answered a matching If-None-Match with %+v, want itself", status, res)
		}
	}
}

func TestTieredOnlyIfCached(t *testing.T) {
	tc := newTestTiered(t, newClock(), nil)
	o := answer(200, "x", "Cache-Control", "max-age=60")
	r := req("GET", "/a")
	r.CacheControl.OnlyIfCached = true
	if res := get(tc, r, o); !res.OnlyIfCached || res.Entry != nil || o.calls.Load() != 0 {
		t.Fatalf("RFC 9111 §5.2.1.7: only-if-cached miss = %+v, origin calls %d", res, o.calls.Load())
	}
	get(tc, req("GET", "/a"), o)
	if res := get(tc, r, o); res.OnlyIfCached || res.Tier != TierL1 {
		t.Fatalf("RFC 9111 §5.2.1.7: only-if-cached hit = %+v", res)
	}
}

func TestTieredRequestDirectives(t *testing.T) {
	c := newClock()
	tc := newTestTiered(t, c, nil)
	o := answer(200, "x", "Cache-Control", "max-age=60", "ETag", `"v"`)
	get(tc, req("GET", "/a"), o)
	r := req("GET", "/a")
	r.CacheControl.NoCache = true
	if res := get(tc, r, o); res.Fwd != FwdRequest || res.Tier != TierOrigin {
		t.Errorf("RFC 9111 §5.2.1.4: no-cache request = %+v, want forwarded (request)", res)
	}
	r = req("GET", "/a")
	r.CacheControl.NoStore = true
	o.respond = func(*Entry, int32) *Response {
		return &Response{Status: 200, Header: fields("Cache-Control", "max-age=60"), Body: []byte("new")}
	}
	c.Advance(2 * time.Minute)
	if res := get(tc, r, o); res.Stored || res.NotStored != NotStoredNoStore {
		t.Errorf("RFC 9111 §5.2.1.5: no-store request = %+v, want not stored", res)
	}
}

func TestTieredDropsAnEntryTheOriginNoLongerAllows(t *testing.T) {
	c := newClock()
	tc := newTestTiered(t, c, nil)
	o := &origin{respond: func(_ *Entry, n int32) *Response {
		if n == 1 {
			return &Response{Status: 200, Header: fields("Cache-Control", "max-age=1, stale-if-error=600"), Body: []byte("old")}
		}
		return &Response{Status: 200, Header: fields("Cache-Control", "private"), Body: []byte("mine")}
	}}
	r := req("GET", "/a")
	get(tc, r, o)
	c.Advance(5 * time.Second)
	get(tc, r, o) // private now: must drop "old"
	tc.l1.Wait()
	if e, _ := tc.lookupL1(r, AppendKey(nil, r)); e != nil {
		t.Errorf("the stale entry survived a private response")
	}
}

func TestTieredCoalescesConcurrentMisses(t *testing.T) {
	tests := []struct {
		name      string
		cc        string
		wantCalls int32
	}{
		{"a storable response is shared: one fill", "max-age=60", 1},
		{"a private response is not: each request fills", "private", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestTiered(t, newClock(), nil)
			o := answer(200, "x", "Cache-Control", tt.cc)
			o.delay = 50 * time.Millisecond
			start := make(chan struct{})
			var wg sync.WaitGroup
			var got atomic.Int32
			for range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if res := get(tc, req("GET", "/hot"), o); res.Entry != nil || res.NotStored == NotStoredPrivate {
						got.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := o.calls.Load(); n != tt.wantCalls {
				t.Errorf("origin called %d times for 200 concurrent misses, want %d", n, tt.wantCalls)
			}
			if got.Load() != 200 {
				t.Errorf("%d of 200 requests got an answer", got.Load())
			}
		})
	}
}

func TestTieredSlowLeaderDoesNotHoldWaiters(t *testing.T) {
	tc := newTestTiered(t, newClock(), func(o *Options) { o.LockTimeout = 100 * time.Millisecond })
	leaderIn := make(chan struct{})
	release := make(chan struct{})
	o := &origin{respond: func(_ *Entry, n int32) *Response {
		if n == 1 {
			close(leaderIn)
			<-release
		}
		return &Response{Status: 200, Header: fields("Cache-Control", "max-age=60"), Body: []byte("x")}
	}}
	leaderDone := make(chan struct{})
	go func() { defer close(leaderDone); get(tc, req("GET", "/slow"), o) }()
	<-leaderIn
	start := time.Now()
	res := get(tc, req("GET", "/slow"), o)
	waited := time.Since(start)
	close(release)
	<-leaderDone
	if res.Entry == nil || res.Collapsed {
		t.Errorf("waiter result %+v, want its own fill", res)
	}
	if waited < 100*time.Millisecond || waited > time.Second {
		t.Errorf("waiter took %v, want about the 100ms lock timeout", waited)
	}
}

func TestTieredPurgesAndInvalidation(t *testing.T) {
	tc := newTestTiered(t, newClock(), nil)
	o := &origin{respond: func(_ *Entry, n int32) *Response {
		return &Response{Status: 200, Header: fields("Cache-Control", "max-age=60", "Surrogate-Key", "orders"), Body: []byte("x")}
	}}
	ctx := context.Background()
	tests := []struct {
		name  string
		purge func() int
		want  int
	}{
		{"RFC 9111 §4.4 Invalidate removes the URL", func() int {
			return tc.Invalidate([]byte("API.example.com"), []byte("/orders/1?v=1"))
		}, 1},
		{"PurgeURL", func() int { p, _ := tc.PurgeURL(ctx, "api.example.com/orders/1?v=1"); return p.Local }, 1},
		{"PurgePrefix", func() int { p, _ := tc.PurgePrefix(ctx, "api.example.com/orders/"); return p.Local }, 2},
		{"PurgeTag", func() int { p, _ := tc.PurgeTag(ctx, "orders"); return p.Local }, 2},
		{"PurgePrefix of the whole host", func() int { p, _ := tc.PurgePrefix(ctx, "API.example.com"); return p.Local }, 2},
		// Entries are filed under the routing host, which has no port; a
		// URL as the client wrote it has one.
		{"PurgeURL with the port", func() int { p, _ := tc.PurgeURL(ctx, "api.example.com:8080/orders/1?v=1"); return p.Local }, 1},
		{"PurgePrefix with the port", func() int { p, _ := tc.PurgePrefix(ctx, "api.example.com:8080/orders/"); return p.Local }, 2},
		{"PurgePrefix of the whole host with the port", func() int { p, _ := tc.PurgePrefix(ctx, "api.example.com:80"); return p.Local }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get(tc, req("GET", "/orders/1?v=1"), o)
			get(tc, req("GET", "/orders/2"), o)
			if n := tt.purge(); n != tt.want {
				t.Errorf("purged %d, want %d", n, tt.want)
			}
			tc.l1.Wait()
			if res := get(tc, req("GET", "/orders/1?v=1"), o); res.Tier != TierOrigin {
				t.Errorf("a purged URL was still served from %s", res.Tier)
			}
		})
	}
}

func TestTieredPrefixNeverCutsAHost(t *testing.T) {
	tc := newTestTiered(t, newClock(), nil)
	get(tc, req("GET", "/orders/1"), answer(200, "x", "Cache-Control", "max-age=60"))
	p, err := tc.PurgePrefix(context.Background(), "api.example")
	if err != nil || p.Local != 0 {
		t.Errorf("a prefix ending inside the host purged %+v (%v), want nothing", p, err)
	}
}

func TestPurgeURLsLoseTheirPort(t *testing.T) {
	for in, want := range map[string]string{
		"API.example.com:8080/Orders/1?a=B": "api.example.com/Orders/1?a=B",
		"127.0.0.1:19080":                   "127.0.0.1",
		"[::1]:8080/x":                      "[::1]/x",
		"[::1]/x":                           "[::1]/x",
		"::1/x":                             "::1/x",            // no brackets: not a port
		"a.example:http/x":                  "a.example:http/x", // not digits
		"a.example/x:8080":                  "a.example/x:8080",
		"Example.COM./x":                    "example.com/x", // the routing host has no trailing dot
		"example.com.:443":                  "example.com",
		"host:/x":                           "host/x", // an empty port
	} {
		if got := string(normalisePurgeURL(in)); got != want {
			t.Errorf("normalisePurgeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func headerValue(e *Entry, name string) string {
	for _, f := range e.Header {
		if strings.EqualFold(string(f.Name), name) {
			return string(f.Value)
		}
	}
	return ""
}

// TestRFC9111Section4_2_3AgeOfARevalidatedResponse: Age is never stored, so
// the Age of the 304 that updates a stored response is its new age, and the
// Age of the response that was stored counts until then.
func TestRFC9111Section4_2_3AgeOfARevalidatedResponse(t *testing.T) {
	tests := []struct {
		name      string
		storedAge string // Age of the 200 ("": none)
		age304    string // Age of the 304 ("": none)
		wantFirst time.Duration
		wantAfter time.Duration // Age of the revalidated answer
		wantFresh bool          // the revalidated entry is fresh for a next request
	}{
		{"the Age of the stored response is its initial age", "30", "", 30 * time.Second, 0, true},
		{"a 304 without Age makes the updated response new", "", "", 0, 0, true},
		{"a 304 with Age gives the updated response that age", "", "40", 0, 40 * time.Second, true},
		{"a 304 older than the lifetime leaves the response stale", "", "150", 0, 150 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tc := newTestTiered(t, c, nil)
			o := &origin{respond: func(stale *Entry, n int32) *Response {
				date := httpDate(c.Now())
				if n == 1 {
					kv := []string{"Cache-Control", "max-age=100", "ETag", `"v1"`, "Date", date}
					if tt.storedAge != "" {
						kv = append(kv, "Age", tt.storedAge)
					}
					return &Response{Status: 200, Header: fields(kv...), Body: []byte("body")}
				}
				kv := []string{"ETag", `"v1"`, "Date", date}
				if tt.age304 != "" {
					kv = append(kv, "Age", tt.age304)
				}
				return &Response{Status: 304, Header: fields(kv...)}
			}}
			r := req("GET", "/a")
			first := get(tc, r, o)
			if first.Age != tt.wantFirst {
				t.Fatalf("first answer Age %v, want %v", first.Age, tt.wantFirst)
			}
			c.Advance(200 * time.Second)
			res := get(tc, r, o)
			if res.FwdStatus != 304 || res.Entry == nil {
				t.Fatalf("want a revalidation, got %+v", res)
			}
			if res.Age != tt.wantAfter {
				t.Errorf("revalidated answer Age %v, want %v", res.Age, tt.wantAfter)
			}
			next := get(tc, r, o)
			if fresh := next.Fwd == FwdNone; fresh != tt.wantFresh {
				t.Errorf("next request answered fresh = %v, want %v (%+v)", fresh, tt.wantFresh, next)
			}
		})
	}
}

// A 206 with one byte range of a known length is kept as a part, which
// answers only GETs for ranges inside it, and only while fresh (RFC 9111
// §3.4): anything else goes to the origin, whose answer replaces it, and a
// part is never revalidated or served stale.
func TestTieredKeepsAPartForTheRangesItHolds(t *testing.T) {
	c := newClock()
	tc := newTestTiered(t, c, nil)
	ranged := func(v string) *Request { r := req("GET", "/p"); r.Range = []byte(v); return r }
	var stales []*Entry
	o := &origin{respond: func(stale *Entry, _ int32) *Response {
		stales = append(stales, stale)
		return &Response{Status: 206, Ranged: true, Body: []byte("4567"),
			Header: fields("Cache-Control", "max-age=60, stale-while-revalidate=600", "Content-Range", "bytes 4-7/10", "ETag", `"p"`)}
	}}
	if res := get(tc, ranged("bytes=4-7"), o); !res.Stored {
		t.Fatalf("the 206 = %+v, want it stored", res)
	}
	for _, rng := range []string{"bytes=4-7", "bytes=5-6", "bytes=-3"} { // -3 of 10 is 7-9: not held
		res := get(tc, ranged(rng), o)
		part, ok := res.Entry.Part()
		held := rng != "bytes=-3"
		if held && (res.Tier != TierL1 || !ok || part != (ContentRange{4, 7, 10, true})) ||
			!held && res.Tier != TierOrigin {
			t.Errorf("Range %s: tier %v part %+v, want held=%v", rng, res.Tier, part, held)
		}
	}
	if res := get(tc, req("HEAD", "/p"), o); res.Tier != TierOrigin {
		t.Errorf("a HEAD was answered from a part: %+v", res)
	}
	c.Advance(2 * time.Minute) // stale, within stale-while-revalidate
	before := o.calls.Load()
	if res := get(tc, ranged("bytes=4-7"), o); res.Tier != TierOrigin || res.Stale || o.calls.Load() != before+1 {
		t.Errorf("a stale part: %+v, want the origin asked", res)
	}
	for i, s := range stales {
		if s != nil {
			t.Errorf("fill %d revalidated a part", i+1)
		}
	}
	whole := answer(200, "0123456789", "Cache-Control", "max-age=60")
	if res := get(tc, req("GET", "/p"), whole); res.Tier != TierOrigin || !res.Stored {
		t.Fatalf("a GET without Range: %+v, want the origin's whole answer stored", res)
	}
	if res := get(tc, ranged("bytes=0-1"), o); res.Tier != TierL1 || string(res.Entry.Body) != "0123456789" {
		t.Errorf("after the whole answer, a range: %+v, want the whole entry", res)
	}
}

func TestTieredDoesNotKeepAPartItCannotPlace(t *testing.T) {
	for _, kv := range [][]string{
		{"Content-Range", "bytes 0-4/*"},
		{"Content-Range", "bytes 0-2/10"}, // the body is 4 bytes
		{"Content-Range", "bytes 0-3/10", "Content-Range", "bytes 0-3/10"},
		{"Content-Type", "multipart/byteranges; boundary=x"},
	} {
		tc := newTestTiered(t, newClock(), nil)
		r := req("GET", "/p")
		r.Range = []byte("bytes=0-3")
		o := &origin{respond: func(*Entry, int32) *Response {
			return &Response{Status: 206, Ranged: true, Body: []byte("0123"), Header: fields(append([]string{"Cache-Control", "max-age=60"}, kv...)...)}
		}}
		if res := get(tc, r, o); res.Stored || res.Entry != nil {
			t.Errorf("%q: %+v, want nothing stored", kv, res)
		}
	}
}

// A background refresh that finds a part where the stale whole response
// was (a range request's 206 stored since the refresh was claimed) does
// not revalidate it: it fetches the whole response.
func TestTieredARefreshNeverRevalidatesAPart(t *testing.T) {
	tc := newTestTiered(t, newClock(), nil)
	r := req("GET", "/p")
	r.Range = []byte("bytes=4-7")
	part := &origin{respond: func(*Entry, int32) *Response {
		return &Response{Status: 206, Ranged: true, Body: []byte("4567"),
			Header: fields("Cache-Control", "max-age=60", "Content-Range", "bytes 4-7/10", "ETag", `"p"`)}
	}}
	if res := get(tc, r, part); !res.Stored {
		t.Fatalf("the part: %+v, want it stored", res)
	}
	o := answer(200, "0123456789", "Cache-Control", "max-age=60")
	o.stales = make(chan *Entry, 1)
	whole := req("GET", "/p")
	tc.Refresh(whole, AppendKey(nil, whole), o)
	if stale := <-o.stales; stale != nil {
		t.Errorf("the refresh revalidated the part %q", stale.Body)
	}
	if res := get(tc, whole, o); res.Tier != TierL1 || string(res.Entry.Body) != "0123456789" {
		t.Errorf("after the refresh: %+v, want the whole response from L1", res)
	}
}
