package gateway

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// cacheOrigin is a backend whose answers the test shapes by path: the query
// names the response's Cache-Control and other fields, and it counts what
// reached it per path.
type cacheOrigin struct {
	addr string
	hits sync.Map // path → *atomic.Int64
	// delay holds each answer back, so that concurrent misses overlap.
	delay atomic.Int64
}

func startCacheOrigin(t *testing.T) *cacheOrigin {
	o := &cacheOrigin{}
	o.addr = testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		v, _ := o.hits.LoadOrStore(path, new(atomic.Int64))
		n := v.(*atomic.Int64).Add(1)
		if d := o.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		args := ctx.QueryArgs()
		if cc := args.Peek("cc"); len(cc) > 0 {
			ctx.Response.Header.SetBytesV("Cache-Control", cc)
		}
		if etag := args.Peek("etag"); len(etag) > 0 {
			ctx.Response.Header.SetBytesV("ETag", etag)
			if string(ctx.Request.Header.Peek("If-None-Match")) == string(etag) {
				ctx.SetStatusCode(304)
				return
			}
		}
		if vary := args.Peek("vary"); len(vary) > 0 {
			ctx.Response.Header.SetBytesV("Vary", vary)
		}
		if args.Has("cookie") {
			ctx.Response.Header.Set("Set-Cookie", "s=1")
		}
		if tag := args.Peek("tag"); len(tag) > 0 {
			ctx.Response.Header.SetBytesV("Surrogate-Key", tag)
		}
		ctx.Response.Header.Set("Content-Type", "text/plain")
		fmt.Fprintf(ctx, "%s #%d lang=%s", path, n, ctx.Request.Header.Peek("Accept-Language"))
	})
	return o
}

