package cache

import (
	"slices"
	"time"
	"unsafe"
)

// Response is what the origin answered to a fill, as the gateway's Filler
// hands it to the cache. The cache copies what it keeps before Tiered.Get
// returns; the Response and its slices stay the gateway's.
type Response struct {
	// Status is the response's status code; 0 when the exchange failed and
	// there is no response (connect error, timeout).
	Status int
	// Header holds the end-to-end header fields, hop-by-hop ones already
	// removed.
	Header []Field
	// Body is the whole body.
	Body []byte
	// Streamed reports that the body was not buffered (larger than the
	// route's max_entry, or of unknown length): such a response is never
	// stored and Body is ignored.
	Streamed bool
	// Ranged reports that the fill asked the origin for the client's
	// range: a 416 is about that range only, and is not stored under the
	// key every request of the URL reads; a 206 is stored as a partial
	// entry (Entry.Part), which answers only ranges inside it.
	Ranged bool
	// Unstorable is a reason the filler knows for not storing the
	// response (StoreOK: none), such as NotStoredConnection.
	Unstorable NotStored
}

// Entry is a stored response. Entries are immutable once built and shared
// between goroutines and tiers: never modify one or the slices it holds.
// Header and Body may be written to a client as they are (fasthttp's
// SetBodyRaw does not copy).
//
// Header holds the end-to-end fields to send, without Content-Length,
// Age, Set-Cookie and Surrogate-Key: the gateway writes Content-Length from
// len(Body) and Age from Result.Age.
type Entry struct {
	Key    []byte  // the full key it is stored under, compared on every lookup
	Status int     // 0 for the internal Vary index entry, which is never returned
	Header []Field // response header fields as stored
	Body   []byte

	// RequestTime is when the request that produced the response was sent,
	// ResponseTime (the stored-at time) when it arrived, by Options.Now.
	RequestTime, ResponseTime time.Time

	url  []byte // host+path?query, for purges
	vary []byte // normalised Vary field names ("accept-encoding,accept-language")
	tags []byte // Surrogate-Key tags, separated by single spaces

	initialAge time.Duration // corrected initial age (RFC 9111 §4.2.3)
	lifetime   time.Duration // freshness lifetime (RFC 9111 §4.2.1)
	marker     bool          // a Vary index: the response lives under a secondary key

	// Derived from Header when the entry is built or decoded.
	cc           CacheControl
	etag         []byte
	lastModified time.Time
	date         time.Time
	size         int
	// part is the byte range a stored 206 holds (part.OK: a partial
	// entry, see covers); Body is those bytes.
	part ContentRange
}

// What an entry costs in L1 beyond its bytes: one Field per header line,
// the Entry struct, and per entry about 520 bytes of ristretto's maps
// (store, policy, expiry buckets; measured with Go's maps at their usual
// fill) and the URL index. Counting it keeps the heap within Options.Memory
// however small the entries are (BenchmarkLocalMemory1M).
const (
	fieldCost     = int(unsafe.Sizeof(Field{}))
	entryOverhead = int(unsafe.Sizeof(Entry{})) + 520
)

// newEntry builds an entry from a response, copying every byte it keeps
// into one buffer. Fields a stored response must not keep are left out
// (see excludedFromStorage).
func newEntry(key, url []byte, status int, header []Field, body, vary, tags []byte,
	m *Meta, lifetime time.Duration) *Entry {
	n, nf := len(key)+len(url)+len(body)+len(vary)+len(tags), 0
	for _, f := range header {
		if !excludedFromStorage(f.Name) {
			n += len(f.Name) + len(f.Value)
			nf++
		}
	}
	// Grow rounds the capacity up to the allocator's size class, so that
	// Size counts the bytes really taken (up to 12.5% more than n).
	buf := slices.Grow([]byte(nil), n)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		s := len(buf)
		buf = append(buf, b...)
		return buf[s:len(buf):len(buf)]
	}
	e := &Entry{
		Key:          take(key),
		Status:       status,
		RequestTime:  m.RequestTime,
		ResponseTime: m.ResponseTime,
		url:          take(url),
		vary:         take(vary),
		tags:         take(tags),
		initialAge:   InitialAge(m),
		lifetime:     lifetime,
	}
	if nf > 0 {
		e.Header = slices.Grow([]Field(nil), nf)
		for _, f := range header {
			if !excludedFromStorage(f.Name) {
				e.Header = append(e.Header, Field{Name: take(f.Name), Value: take(f.Value)})
			}
		}
	}
	e.Body = take(body)
	e.derive(cap(buf))
	return e
}

