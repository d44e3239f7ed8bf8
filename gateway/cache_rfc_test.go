package gateway

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// rawCacheOrigin answers every GET with 200, the header lines the test set
// for the request's path, and a body naming the request's sequence number,
// so that a test sees whether an answer is a new fetch. It writes Date and
// Age itself, which a fasthttp origin cannot.
type rawCacheOrigin struct {
	addr  string
	mu    sync.Mutex
	heads map[string]string // path → header lines, each ending in \r\n
}

func startRawCacheOrigin(t *testing.T) *rawCacheOrigin {
	o := &rawCacheOrigin{heads: map[string]string{}}
	rb := testnet.StartRawBackend(t, func(c net.Conn, r testnet.RawRequest) {
		path, _, _ := strings.Cut(r.Path, "?")
		o.mu.Lock()
		extra := o.heads[path]
		o.mu.Unlock()
		body := fmt.Sprintf("%s #%d", path, r.Seq)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s", len(body), extra, body)
	})
	o.addr = rb.Addr
	return o
}

func (o *rawCacheOrigin) answer(path string, lines ...string) {
	o.mu.Lock()
	o.heads[path] = strings.Join(lines, "\r\n") + "\r\n"
	o.mu.Unlock()
}

// TestRFC9111Section4_2_3TheOriginsAgeCounts: the Age the origin sends is
// part of the response's initial age (RFC 9111 §4.2.3), so a response older
// than its lifetime is not served from storage, and the Age sent with a
// stored response counts from it; an Age that is not one non-negative
// integer (§5.1) is an age nobody can trust, and the response stale.
func TestRFC9111Section4_2_3TheOriginsAgeCounts(t *testing.T) {
	t.Parallel()
	o := startRawCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	date := "Date: " + time.Now().UTC().Format(http.TimeFormat)
	tests := []struct {
		name    string
		path    string
		age     string
		hit     bool
		wantAge int // least Age of the second answer
	}{
		{"an Age over max-age makes the response stale", "/c/age-old", "Age: 7200", false, 0},
		{"an Age under max-age is counted in the Age sent", "/c/age-young", "Age: 1800", true, 1800},
		{"an invalid Age makes the response stale", "/c/age-invalid", "Age: abc", false, 0},
		{"an Age list makes the response stale", "/c/age-list", "Age: 0, 7200", false, 0},
		{"two Age lines make the response stale", "/c/age-lines", "Age: 0\r\nAge: 0", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.answer(tt.path, "Cache-Control: max-age=3600", date, tt.age)
			first := do(t, "GET", s.url(tt.path), "")
			second := do(t, "GET", s.url(tt.path), "")
			if hit := second.body == first.body; hit != tt.hit {
				t.Fatalf("second answer from storage = %v, want %v (%q, %q)", hit, tt.hit,
					second.body, second.header.Get("Cache-Status"))
			}
			if !tt.hit {
				return
			}
			var age int
			if _, err := fmt.Sscan(second.header.Get("Age"), &age); err != nil || age < tt.wantAge || age > tt.wantAge+5 {
				t.Errorf("Age %q, want %d (or a few seconds more)", second.header.Get("Age"), tt.wantAge)
			}
		})
	}
}

// TestCacheHitKeepsTheStoredDate: a response from storage carries the Date
// the origin generated it with, once (RFC 9110 §6.6.1; a downstream cache
// computes its age from Date and Age), on a hit, a HEAD hit and a 304 to a
// client's conditional; a stored response without Date gets the gateway's.
func TestCacheHitKeepsTheStoredDate(t *testing.T) {
	if !noDefaultDate.ok {
		t.Fatal("fasthttp.ResponseHeader has no bool noDefaultDate field: stored responses go out with the time of sending as Date")
	}
	o := startRawCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	o.answer("/c/dated", "Cache-Control: max-age=86400", "ETag: \"v1\"", "Date: "+past)
	o.answer("/c/undated", "Cache-Control: max-age=86400")
	tests := []struct {
		name     string
		method   string
		path     string
		header   []string
		status   int
		wantDate string // "" for the gateway's own
	}{
		{"the miss that stores it", "GET", "/c/dated", nil, 200, past},
		{"a hit", "GET", "/c/dated", nil, 200, past},
		{"a HEAD hit", "HEAD", "/c/dated", nil, 200, past},
		{"a 304 to a conditional", "GET", "/c/dated", []string{"If-None-Match", `"v1"`}, 304, past},
		{"a stored response without Date", "GET", "/c/undated", nil, 200, ""},
		{"its hit", "GET", "/c/undated", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, s.url(tt.path), "", tt.header...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			dates := r.header.Values("Date")
			if len(dates) != 1 {
				t.Fatalf("Date lines %q, want one", dates)
			}
			if tt.wantDate != "" && dates[0] != tt.wantDate {
				t.Errorf("Date %q, want the stored %q", dates[0], tt.wantDate)
			}
			if tt.wantDate == "" {
				if d, err := http.ParseTime(dates[0]); err != nil || time.Since(d) > time.Minute {
					t.Errorf("Date %q, want about now", dates[0])
				}
			}
		})
	}
}