func (o *cacheOrigin) count(path string) int64 {
	v, ok := o.hits.Load(path)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// cacheYAML is a gateway with a cache-enabled route /c on the origin and an
// uncached route /api/orders, plus extra top-level settings.
func cacheYAML(origin, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: error}
%s
pools:
  orders:
    timeout: 2s
    backends: [{addr: %s}]
routes:
  - name: cached
    match: {path_prefix: /c}
    pool: orders
    cache: {enabled: true, key: ["header:X-Tenant"]}
  - name: orders
    match: {path_prefix: /api/orders}
    pool: orders
`, extra, origin)
}

func TestCacheServesRepeatedReadsFromMemory(t *testing.T) {
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	url := s.url("/c/fresh?cc=max-age%3D60")

	first := do(t, "GET", url, "")
	// ttl is 59 or 60: Date has whole seconds, so the apparent age is up to 1s.
	if cs := first.header.Get("Cache-Status"); first.status != 200 || !strings.HasPrefix(cs, "sluice; fwd=miss; fwd-status=200; ttl=") ||
		!strings.HasSuffix(cs, "; stored; detail=origin") {
		t.Fatalf("first: %d %q", first.status, first.header.Get("Cache-Status"))
	}
	second := do(t, "GET", url, "")
	if second.body != first.body || !strings.HasPrefix(second.header.Get("Cache-Status"), "sluice; hit; ttl=") ||
		!strings.HasSuffix(second.header.Get("Cache-Status"), "; detail=l1") {
		t.Fatalf("second: %q %q", second.body, second.header.Get("Cache-Status"))
	}
	if second.header.Get("Age") == "" || second.header.Get("X-Request-Id") == first.header.Get("X-Request-Id") {
		t.Errorf("a hit needs an Age and its own request id: %v", second.header)
	}
	head := do(t, "HEAD", url, "")
	if head.status != 200 || !strings.Contains(head.header.Get("Cache-Status"), "hit") || head.header.Get("Content-Length") != fmt.Sprint(len(first.body)) {
		t.Errorf("HEAD from the stored GET: %d %v", head.status, head.header)
	}
	if n := o.count("/c/fresh"); n != 1 {
		t.Fatalf("the backend saw %d requests, want 1", n)
	}
}

func TestCacheStoresOnlyWhatASharedCacheMay(t *testing.T) {
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	tests := []struct {
		name, path string
		header     []string
		stored     bool
	}{
		{"no-store is never stored (RFC 9111 §3)", "/c/nostore?cc=no-store", nil, false},
		{"private is never stored by a shared cache (§3)", "/c/private?cc=private,max-age%3D60", nil, false},
		{"Set-Cookie is never stored (policy)", "/c/cookie?cc=max-age%3D60&cookie", nil, false},
		{"Vary: * is never stored (§4.1)", "/c/varystar?cc=max-age%3D60&vary=*", nil, false},
		{"no freshness and no default_ttl is not stored", "/c/plain", nil, false},
		{"Authorization without explicit permission is not stored (§3.5)", "/c/auth?cc=max-age%3D60", []string{"Authorization", "Bearer x"}, false},
		{"Authorization with public is stored (§3.5)", "/c/authpublic?cc=public,max-age%3D60", []string{"Authorization", "Bearer x"}, true},
		{"Authorization with s-maxage is stored (§3.5)", "/c/authsmax?cc=s-maxage%3D60", []string{"Authorization", "Bearer x"}, true},
		{"a request with no-store is not stored (§5.2.1.5)", "/c/reqnostore?cc=max-age%3D60", []string{"Cache-Control", "no-store"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			do(t, "GET", s.url(tt.path), "", tt.header...)
			r := do(t, "GET", s.url(tt.path), "", tt.header...)
			path, _, _ := strings.Cut(tt.path, "?")
			hit := strings.Contains(r.header.Get("Cache-Status"), "; hit")
			if hit != tt.stored || (o.count(path) == 1) != tt.stored {
				t.Fatalf("stored = %v (Cache-Status %q, backend saw %d), want %v", hit, r.header.Get("Cache-Status"), o.count(path), tt.stored)
			}
		})
	}
}

func TestCacheKeysOnVaryAndConfiguredParts(t *testing.T) {
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	url := s.url("/c/vary?cc=max-age%3D60&vary=Accept-Language")
	en := do(t, "GET", url, "", "Accept-Language", "en")
	fr := do(t, "GET", url, "", "Accept-Language", "fr")
	en2 := do(t, "GET", url, "", "Accept-Language", "en")
	if !strings.Contains(en.body, "lang=en") || !strings.Contains(fr.body, "lang=fr") || en2.body != en.body {
		t.Fatalf("Vary not honoured: en %q, fr %q, en again %q", en.body, fr.body, en2.body)
	}
	a := do(t, "GET", s.url("/c/tenant?cc=max-age%3D60"), "", "X-Tenant", "a")
	b := do(t, "GET", s.url("/c/tenant?cc=max-age%3D60"), "", "X-Tenant", "b")
	if a.body == b.body {
		t.Fatalf("two tenants share an entry: %q", a.body)
	}
}

func TestCacheAnswersConditionalsAndRevalidates(t *testing.T) {
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))

	// A client's own If-None-Match is answered from a fresh entry (§4.3.2).
	url := s.url(`/c/etag?cc=max-age%3D60&etag="v1"`)
	do(t, "GET", url, "")
	r := do(t, "GET", url, "", "If-None-Match", `"v1"`)
	if r.status != 304 || r.body != "" || r.header.Get("ETag") != `"v1"` || o.count("/c/etag") != 1 {
		t.Fatalf("conditional: %d %q %v (backend saw %d)", r.status, r.body, r.header, o.count("/c/etag"))
	}

	// A stale entry with a validator is revalidated, and the 304 refreshes it.
	url = s.url(`/c/reval?cc=max-age%3D0,must-revalidate&etag="v2"`)
	first := do(t, "GET", url, "")
	second := do(t, "GET", url, "")
	if second.status != 200 || second.body != first.body || !strings.Contains(second.header.Get("Cache-Status"), "fwd=stale; fwd-status=304") {
		t.Fatalf("revalidation: %d %q %q", second.status, second.body, second.header.Get("Cache-Status"))
	}
	if o.count("/c/reval") != 2 {
		t.Fatalf("backend saw %d requests, want 2 (fill, revalidation)", o.count("/c/reval"))
	}
}

// RFC 9110 §14: a GET's Range is answered from a stored 200 (one range:
// 206 with Content-Range; past the end: 416; several: the whole 200); one
// with If-Range goes to the backend, and a HEAD's Range is ignored.
func TestCacheServesRangesFromAStoredResponse(t *testing.T) {
	t.Parallel()
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	url := s.url("/c/ranged?cc=max-age%3D60")
	whole := do(t, "GET", url, "").body // "/c/ranged #1 lang="
	size := len(whole)
	tests := []struct {
		status   int
		spec     string
		body, cr string
	}{
		{206, "bytes=0-1", whole[:2], fmt.Sprintf("bytes 0-1/%d", size)},
		{206, "bytes=3-", whole[3:], fmt.Sprintf("bytes 3-%d/%d", size-1, size)},
		{206, "bytes=-4", whole[size-4:], fmt.Sprintf("bytes %d-%d/%d", size-4, size-1, size)},
		{416, fmt.Sprintf("bytes=%d-", size), "", fmt.Sprintf("bytes */%d", size)},
		{200, "bytes=0-1,4-5", whole, ""},
		{200, "bytes=x", whole, ""},
	}
	for _, tt := range tests {
		r := do(t, "GET", url, "", "Range", tt.spec)
		if r.status != tt.status || r.body != tt.body || r.header.Get("Content-Range") != tt.cr ||
			!strings.Contains(r.header.Get("Cache-Status"), "hit") {
			t.Errorf("Range %q: %d %q, Content-Range %q, Cache-Status %q; want %d %q, %q from the cache",
				tt.spec, r.status, r.body, r.header.Get("Content-Range"), r.header.Get("Cache-Status"), tt.status, tt.body, tt.cr)
		}
	}
	if n := o.count("/c/ranged"); n != 1 {
		t.Errorf("the backend saw %d requests, want 1", n)
	}
	// Two Range lines are an invalid Range (one value, RFC 9110 §14.2):
	// ignored, not the last line's range.
	rc := testnet.Dial(t, s.Addr().String())
	rc.Send(t, "GET /c/ranged?cc=max-age%3D60 HTTP/1.1\r\nHost: "+s.Addr().String()+"\r\nRange: bytes=0-1\r\nRange: bytes=3-4\r\n\r\n")
	if r, body := rc.ReadResponse(t, "GET"); r.StatusCode != 200 || string(body) != whole {
		t.Errorf("two Range lines: %d %q, want the whole 200", r.StatusCode, body)
	}
	if r := do(t, "HEAD", url, "", "Range", "bytes=0-1"); r.status != 200 || !strings.Contains(r.header.Get("Cache-Status"), "hit") {
		t.Errorf("HEAD with Range: %d %q, want the stored 200", r.status, r.header.Get("Cache-Status"))
	}
	r := do(t, "GET", url, "", "Range", "bytes=0-1", "If-Range", `"x"`)
	if r.header.Get("Cache-Status") != "sluice; fwd=bypass" || o.count("/c/ranged") != 2 {
		t.Errorf("If-Range: %q, backend saw %d", r.header.Get("Cache-Status"), o.count("/c/ranged"))
	}
	if r := do(t, "GET", url, "", "Range", fmt.Sprintf("bytes=%d-", size)); r.header.Get("Cache-Control") != "" || r.header.Get("Content-Type") != "" {
		t.Errorf("a 416 from the cache describes the stored response: %v", r.header)
	}
	// A stale entry is revalidated (a 304) and the range served from it.
	reval := s.url("/c/ranged-reval?cc=max-age%3D1&etag=%22v1%22")
	do(t, "GET", reval, "")
	time.Sleep(2100 * time.Millisecond) // Date has whole seconds
	if r := do(t, "GET", reval, "", "Range", "bytes=0-2"); r.status != 206 || r.body != "/c/" {
		t.Errorf("Range on a revalidated entry: %d %q %q", r.status, r.body, r.header.Get("Cache-Status"))
	}
	// A miss asks for the range; this backend answers whole, which is
	// stored, and the range comes from it.
	miss := do(t, "GET", s.url("/c/first-ranged?cc=max-age%3D60"), "", "Range", "bytes=0-2")
	if miss.status != 206 || miss.body != "/c/" || !strings.Contains(miss.header.Get("Cache-Status"), "stored") {
		t.Errorf("a miss with Range: %d %q %q", miss.status, miss.body, miss.header.Get("Cache-Status"))
	}
}

func TestCacheBypassesPreconditionsAndUnsafeMethodsInvalidate(t *testing.T) {
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	url := s.url("/c/item?cc=max-age%3D60")
	do(t, "GET", url, "")
	r := do(t, "GET", url, "", "If-Match", `"a"`)
	if r.header.Get("Cache-Status") != "sluice; fwd=bypass" || o.count("/c/item") != 2 {
		t.Fatalf("If-Match: %q, backend saw %d", r.header.Get("Cache-Status"), o.count("/c/item"))
	}
	if p := do(t, "POST", url, "x"); p.status != 200 || p.header.Get("Cache-Status") != "sluice; fwd=bypass" {
		t.Fatalf("POST: %d %q", p.status, p.header.Get("Cache-Status"))
	}
	after := do(t, "GET", url, "")
	if !strings.Contains(after.header.Get("Cache-Status"), "fwd=miss") {
		t.Fatalf("a successful POST did not invalidate the URL (§4.4): %q", after.header.Get("Cache-Status"))
	}
}

func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	t.Parallel()
	o := startCacheOrigin(t)
	o.delay.Store(int64(200 * time.Millisecond))
	s := startGateway(t, cacheYAML(o.addr, ""))
	url := s.url("/c/hot?cc=max-age%3D60")
	failed := getConcurrently(200, func(int) string { return url }, "")
	if failed != 0 || o.count("/c/hot") != 1 {
		t.Fatalf("%d failed; the backend saw %d requests, want 1", failed, o.count("/c/hot"))
	}
}

func TestCacheServesStaleWhileRevalidatingInTheBackground(t *testing.T) {
	t.Parallel()
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	// max-age=2: Date has whole seconds, so a refreshed entry stays fresh
	// for at least a second, long enough to count the refreshes.
	url := s.url("/c/swr?cc=max-age%3D2,stale-while-revalidate%3D30")
	first := do(t, "GET", url, "")
	time.Sleep(3100 * time.Millisecond)
	var wg sync.WaitGroup
	var staleHits atomic.Int64
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, "GET", url, "")
			cs := r.header.Get("Cache-Status")
			switch {
			case r.body == first.body && strings.Contains(cs, "; hit; ttl=-"):
				staleHits.Add(1) // served stale at once
			case strings.Contains(r.body, "#2") && strings.Contains(cs, "; hit"):
				// arrived after the refresh had landed
			default:
				t.Errorf("neither the stale entry nor the refreshed one: %q %q", r.body, cs)
			}
		}()
	}
	wg.Wait()
	if staleHits.Load() == 0 {
		t.Fatal("no request was answered with the stale entry")
	}
	testnet.Eventually(t, "the background refresh", func() bool {
		return strings.Contains(do(t, "GET", url, "").body, "#2")
	})
	if n := o.count("/c/swr"); n != 2 {
		t.Fatalf("the backend saw %d requests, want 2 (the fill, then one refresh for ten stale hits)", n)
	}
}

func TestCacheHitsCountAgainstRateLimitsAndCarryTheClientsOwnCounts(t *testing.T) {
	t.Parallel()
	o := startCacheOrigin(t)
	yaml := strings.Replace(cacheYAML(o.addr, "rate_limits: {per_client: {rate: 1/m, burst: 3}}\n"),
		"    cache: {enabled: true, key: [\"header:X-Tenant\"]}\n",
		"    cache: {enabled: true, key: [\"header:X-Tenant\"]}\n    rate_limits: [per_client]\n    rate_limit_headers: true\n", 1)
	s := startGateway(t, yaml)
	url := s.url("/c/limited?cc=max-age%3D60")
	for i, want := range []string{"r=2", "r=1", "r=0"} {
		r := do(t, "GET", url, "")
		if r.status != 200 || !strings.Contains(r.header.Get("RateLimit"), want) {
			t.Fatalf("request %d: %d RateLimit %q, want %s", i+1, r.status, r.header.Get("RateLimit"), want)
		}
	}
	if r := do(t, "GET", url, ""); r.status != 429 {
		t.Fatalf("a cache hit over the limit got %d, want 429", r.status)
	}
	if o.count("/c/limited") != 1 {
		t.Fatalf("backend saw %d", o.count("/c/limited"))
	}
}

func TestSurrogateControlOverridesCacheControlAndStopsHere(t *testing.T) {
	sc := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/c/sc-fresh":
			ctx.Response.Header.Set("Cache-Control", "no-store")
			ctx.Response.Header.Set("Surrogate-Control", "max-age=60")
		case "/c/sc-nostore":
			ctx.Response.Header.Set("Cache-Control", "max-age=60")
			ctx.Response.Header.Set("Surrogate-Control", "no-store")
		case "/c/sc-for-another-device":
			ctx.Response.Header.Set("Cache-Control", "private")
			ctx.Response.Header.Set("Surrogate-Control", "max-age=60;cdn")
		case "/c/sc-for-this-device":
			// Targeted at the token the gateway announced.
			token, _, _ := strings.Cut(string(ctx.Request.Header.Peek("Surrogate-Capability")), "=")
			ctx.Response.Header.Set("Cache-Control", "no-store")
			ctx.Response.Header.Set("Surrogate-Control", "max-age=60;"+token)
		}
		ctx.SetBodyString("x")
	})
	s := startGateway(t, cacheYAML(sc, ""))
	for _, tt := range []struct {
		path   string
		stored bool
	}{{"/c/sc-fresh", true}, {"/c/sc-nostore", false}, {"/c/sc-for-another-device", false}, {"/c/sc-for-this-device", true}} {
		do(t, "GET", s.url(tt.path), "")
		r := do(t, "GET", s.url(tt.path), "")
		if hit := strings.Contains(r.header.Get("Cache-Status"), "; hit"); hit != tt.stored {
			t.Errorf("%s: stored = %v (%q), want %v", tt.path, hit, r.header.Get("Cache-Status"), tt.stored)
		}
		if r.header.Get("Surrogate-Control") != "" {
			t.Errorf("%s: Surrogate-Control reached the client", tt.path)
		}
	}
}

// A stale-while-revalidate refresh must ask the backend as the client's
// request did: an https entry refreshed with X-Forwarded-Proto: http would
// store a response made for the http URL (an http-to-https redirect, say)
// under the https key, for every https client.
func TestCacheRefreshInTheBackgroundKeepsTheClientsScheme(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	o := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=1, stale-while-revalidate=30")
		fmt.Fprintf(ctx, "#%d proto=%s", n.Add(1), ctx.Request.Header.Peek("X-Forwarded-Proto"))
	})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, "cache")
	s := startGateway(t, strings.Replace(cacheYAML(o, ""), "log:",
		fmt.Sprintf("tls: {cert_file: %s, key_file: %s}\nlog:", certFile, keyFile), 1))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test cert
	get := func() string {
		resp, err := client.Get("https://" + s.Addr().String() + "/c/swr-tls")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if b := get(); b != "#1 proto=https" {
		t.Fatalf("first answer %q", b)
	}
	time.Sleep(2100 * time.Millisecond) // stale, within stale-while-revalidate
	get()
	var b string
	testnet.Eventually(t, "the background refresh", func() bool {
		b = get()
		return strings.HasPrefix(b, "#2")
	})
	if b != "#2 proto=https" {
		t.Fatalf("the refreshed https entry is %q, want #2 proto=https", b)
	}
}

// A route keyed on a cookie must not let one request store a response under
// another client's key by sending the cookie twice: backends disagree on
// which copy counts (the first, the last), so a key made of the first copy
// alone lets a request carrying "currency=USD; currency=EUR" store the EUR
// answer of a last-copy backend for every client whose currency is USD.
func TestCacheKeyCoversEveryCopyOfAKeyedCookie(t *testing.T) {
	o := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		last := ""
		for k, v := range ctx.Request.Header.Cookies() {
			if string(k) == "currency" {
				last = string(v)
			}
		}
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		fmt.Fprintf(ctx, "currency=%s", last)
	})
	s := startGateway(t, strings.Replace(cacheYAML(o, ""), `key: ["header:X-Tenant"]`, `key: ["cookie:currency"]`, 1))
	url := s.url("/c/price")
	if r := do(t, "GET", url, "", "Cookie", "currency=USD; currency=EUR"); r.body != "currency=EUR" {
		t.Fatalf("backend answer %q", r.body)
	}
	if r := do(t, "GET", url, "", "Cookie", "currency=USD"); r.body != "currency=USD" {
		t.Fatalf("a client with currency=USD got %q (Cache-Status %q)", r.body, r.header.Get("Cache-Status"))
	}
}

// The backend is sent the Host as the client wrote it, port included, while
// the key's host is the routing host (no port, lower case): a request for
// "shop.example:6666" must not store the answer the backend built for that
// authority (its links, its redirects) under the key of "shop.example".
func TestCacheKeyCoversTheAuthorityTheBackendIsSent(t *testing.T) {
	o := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		fmt.Fprintf(ctx, "host=%s", ctx.Request.Header.Host())
	})
	s := startGateway(t, cacheYAML(o, ""))
	url := s.url("/c/authority")
	if r := do(t, "GET", url, "", "Host", "shop.example:6666"); r.body != "host=shop.example:6666" {
		t.Fatalf("backend answer %q", r.body)
	}
	if r := do(t, "GET", url, "", "Host", "shop.example"); r.body != "host=shop.example" {
		t.Fatalf("a request for shop.example got %q (Cache-Status %q)", r.body, r.header.Get("Cache-Status"))
	}
	if r := do(t, "GET", url, "", "Host", "shop.example"); !strings.Contains(r.header.Get("Cache-Status"), "; hit") {
		t.Fatalf("the plain authority is no longer cached: %q", r.header.Get("Cache-Status"))
	}
}

// A response that varies on a field the gateway itself sets before asking
// the backend (X-Forwarded-For, Via, …) is keyed, on a fill, by the value
// the gateway wrote, while a lookup reads the value the client sent: any
// client could then name another's address in X-Forwarded-For and be
// answered with the response made for that client. Such a response is not
// stored.
func TestCacheDoesNotStoreWhatVariesOnFieldsTheGatewaySets(t *testing.T) {
	o := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		ctx.Response.Header.Set("Vary", "Accept-Encoding, X-Forwarded-For")
		fmt.Fprintf(ctx, "for=%s", ctx.Request.Header.Peek("X-Forwarded-For"))
	})
	s := startGateway(t, cacheYAML(o, ""))
	url := s.url("/c/personal")
	if r := do(t, "GET", url, ""); r.body != "for=127.0.0.1" {
		t.Fatalf("backend answer %q", r.body)
	}
	// The peer is 127.0.0.1 again here, but it stands for anyone naming
	// the first client's address.
	r := do(t, "GET", url, "", "X-Forwarded-For", "127.0.0.1")
	if strings.Contains(r.header.Get("Cache-Status"), "; hit") {
		t.Fatalf("a client that named another's address was answered from storage: %q", r.header.Get("Cache-Status"))
	}
}

// getConcurrently sends n GETs at once, the i-th to url(i) with host as its
// Host when one is given, and returns how many failed or were not 200.
func getConcurrently(n int, url func(i int) string, host string) int64 {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest("GET", url(i), nil)
			if err != nil {
				failed.Add(1)
				return
			}
			if host != "" {
				req.Host = host
			}
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	return failed.Load()
}

// A fill that gets no response (the backend refuses connections) is a 502
// whose Cache-Status says the origin failed, not that its status was
// uncacheable.
func TestCacheStatusOfAFailedFillSaysFailed(t *testing.T) {
	s := startGateway(t, cacheYAML(testnet.FreeAddr(t), ""))
	r := do(t, "GET", s.url("/c/nobody"), "")
	if r.status != fasthttp.StatusBadGateway {
		t.Fatalf("status %d, want 502", r.status)
	}
	if cs := r.header.Get("Cache-Status"); !strings.Contains(cs, "failed") {
		t.Errorf("Cache-Status %q does not say the origin failed", cs)
	}
}

// A backend's 416 is about the range asked for only: it must not be stored
// under the key every request of the URL reads (a 416 with max-age was
// stored and served to every later GET). Its 206 is kept as a part, which
// answers the ranges inside it and nothing else (RFC 9111 §3.4): a GET
// without a Range, or with one the part does not hold, goes to the
// backend.
func TestCacheKeepsABackendsPartialAnswerOnlyForTheRangesItHolds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	addr := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		calls.Add(1)
		ctx.Response.Header.Set("Cache-Control", "public, max-age=60")
		ctx.Response.Header.Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
		switch string(ctx.Request.Header.Peek("Range")) {
		case "":
			ctx.SetBodyString("0123456789")
		case "bytes=100-":
			ctx.SetStatusCode(416)
			ctx.Response.Header.Set("Content-Range", "bytes */10")
		case "bytes=4-7":
			ctx.SetStatusCode(206)
			ctx.Response.Header.Set("Content-Range", "bytes 4-7/10")
			ctx.SetBodyString("4567")
		default: // a 206 whose body is not the part it names
			ctx.SetStatusCode(206)
			ctx.Response.Header.Set("Content-Range", "bytes 0-3/10")
			ctx.SetBodyString("01")
		}
	})
	s := startGateway(t, cacheYAML(addr, ""))

	url := s.url("/c/range-416")
	if r := do(t, "GET", url, "", "Range", "bytes=100-"); r.status != 416 || !strings.Contains(r.header.Get("Cache-Status"), "not stored") {
		t.Fatalf("416: %d %q, want the backend's answer, not stored", r.status, r.header.Get("Cache-Status"))
	}
	if r := do(t, "GET", url, ""); r.status != 200 || r.body != "0123456789" {
		t.Fatalf("after a 416, a GET without Range: %d %q", r.status, r.body)
	}

	url = s.url("/c/range-206")
	if r := do(t, "GET", url, "", "Range", "bytes=4-7"); r.status != 206 || r.body != "4567" ||
		!strings.Contains(r.header.Get("Cache-Status"), "stored") {
		t.Fatalf("the first 206: %d %q %q", r.status, r.body, r.header.Get("Cache-Status"))
	}
	for _, c := range []struct{ rng, body, contentRange string }{
		{"bytes=4-7", "4567", "bytes 4-7/10"},
		{"bytes=5-6", "56", "bytes 5-6/10"},
		{"bytes=5-7", "567", "bytes 5-7/10"},
	} {
		before := calls.Load()
		r := do(t, "GET", url, "", "Range", c.rng)
		if r.status != 206 || r.body != c.body || r.header.Get("Content-Range") != c.contentRange ||
			!strings.HasPrefix(r.header.Get("Cache-Status"), "sluice; hit") || calls.Load() != before {
			t.Errorf("Range %s from the part: %d %q %q %q, want a hit with %q %q", c.rng, r.status, r.body,
				r.header.Get("Content-Range"), r.header.Get("Cache-Status"), c.body, c.contentRange)
		}
	}
	// What the part does not hold goes to the backend, and a whole answer
	// replaces the part.
	for _, c := range []struct {
		rng    []string
		status int
		body   string
	}{
		{[]string{"Range", "bytes=3-5"}, 206, "01"}, // the backend's answer, whatever it is
		{[]string{"Range", "bytes=4-5, 6-7"}, 206, "01"},
		{nil, 200, "0123456789"},
	} {
		before := calls.Load()
		r := do(t, "GET", url, "", c.rng...)
		if r.status != c.status || r.body != c.body || calls.Load() != before+1 {
			t.Errorf("%v: %d %q (backend asked %d times), want the backend's %d %q", c.rng, r.status, r.body,
				calls.Load()-before, c.status, c.body)
		}
	}
	if r := do(t, "GET", url, "", "Range", "bytes=0-1"); r.status != 206 || r.body != "01" ||
		!strings.HasPrefix(r.header.Get("Cache-Status"), "sluice; hit") {
		t.Errorf("after the whole response, a range: %d %q %q, want a hit cut from it", r.status, r.body, r.header.Get("Cache-Status"))
	}
	// A 206 whose body is not the part it names is not kept.
	url = s.url("/c/range-short")
	for range 2 {
		before := calls.Load()
		if r := do(t, "GET", url, "", "Range", "bytes=0-3"); calls.Load() != before+1 || !strings.Contains(r.header.Get("Cache-Status"), "not stored") {
			t.Errorf("a short 206: %d %q, want it from the backend each time, not stored", r.status, r.header.Get("Cache-Status"))
		}
	}
}

// A backend that drops the connection instead of answering is "disconnected"
// (RFC 9111 §4.2.4): a route with stale_if_error serves what it stored,
// stale, for up to that long; without (the default) the failure goes
// through, unless the response itself said stale-if-error.
func TestCacheServesStaleWhenTheBackendDropsTheConnection(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	var hits atomic.Int64
	origin := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		if broken.Load() {
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(c net.Conn) { _ = c.Close() })
			return
		}
		ctx.Response.Header.Set("Cache-Control", string(ctx.QueryArgs().Peek("cc")))
		fmt.Fprintf(ctx, "%s #%d", ctx.Path(), hits.Add(1))
	})
	s := startGateway(t, fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
log: {level: error}
pools:
  orders:
    timeout: 2s
    backends: [{addr: %s}]
routes:
  - name: strict
    match: {path_prefix: /strict}
    pool: orders
    cache: {enabled: true}
  - name: cached
    match: {path_prefix: /c}
    pool: orders
    cache: {enabled: true, stale_if_error: 10s}
`, origin))
	urls := map[string]string{
		"route window":        s.url("/c/a?cc=max-age%3D1"),
		"no route window":     s.url("/strict/a?cc=max-age%3D1"),
		"must-revalidate":     s.url("/c/mr?cc=max-age%3D1,must-revalidate"),
		"s-maxage":            s.url("/c/s?cc=s-maxage%3D1"),
		"the origin's window": s.url("/strict/sie?cc=max-age%3D1,stale-if-error%3D60"),
	}
	first := map[string]string{}
	for name, url := range urls {
		if r := do(t, "GET", url, ""); r.status != 200 {
			t.Fatalf("%s: fill: %d", name, r.status)
		} else {
			first[name] = r.body
		}
	}
	broken.Store(true)
	time.Sleep(2100 * time.Millisecond) // max-age=1, and Date has whole seconds
	for name, url := range urls {
		r := do(t, "GET", url, "")
		wantStale := name == "route window" || name == "the origin's window"
		switch {
		case wantStale && (r.status != 200 || r.body != first[name]):
			t.Errorf("%s: %d %q (%s), want the stored response, stale", name, r.status, r.body, r.header.Get("Cache-Status"))
		case !wantStale && r.status != fasthttp.StatusBadGateway:
			t.Errorf("%s: %d %q, want 502: no stale response may be served", name, r.status, r.body)
		}
	}
}