// newMarker builds the Vary index entry stored under a primary key: it
// says which request fields select the response's variant.
func newMarker(key, url, vary []byte, now time.Time) *Entry {
	e := newEntry(key, url, 0, nil, nil, vary, nil,
		&Meta{RequestTime: now, ResponseTime: now}, 0)
	e.marker = true
	return e
}

// derive reads from Header what serving needs, so that hits never parse,
// and sets Size from alloc, the bytes of the buffer e's slices point into.
func (e *Entry) derive(alloc int) {
	m := ParseMeta(e.Status, e.Header, e.RequestTime, e.ResponseTime, e.ResponseTime)
	e.cc = m.CacheControl
	e.etag = m.ETag
	e.lastModified = m.LastModified
	e.date = m.Date
	e.part = m.Range
	e.size = alloc + cap(e.Header)*fieldCost + entryOverhead
}

// Part returns the byte range a partial entry (a stored 206) holds; ok is
// false for a complete one.
func (e *Entry) Part() (ContentRange, bool) { return e.part, e.part.OK }

// covers reports whether e holds what r asks for: a complete entry holds
// everything; a partial one only a GET's single byte range that lies
// within its part (RFC 9111 §3.4: an incomplete response answers nothing
// else). A range it cannot judge (invalid, several ranges, past the end)
// goes to the origin, as a request without Range does.
func (e *Entry) covers(r *Request) bool {
	if !e.part.OK {
		return true
	}
	if r.Range == nil {
		return false
	}
	first, last, a := ParseRange(r.Range, e.part.Total)
	return a == RangePartial && first >= e.part.First && last <= e.part.Last
}

// Size is the entry's cost in bytes as the L1 bound counts it: its contents
// plus a fixed overhead per entry and per header line.
func (e *Entry) Size() int { return e.size }

// Age is the entry's current age at now (RFC 9111 §4.2.3), for the Age
// header.
func (e *Entry) Age(now time.Time) time.Duration {
	return CurrentAge(e.initialAge, e.ResponseTime, now)
}

// Lifetime is the entry's freshness lifetime.
func (e *Entry) Lifetime() time.Duration { return e.lifetime }

// URL is the host, path and query purges name the entry by.
func (e *Entry) URL() []byte { return e.url }

// Tags are the entry's Surrogate-Key tags, separated by single spaces.
func (e *Entry) Tags() []byte { return e.tags }

// Validators returns the values a revalidation sends (RFC 9111 §4.3.1):
// If-None-Match gets the ETag, If-Modified-Since the Last-Modified; each is
// nil when the entry has none. Send both when both are there.
func (e *Entry) Validators() (ifNoneMatch, ifModifiedSince []byte) {
	for _, f := range e.Header {
		if ifModifiedSince == nil && equalFold(f.Name, "last-modified") {
			ifModifiedSince = f.Value
		}
	}
	return e.etag, ifModifiedSince
}

// usable decides how the entry may answer r at now.
func (e *Entry) usable(r *Request, now time.Time) Decision {
	return Usable(e.lifetime, e.Age(now), &e.cc, &r.CacheControl)
}

// staleIfError reports whether the entry may answer r, stale, after the
// origin failed.
func (e *Entry) staleIfError(r *Request, now time.Time) bool {
	return StaleIfError(e.lifetime, e.Age(now), &e.cc, &r.CacheControl, r.Policy.StaleIfError)
}

// notModified evaluates r's own conditional fields against the entry.
func (e *Entry) notModified(r *Request, now time.Time) bool {
	// Preconditions apply only to what would be a 2xx (RFC 9110 §13.2.1):
	// a stored 404 or 301 is answered as it is, whatever the client holds.
	if r.IfNoneMatch == nil && r.IfModifiedSince == nil || e.Status < 200 || e.Status > 299 {
		return false
	}
	return NotModified(r.IfNoneMatch, r.IfModifiedSince, e.etag, e.lastModified, e.date,
		e.ResponseTime, now)
}