// TestCacheHitsGetTheirOwnEntrysHead: a request state keeps the head it
// last built from an entry (hitHead) and copies it for the next hit on the
// same entry; hits on two entries in turn, and a 304 between 200s of one,
// must each get the head of their own entry and kind.
func TestCacheHitsGetTheirOwnEntrysHead(t *testing.T) {
	o := startRawCacheOrigin(t)
	s := startGateway(t, cacheYAML(o.addr, ""))
	o.answer("/c/a", "Cache-Control: max-age=86400", `ETag: "a"`, "X-Entry: a")
	o.answer("/c/b", "Cache-Control: max-age=86400", `ETag: "b"`, "X-Entry: b", "Content-Language: fr")
	tests := []struct {
		path      string
		inm       string // If-None-Match, "" for none
		status    int
		entry     string // X-Entry, "" for none (a 304 does not keep it)
		etag      string
		body      string // prefix
		languages int
	}{
		{"/c/a", "", 200, "a", `"a"`, "/c/a #", 0},
		{"/c/a", "", 200, "a", `"a"`, "/c/a #", 0},
		{"/c/b", "", 200, "b", `"b"`, "/c/b #", 1},
		{"/c/b", "", 200, "b", `"b"`, "/c/b #", 1},
		{"/c/a", "", 200, "a", `"a"`, "/c/a #", 0},
		{"/c/a", `"a"`, 304, "", `"a"`, "", 0},
		{"/c/a", "", 200, "a", `"a"`, "/c/a #", 0},
		{"/c/b", `"b"`, 304, "", `"b"`, "", 0},
		{"/c/b", "", 200, "b", `"b"`, "/c/b #", 1},
		{"/c/a", `"a"`, 304, "", `"a"`, "", 0},
		{"/c/a", `"a"`, 304, "", `"a"`, "", 0},
		{"/c/a", "", 200, "a", `"a"`, "/c/a #", 0},
	}
	for i, tt := range tests {
		var h []string
		if tt.inm != "" {
			h = []string{"If-None-Match", tt.inm}
		}
		r := do(t, "GET", s.url(tt.path), "", h...)
		if r.status != tt.status || r.header.Get("X-Entry") != tt.entry || r.header.Get("ETag") != tt.etag ||
			!strings.HasPrefix(r.body, tt.body) || len(r.header.Values("Content-Language")) != tt.languages ||
			len(r.header.Values("X-Request-Id")) != 1 || len(r.header.Values("Age")) != 1 {
			t.Errorf("request %d, GET %s (If-None-Match %s): %d, %v %q; want %d, X-Entry %q, ETag %s, body %q..., %d Content-Language",
				i, tt.path, tt.inm, r.status, r.header, r.body, tt.status, tt.entry, tt.etag, tt.body, tt.languages)
		}
		if miss := i == 0 || i == 2; miss == strings.Contains(r.header.Get("Cache-Status"), "; hit") {
			t.Errorf("request %d: Cache-Status %q, want a miss %v", i, r.header.Get("Cache-Status"), miss)
		}
	}
}

// TestKeepStoredDate: the stored Date is written once and the header is
// otherwise as after a reset; a value that is empty or holds control bytes
// is refused, leaving fasthttp's own Date, so a damaged entry cannot add a
// header line.
func TestKeepStoredDate(t *testing.T) {
	const stored = "Sun, 06 Nov 1994 08:49:37 GMT"
	tests := []struct {
		name string
		date string
		kept bool
	}{
		{"a date", stored, true},
		{"empty", "", false},
		{"a line break", stored + "\r\nSet-Cookie: a=b", false},
		{"a bare LF", stored + "\nX: 1", false},
		{"a NUL", stored + "\x00", false},
	}
	st := &cacheStore{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp fasthttp.Response
			if got := st.keepStoredDate(&resp.Header, []byte(tt.date)); got != tt.kept {
				t.Fatalf("keepStoredDate = %v, want %v", got, tt.kept)
			}
			resp.SetStatusCode(404)
			resp.Header.Set("X-Test", "1")
			head := resp.Header.String()
			if !strings.HasPrefix(head, "HTTP/1.1 404 Not Found\r\n") {
				t.Errorf("status line of %q", head)
			}
			if n := strings.Count(head, "Date: "); n != 1 {
				t.Errorf("%d Date lines in %q", n, head)
			}
			if tt.kept != strings.Contains(head, "Date: "+stored+"\r\n") {
				t.Errorf("stored Date kept = %v in %q", !tt.kept, head)
			}
			if strings.Contains(head, "Set-Cookie") || strings.Contains(head, "X: 1") {
				t.Errorf("a line was injected: %q", head)
			}
		})
	}
}