// A key part the client names in Connection is removed before the request
// reaches the backend, so the answer it gets is the one without it: stored
// under the key of the value the client sent, it was served to every real
// holder of that value (unkeyed-input poisoning).
func TestCacheKeyPartsTheBackendNeverSeesAreNotKeyed(t *testing.T) {
	t.Parallel()
	o := startCacheOrigin(t)
	yaml := strings.Replace(cacheYAML(o.addr, ""), `key: ["header:X-Tenant"]`, `key: ["header:X-Tenant", "cookie:tenant"]`, 1)
	s := startGateway(t, yaml)
	for _, tc := range []struct{ name, field, value, connection string }{
		{"a header", "X-Tenant", "victim", "X-Tenant"},
		{"a cookie", "Cookie", "tenant=victim", "Cookie"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := s.url("/c/hbh-" + strings.ToLower(tc.field) + "?cc=max-age%3D60")
			do(t, "GET", url, "", tc.field, tc.value, "Connection", tc.connection)
			r := do(t, "GET", url, "", tc.field, tc.value)
			if cs := r.header.Get("Cache-Status"); !strings.Contains(cs, "fwd=miss") {
				t.Fatalf("the real %s got %q (Cache-Status %q), want its own fill", tc.value, r.body, cs)
			}
		})
	}
}