// keepFor is how long a store keeps the entry from now: what is left of its
// freshness, plus the longest stale-* window (the route's stale-if-error,
// routeSIE, where the entry allows it), or keepStale when that is longer
// and the entry can be revalidated. Zero or less: do not store.
func (e *Entry) keepFor(now time.Time, keepStale, routeSIE time.Duration) time.Duration {
	if e.part.OK {
		return e.lifetime - e.Age(now) // a part answers only while fresh (Tiered.serve)
	}
	window := max(e.cc.StaleWhileRevalidate.Duration(), e.cc.StaleIfError.Duration(),
		routeWindow(e.lifetime, &e.cc, nil, routeSIE))
	if len(e.etag) > 0 || !e.lastModified.IsZero() {
		window = max(window, keepStale)
	}
	return e.lifetime - e.Age(now) + window
}

// revalidated builds the entry that replaces e after a 304 (RFC 9111
// §4.3.4): e's body with its header fields updated by the 304's, and
// freshness computed anew from the merged fields and the new exchange's
// times, for r. ok is false when the 304 does not select e (see
// Selects304). why says whether the updated response may be stored in e's
// place, and stale whether e may stay:
//   - the 304's fields can make the response unstorable (private, no-store,
//     Vary: *: Storable, as for a GET, since a HEAD's 304 updates the stored
//     GET too) or vary on other fields, under which e's key no longer holds
//     (NotStoredVaryChanged): then e must not answer again either;
//   - r itself can forbid storing what answers it (its no-store, its
//     Authorization without the response allowing sharing, §3.5): then
//     nothing is stored from this exchange, and e stays as it was, or any
//     client could evict an entry with one request.
func (e *Entry) revalidated(resp *Response, m304 *Meta, r *Request, now time.Time) (_ *Entry, why NotStored, stale, ok bool) {
	if !Selects304(e.etag, e.lastModified, m304) {
		return nil, StoreOK, false, false
	}
	merged := UpdateHeader(nil, e.Header, resp.Header)
	m := ParseMeta(e.Status, merged, m304.RequestTime, m304.ResponseTime, now)
	// Age is never stored: the 304's own Age, if any, is the updated
	// response's (RFC 9111 §4.2.3, §4.3.4).
	m.Age = m304.Age
	tags := e.tags
	if t := surrogateKeys(resp.Header); t != nil {
		tags = t
	}
	vary := normaliseVary(merged)
	updated := newEntry(e.Key, e.url, e.Status, merged, e.Body, vary, tags, &m, Lifetime(&m, r.Policy.Heuristic))
	var anyRequest CacheControl
	if why := Storable(methodGET, &anyRequest, false, &m, r.Policy.Heuristic); why != StoreOK {
		return updated, why, false, true
	}
	if string(vary) != string(e.vary) {
		return updated, NotStoredVaryChanged, false, true
	}
	return updated, Storable(methodGET, &r.CacheControl, r.Authorization, &m, r.Policy.Heuristic), true, true
}

var methodGET = []byte("GET")

// surrogateKeys collects the tags of Surrogate-Key fields, separated by
// single spaces; nil when there are none. Tags holding '{' or '}' are
// dropped, as are tags over 256 bytes.
func surrogateKeys(header []Field) []byte {
	var out []byte
	for _, f := range header {
		if !equalFold(f.Name, "surrogate-key") {
			continue
		}
		forEachTag(f.Value, func(tag []byte) {
			if len(out) > 0 {
				out = append(out, ' ')
			}
			out = append(out, tag...)
		})
	}
	return out
}

// forEachTag calls fn for each space-separated tag of b that a purge can
// name.
func forEachTag(b []byte, fn func([]byte)) {
	start := 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == ' ' || b[i] == '\t' {
			if t := b[start:i]; len(t) > 0 && len(t) <= 256 && validTag(t) {
				fn(t)
			}
			start = i + 1
		}
	}
}

func validTag(t []byte) bool {
	for _, ch := range t {
		if ch <= ' ' || ch == 0x7f || ch == '{' || ch == '}' {
			return false
		}
	}
	return true
}

// hasTag reports whether the entry carries tag.
func (e *Entry) hasTag(tag []byte) bool {
	found := false
	forEachTag(e.tags, func(t []byte) {
		if string(t) == string(tag) {
			found = true
		}
	})
	return found
}