// A GET's body is forwarded but is no part of the key: a response a backend
// built from one ("role=admin") was stored and served to body-less GETs.
func TestCacheGoesAroundAGetWithABody(t *testing.T) {
	t.Parallel()
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	url := s.url("/c/fat?cc=max-age%3D60")
	if r := do(t, "GET", url, "role=admin"); r.header.Get("Cache-Status") != "sluice; fwd=bypass" {
		t.Fatalf("a GET with a body: Cache-Status %q, want a bypass", r.header.Get("Cache-Status"))
	}
	if r := do(t, "GET", url, ""); !strings.Contains(r.header.Get("Cache-Status"), "fwd=miss") {
		t.Fatalf("the GET after it: Cache-Status %q, want a miss: nothing was to be stored", r.header.Get("Cache-Status"))
	}
}

// Empty copies of a keyed field count: a backend that takes the first copy
// reads "X-Tenant:" then "X-Tenant: victim" as no tenant, and "victim," is
// not "victim" to one that reads the field whole.
func TestCacheKeyKeepsEmptyMembersOfAKeyedField(t *testing.T) {
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	url := s.url("/c/empty?cc=max-age%3D60")
	do(t, "GET", url, "", "X-Tenant", "victim")
	for _, tenant := range [][]string{{"X-Tenant", "", "X-Tenant", "victim"}, {"X-Tenant", "victim,"}} {
		if r := do(t, "GET", url, "", tenant...); !strings.Contains(r.header.Get("Cache-Status"), "fwd=miss") {
			t.Errorf("%q got victim's entry (Cache-Status %q)", tenant, r.header.Get("Cache-Status"))
		}
	}
}

// A GET with a method override may be a DELETE or a POST to its backend
// (many frameworks read X-HTTP-Method-Override): its answer is no GET's to
// store, nor may a stored GET stand in for it.
func TestCacheGoesAroundAMethodOverride(t *testing.T) {
	t.Parallel()
	o := startCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	url := s.url("/c/override?cc=max-age%3D60")
	for _, name := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		if r := do(t, "GET", url, "", name, "DELETE"); r.header.Get("Cache-Status") != "sluice; fwd=bypass" {
			t.Errorf("%s: Cache-Status %q, want a bypass", name, r.header.Get("Cache-Status"))
		}
	}
	if r := do(t, "GET", url, ""); !strings.Contains(r.header.Get("Cache-Status"), "fwd=miss") {
		t.Fatalf("the plain GET after them: Cache-Status %q, want a miss", r.header.Get("Cache-Status"))
	}
}

// A backend's Connection can name an end-to-end field: the gateway is its
// only recipient and removes it with the hop-by-hop fields. The cache
// decided on the stripped response, so "Connection: Vary" with "Vary:
// Cookie" stored one user's answer for every user, and "Connection:
// Cache-Control" lost a no-store. Such a response is not stored.
func TestCacheDoesNotStoreAResponseWhoseConnectionNamedAField(t *testing.T) {
	var n atomic.Int64
	origin := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=600")
		if named := string(ctx.QueryArgs().Peek("named")); named != "" {
			ctx.Response.Header.Set("Connection", named)
			ctx.Response.Header.Set("Vary", "Cookie")
			if named == "Cache-Control" {
				ctx.Response.Header.Set("Cache-Control", "no-store, private")
				ctx.Response.Header.Set("Expires", "Thu, 01 Jan 2037 00:00:00 GMT")
			}
		}
		fmt.Fprintf(ctx, "%s #%d", ctx.Request.Header.Peek("Cookie"), n.Add(1))
	})
	s := startGateway(t, cacheYAML(origin, ""))
	for _, named := range []string{"Vary", "Cache-Control"} {
		url := s.url("/c/named?named=" + named)
		first := do(t, "GET", url, "", "Cookie", "user=0")
		if cs := first.header.Get("Cache-Status"); !strings.Contains(cs, "not stored: connection") {
			t.Errorf("Connection: %s: Cache-Status %q, want not stored", named, cs)
		}
		if r := do(t, "GET", url, "", "Cookie", "user=1"); r.body == first.body {
			t.Errorf("Connection: %s: user 1 got user 0's answer %q", named, r.body)
		}
	}
	if r := do(t, "GET", s.url("/c/named"), ""); !strings.Contains(r.header.Get("Cache-Status"), "; stored") {
		t.Errorf("without Connection: Cache-Status %q, want stored", r.header.Get("Cache-Status"))
	}
}

// A field the backend's Connection names that the cache does not decide by
// is removed, and the response stored without it (RFC 9111 §3.1; a
// required test of the caching suite).
func TestCacheStoresAResponseWithoutTheFieldsItsConnectionNamed(t *testing.T) {
	t.Parallel()
	origin := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=600")
		ctx.Response.Header.Set("Connection", "X-A, X-B")
		ctx.Response.Header.Set("X-A", "1")
		ctx.Response.Header.Set("X-B", "2")
		ctx.Response.Header.Set("X-C", "3")
		ctx.SetBodyString("body")
	})
	s := startGateway(t, cacheYAML(origin, ""))
	do(t, "GET", s.url("/c/named"), "")
	r := do(t, "GET", s.url("/c/named"), "")
	if !strings.Contains(r.header.Get("Cache-Status"), "; hit") {
		t.Fatalf("Cache-Status %q, want a hit", r.header.Get("Cache-Status"))
	}
	if r.header.Get("X-A") != "" || r.header.Get("X-B") != "" || r.header.Get("X-C") != "3" {
		t.Errorf("the hit's fields: %v, want X-C and neither X-A nor X-B", r.header)
	}
}

// A stored response without a Content-Type is answered without one, as a
// proxied one is (RFC 9110 §8.3: a recipient may guess, a proxy must not
// say): hits and stored misses got fasthttp's default text/plain.
func TestCacheAddsNoContentType(t *testing.T) {
	t.Parallel()
	origin := testnet.Serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetNoDefaultContentType(true)
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		ctx.SetBodyString("bytes")
	})
	s := startGateway(t, cacheYAML(origin, ""))
	for _, what := range []string{"the stored miss", "the hit"} {
		if r := do(t, "GET", s.url("/c/untyped"), ""); r.header.Get("Content-Type") != "" {
			t.Errorf("%s: Content-Type %q, want none (Cache-Status %q)", what, r.header.Get("Content-Type"), r.header.Get("Cache-Status"))
		}
	}
}
