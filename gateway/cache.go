package gateway

import (
	"bytes"
	"io"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/cache"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
)

// fromCache answers a GET or HEAD of a cache-enabled route through the
// cache (DESIGN.md step 5): a stored response when one may be used, else the
// backend's, fetched once for every concurrent request of the same key and
// stored when RFC 9111 allows it. It returns false when the request is not
// the cache's to answer (another method, another route, or a request whose
// conditionals the cache does not evaluate), and the pipeline forwards it.
func (s *Server) fromCache(rq *request) bool {
	p := rq.route.cache
	if p == nil {
		return false
	}
	ctx := rq.ctx
	if !ctx.IsGet() && !ctx.IsHead() {
		return false
	}
	// A GET with content (a "fat GET") goes around the cache: RFC 9110
	// §9.3.1 gives the content no meaning, but it is forwarded and a
	// backend may act on it, so its answer must not be stored under a key
	// the content is no part of (cache poisoning), nor a stored answer
	// stand in for it.
	if cl := ctx.Request.Header.ContentLength(); cl > 0 || cl == -1 || ctx.Request.IsBodyStream() {
		return false
	}
	if !rq.readCacheFields() {
		return false
	}
	rq.creq = cache.Request{
		Method: ctx.Method(), Scheme: rq.scheme(), Host: rq.host, Authority: rq.authority(), Path: rq.path, Query: rq.query,
		Fields: rq, Policy: p,
		CacheControl: rq.creq.CacheControl, Authorization: rq.creq.Authorization,
		IfNoneMatch: rq.creq.IfNoneMatch, IfModifiedSince: rq.creq.IfModifiedSince,
		Range: rq.byteRange,
	}
	rq.key = cache.AppendKey(rq.key[:0], &rq.creq)
	res := s.cache.Get(&rq.creq, rq.key, rq)
	rq.route.cm.count(&res)

	switch {
	case res.OnlyIfCached:
		s.writeError(rq, fasthttp.StatusGatewayTimeout, "not cached (only-if-cached)")
	case res.Entry == nil && rq.fillErr != nil:
		s.answerUpstreamError(rq, rq.fillErr)
	case res.Entry == nil:
		// The backend's own answer, not stored: already cleaned by Fill
		// but for what only this cache was to read.
		httpsafe.DelResponseField(&ctx.Response.Header, "surrogate-control")
		speakHTTP11(&ctx.Response.Header)
		ctx.Response.Header.SetBytesV(hdrRequestID, rq.id)
	default:
		s.writeEntry(rq, &res)
	}
	if res.Entry != nil || rq.fillErr == nil && !res.OnlyIfCached {
		s.writeLimitHeaders(rq) // this client's counts, never a stored copy's
	}
	rq.status = appendCacheStatus(rq.status[:0], &res)
	ctx.Response.Header.SetBytesV(hdrCacheStatus, rq.status)
	if res.Refresh {
		s.refreshInBackground(rq)
	}
	return true
}

const (
	hdrCacheStatus = "Cache-Status"
	hdrAge         = "Age"
	cacheName      = "sluice"
)

// readCacheFields reads, in one pass over the request's header fields, what
// the cache needs: its Cache-Control (every line; Pragma: no-cache counts
// when there is none, RFC 9111 §5.4), Authorization, and the client's own
// conditionals, and a GET's Range (writeEntry answers it from a stored
// 200). It returns false for a request the cache must not answer: one with
// If-Match, If-Unmodified-Since or If-Range, which the cache does not
// evaluate and which go to the backend as they are, and one with a method
// override field.
func (rq *request) readCacheFields() bool {
	c := &rq.creq
	c.CacheControl, c.Authorization, c.IfNoneMatch, c.IfModifiedSince = cache.CacheControl{}, false, nil, nil
	rq.byteRange = nil
	hasCC, pragmaNoCache, ranges := false, false, 0
	for k, v := range rq.ctx.Request.Header.All() {
		if len(k) < 5 {
			continue
		}
		switch {
		case httpsafe.EqualFold(k, "cache-control"):
			c.CacheControl.Add(v)
			hasCC = true
		case httpsafe.EqualFold(k, "pragma"):
			pragmaNoCache = pragmaNoCache || containsToken(v, "no-cache")
		case httpsafe.EqualFold(k, "authorization"):
			c.Authorization = true
		case httpsafe.EqualFold(k, "if-none-match"):
			c.IfNoneMatch = v
		case httpsafe.EqualFold(k, "if-modified-since"):
			c.IfModifiedSince = v
		case httpsafe.EqualFold(k, "range"):
			// Defined for GET only (RFC 9110 §14.2); a HEAD's is ignored.
			// A copy: Fill may delete the field, and the slot then holds
			// the next field set.
			if rq.ctx.IsGet() {
				rq.byteRange = append(rq.rangeBuf[:0], v...)
				rq.rangeBuf = rq.byteRange
				ranges++
			}
		case httpsafe.EqualFold(k, "if-match"), httpsafe.EqualFold(k, "if-unmodified-since"),
			httpsafe.EqualFold(k, "if-range"):
			return false
		case httpsafe.EqualFold(k, "x-http-method-override"), httpsafe.EqualFold(k, "x-http-method"),
			httpsafe.EqualFold(k, "x-method-override"):
			// Many frameworks take these for the method: this GET may be a
			// DELETE to its backend, whose answer is no GET's to store.
			return false
		}
	}
	if !hasCC && pragmaNoCache {
		c.CacheControl.NoCache = true
	}
	if ranges > 1 {
		// Range is one value (RFC 9110 §14.2): two lines are invalid, and
		// an invalid Range is ignored.
		rq.byteRange = nil
	}
	return true
}

var (
	hdrSurrogateCapability = []byte("Surrogate-Capability")
	surrogateCapability    = []byte(cache.SurrogateDevice + `="Surrogate/1.0"`)
)

// Fill fetches the response for the cache (cache.Filler): the client's
// conditionals are replaced by the stored entry's validators when one is
// being revalidated, the request is rewritten and exchanged as any other,
// and the answer, with its hop-by-hop fields removed, is handed to the cache
// as views of ctx.Response (the cache copies what it keeps). On failure the
// error is kept for fromCache to answer with; the cache sees no response.
func (rq *request) Fill(stale *cache.Entry) *cache.Response {
	s, ctx := rq.srv, rq.ctx
	h := &ctx.Request.Header
	h.Del("If-None-Match")
	h.Del("If-Modified-Since")
	if stale != nil {
		// A revalidation is of the whole response, which a range is
		// then served from: a 206 could not update the entry. A miss
		// asks for the client's range, if any (Ranged): a backend's 206
		// is kept as a part, which answers the ranges inside it, a 416
		// is about that range only.
		h.Del("Range")
		inm, ims := stale.Validators()
		if inm != nil {
			h.SetBytesV("If-None-Match", inm)
		}
		if ims != nil {
			h.SetBytesV("If-Modified-Since", ims)
		}
	}
	if !rq.rewritten {
		s.rewriteRequest(rq)
		// Announce the device token that Surrogate-Control directives can
		// target at this cache ("max-age=60;sluice"), after any a cache in
		// front of the gateway announced (W3C Edge Architecture).
		h.AddBytesKV(hdrSurrogateCapability, surrogateCapability)
	}
	rq.fillErr = s.exchange(rq)
	if rq.fillErr == nil {
		rq.fillErr = readWholeIfStorable(&ctx.Response, rq.route.cache.MaxEntry)
	}
	if rq.fillErr != nil {
		return nil // no response: fromCache answers with the error
	}
	rh := &ctx.Response.Header // stripped by exchange
	rq.fields = rq.fields[:0]
	for k, v := range rh.All() {
		if skipStoredField(k) {
			continue
		}
		rq.fields = append(rq.fields, cache.Field{Name: k, Value: v})
		if ctx.Response.StatusCode() != fasthttp.StatusNotModified && httpsafe.EqualFold(k, "vary") &&
			variesOnGatewayField(v) {
			// Keyed on a fill by the value this gateway wrote, on a lookup
			// by the one the client sent: a client could name another's.
			// For the cache only (never sent): not stored.
			rq.fields = append(rq.fields, cache.Field{Name: []byte("Vary"), Value: []byte("*")})
		}
	}
	// A streamed body (over buffer_response or of unknown length) is never
	// read here: the cache does not store it and the client gets it as it
	// comes (stream.go).
	streamed := ctx.Response.IsBodyStream()
	var body []byte
	if !streamed {
		body = ctx.Response.Body()
	}
	rq.cresp = cache.Response{
		Status: ctx.Response.StatusCode(), Header: rq.fields, Body: body,
		Streamed: streamed || int64(len(body)) > rq.route.cache.MaxEntry,
		Ranged:   len(h.Peek("Range")) > 0, // still on the request: asked for
	}
	if rq.connNamed {
		// "Connection: Vary" (or Cache-Control, Set-Cookie...): the
		// field was for this hop alone and is gone, so what the cache
		// would decide on is not what the backend said. (Other named
		// fields are gone too, and the response is stored without them.)
		rq.cresp.Unstorable = cache.NotStoredConnection
	}
	return &rq.cresp
}

// readWholeIfStorable reads a streamed body (over the pool's
// buffer_response) whole when its Content-Length fits maxEntry, so that a
// cache-enabled route stores what it could store before streaming existed.
// The decision is the length's: a body of unknown length, or a longer one,
// stays a stream and passes through uncached; nothing is buffered to find
// out. An error is a body that broke while being read (a 502).
func readWholeIfStorable(resp *fasthttp.Response, maxEntry int64) error {
	if !resp.IsBodyStream() {
		return nil
	}
	st, ok := resp.BodyStream().(*balancer.Stream)
	if !ok || st.Len() < 0 || st.Len() > maxEntry {
		return nil
	}
	n := st.Len()
	st.Take()
	resp.ResetBody() // drops the stream from the response; taken, it goes on
	_, err := io.CopyN(resp.BodyWriter(), st, n)
	if endErr := st.End(); err == nil {
		err = endErr
	}
	return err
}

// writeRange answers a GET's Range from a stored response (RFC 9110 §14):
// from a 200, one range is a 206 of its bytes, one past the end a 416 with
// the length, and anything else (several ranges, an invalid field) the
// whole response; from a partial entry (a stored 206), the range within
// its part that the cache found it to hold (cache.Entry.Part). It reports
// whether it wrote the body.
func (rq *request) writeRange(e *cache.Entry) bool {
	part, partial := e.Part()
	if rq.byteRange == nil && !partial || e.Status != fasthttp.StatusOK && !partial {
		return false
	}
	size := int64(len(e.Body))
	if partial {
		size = part.Total
	}
	first, last, a := cache.ParseRange(rq.byteRange, size)
	h := &rq.ctx.Response.Header
	cr := append(rq.crange[:0], "bytes "...)
	switch {
	case partial && (a != cache.RangePartial || first < part.First || last > part.Last):
		// Never so: the cache answers only ranges a part holds. Were it
		// so, the part as stored, with its own Content-Range, is a 206
		// a client can place; the whole of something it is not.
		rq.ctx.Response.SetBodyRaw(e.Body)
		return true
	case a == cache.RangePartial:
		h.SetStatusCode(fasthttp.StatusPartialContent)
		cr = strconv.AppendInt(cr, first, 10)
		cr = append(cr, '-')
		cr = strconv.AppendInt(cr, last, 10)
		rq.ctx.Response.SetBodyRaw(e.Body[first-part.First : last-part.First+1])
	case a == cache.RangeUnsatisfiable:
		// No representation goes with it: nothing that describes one, or
		// lets a cache in front keep the 416 for every request of the URL.
		h.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
		for _, f := range [...]string{"cache-control", "expires", "content-type", "content-encoding", "content-language"} {
			httpsafe.DelResponseField(h, f)
		}
		cr = append(cr, '*')
	default:
		return false
	}
	cr = append(cr, '/')
	cr = strconv.AppendInt(cr, size, 10)
	rq.crange = cr
	h.SetBytesV("Content-Range", cr)
	return true
}

// variesOnGatewayField reports whether the Vary value v names a request
// field that rewriteRequest or Fill sets whatever the client sent.
func variesOnGatewayField(v []byte) bool {
	for _, name := range [...]string{"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
		"forwarded", "via", "x-request-id", "if-none-match", "if-modified-since"} {
		if containsToken(v, name) {
			return true
		}
	}
	return false
}

// skipStoredField reports fields the cache must not keep or replay: framing
// (the gateway frames what it sends) and hop-by-hop leftovers. Age is handed
// to the cache, which needs it for the response's initial age (RFC 9111
// §4.2.3) and never stores it: an answer from storage gets its own Age.
func skipStoredField(name []byte) bool {
	return httpsafe.EqualFold(name, "content-length") || httpsafe.EqualFold(name, "transfer-encoding") ||
		httpsafe.EqualFold(name, "connection")
}

// writeEntry answers with a stored response: its status and fields, its
// body without a copy (the entry is immutable and outlives the write), and
// an Age. A client conditional that matched gets a 304 with the fields
// RFC 9110 §15.4.5 keeps.
func (s *Server) writeEntry(rq *request, res *cache.Result) {
	e, resp := res.Entry, &rq.ctx.Response
	resp.Reset()
	s.cache.entryHead(&rq.hit, e, res.NotModified).CopyTo(&resp.Header)
	if !res.NotModified && !rq.writeRange(e) {
		resp.SetBodyRaw(e.Body)
	}
	rq.age = strconv.AppendInt(rq.age[:0], int64(res.Age/time.Second), 10)
	resp.Header.SetBytesV(hdrAge, rq.age)
	resp.Header.SetBytesV(hdrRequestID, rq.id)
}

// hitHead is the response head a request state last built from a stored
// entry (writeEntry). Building one is a tenth of a cache hit (keeping the
// stored Date means parsing it, and every stored field is added through
// fasthttp's header API); a hot key's hits come to the same request states
// again and again, and copy the head instead. Entries are immutable, so the
// entry's identity says the head still matches. Only a small entry is
// remembered: the request states are pooled, and one kept after the cache
// dropped it stays in memory until its state is reused or collected.
type hitHead struct {
	entry       *cache.Entry
	notModified bool
	header      fasthttp.ResponseHeader
}

// maxHitHeadEntry is the largest entry a hitHead remembers, body included:
// at most this much held per pooled request state beyond what the cache
// holds.
const maxHitHeadEntry = 16 << 10

// entryHead returns the response head for e (a 304's when notModified),
// built into h unless h already holds it.
func (st *cacheStore) entryHead(h *hitHead, e *cache.Entry, notModified bool) *fasthttp.ResponseHeader {
	if h.entry == e && h.notModified == notModified {
		return &h.header
	}
	h.entry, h.notModified = nil, notModified
	if e.Size() <= maxHitHeadEntry {
		h.entry = e
	}
	hd := &h.header
	hd.Reset()
	// Stored names go out as the backend spelled them, as on a proxied
	// answer, and a stored response without a Content-Type goes out
	// without one (Reset forgets it: fasthttp would add text/plain).
	hd.DisableNormalizing()
	hd.SetNoDefaultContentType(true)
	// The stored Date, not the time of sending (see cachedate.go).
	st.keepStoredDate(hd, storedDate(e))
	if notModified {
		hd.SetStatusCode(fasthttp.StatusNotModified)
	} else {
		hd.SetStatusCode(e.Status)
	}
	for i := range e.Header {
		f := &e.Header[i]
		if skipStoredField(f.Name) || httpsafe.EqualFold(f.Name, "date") || cache.SurrogateField(f.Name) ||
			notModified && !cache.NotModifiedField(f.Name) {
			continue
		}
		hd.AddBytesKV(f.Name, f.Value)
	}
	return hd
}

// storedDate is the entry's first Date field value, nil when it has none.
func storedDate(e *cache.Entry) []byte {
	for i := range e.Header {
		if httpsafe.EqualFold(e.Header[i].Name, "date") {
			return e.Header[i].Value
		}
	}
	return nil
}

// appendCacheStatus writes the RFC 9211 Cache-Status member of this cache:
// "sluice; hit; ttl=42; detail=l1", "sluice; fwd=miss; fwd-status=200;
// stored; detail=origin", "sluice; fwd=stale; fwd-status=304; stored".
func appendCacheStatus(dst []byte, res *cache.Result) []byte {
	dst = append(dst, cacheName...)
	if res.Fwd == cache.FwdNone && res.Entry != nil {
		dst = append(dst, "; hit"...)
	} else if res.Fwd != cache.FwdNone {
		dst = append(dst, "; fwd="...)
		dst = append(dst, res.Fwd.String()...)
		if res.FwdStatus > 0 {
			dst = append(dst, "; fwd-status="...)
			dst = strconv.AppendInt(dst, int64(res.FwdStatus), 10)
		}
	}
	if res.Entry != nil {
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, int64(res.TTL.Round(time.Second)/time.Second), 10)
	}
	if res.Stored {
		dst = append(dst, "; stored"...)
	}
	if res.Collapsed {
		dst = append(dst, "; collapsed"...)
	}
	dst = append(dst, "; detail="...)
	if res.NotStored != cache.StoreOK && !res.Stored && res.Fwd != cache.FwdNone {
		dst = append(dst, '"')
		dst = append(dst, res.Tier.String()...)
		dst = append(dst, ", not stored: "...)
		dst = append(dst, res.NotStored.String()...)
		return append(dst, '"')
	}
	return append(dst, res.Tier.String()...)
}

// refreshInBackground revalidates a stale entry that was just served under
// stale-while-revalidate, in a goroutine of its own and with a copy of the
// request: the client's connection and pooled state are not touched once
// the client has its answer. It allocates, but only once per refresh of a
// key (the cache hands Refresh to one request at a time).
func (s *Server) refreshInBackground(rq *request) {
	bg := newRequest().(*request)
	bg.srv, bg.table, bg.route, bg.start = s, rq.table, rq.route, time.Now()
	bg.ctx = &fasthttp.RequestCtx{}
	bg.ctx.Init(&rq.ctx.Request, rq.ctx.RemoteAddr(), nil)
	// A refresh is of the whole response, even one a client's range
	// started (the entry it refreshes may be gone, and Fill then sends the
	// request as it is).
	bg.ctx.Request.Header.Del("Range")
	bg.host = append(bg.host, rq.host...)
	bg.path = append(bg.path, rq.path...)
	if rq.query != nil {
		bg.query = append([]byte{}, rq.query...)
	}
	bg.id = append(bg.id, rq.id...)
	bg.chain = append(bg.chain, rq.chain...)
	bg.peer, bg.client, bg.trusted, bg.tls = rq.peer, rq.client, rq.trusted, rq.tls
	bg.pool, bg.hashKey = rq.pool, append(bg.hashKey, rq.hashKey...)
	bg.noStream = true // nobody reads a stream: the cache needs the body whole
	bg.creq = rq.creq
	bg.creq.Method = append([]byte(nil), rq.creq.Method...)
	bg.creq.Scheme, bg.creq.Host, bg.creq.Path, bg.creq.Query = bg.scheme(), bg.host, bg.path, bg.query
	bg.creq.Authority = bg.authority() // a view of bg's own copy of the request
	bg.creq.Fields = bg
	bg.creq.IfNoneMatch, bg.creq.IfModifiedSince, bg.creq.Range = nil, nil, nil
	key := append([]byte(nil), rq.key...)
	s.refreshMu.Lock()
	if s.draining.Load() {
		s.refreshMu.Unlock()
		return // shutting down: another instance refreshes it
	}
	s.refreshes.Add(1)
	s.refreshMu.Unlock()
	go func() {
		defer s.refreshes.Done()
		s.cache.Refresh(&bg.creq, key, bg)
	}()
}

// invalidateCached removes what a successful unsafe request made stale
// (RFC 9111 §4.4): its own URL and the same-host Location and
// Content-Location, in this instance's memory at once and in Redis and on
// every other instance through the cache's write queue.
func (s *Server) invalidateCached(rq *request) {
	if !rq.table.anyCache {
		return
	}
	ctx := rq.ctx
	method := ctx.Method()
	if cache.Safe(method) {
		return
	}
	target := append(rq.uri[:0], rq.path...) // uri was sent; it is free now
	if len(rq.query) > 0 {
		target = append(append(target, '?'), rq.query...)
	}
	rq.uri = target
	targets := cache.Invalidated(method, ctx.Response.StatusCode(), rq.host, target,
		ctx.Response.Header.Peek("Location"), ctx.Response.Header.Peek("Content-Location"))
	for i, t := range targets {
		if t == nil {
			continue
		}
		if i > 0 { // a reference: normalised as a request path is
			path, query := httpsafe.SplitRequestURI(t)
			norm, status, _ := httpsafe.AppendPath(nil, path, &rq.table.safe)
			if status != 0 {
				continue
			}
			if query != nil {
				norm = append(append(norm, '?'), query...)
			}
			t = norm
		}
		s.cache.Invalidate(rq.host, t)
	}
}

// scheme is the request's scheme, part of its cache key.
func (rq *request) scheme() []byte {
	if rq.tls {
		rq.schemeBuf = append(rq.schemeBuf[:0], schemeHTTPS...)
	} else {
		rq.schemeBuf = append(rq.schemeBuf[:0], schemeHTTP...)
	}
	return rq.schemeBuf
}

// authority is the Host the backend will be sent (for absolute-form
// requests, the target's authority), or nil when it is the routing host.
// The backend sees it as the client wrote it (port, case, trailing dot), so
// it is part of the cache key (cache.Request.Authority).
func (rq *request) authority() []byte {
	h := &rq.ctx.Request.Header
	auth := absoluteAuthority(h.RequestURI())
	if auth == nil {
		auth = h.Host()
	}
	if string(auth) == string(rq.host) {
		return nil
	}
	return auth
}

// AppendHeader implements cache.Fields: the values of every line of the
// field name (lower case), joined by ", ".
func (rq *request) AppendHeader(dst, name []byte) ([]byte, bool) {
	if rq.dropped(name) {
		return dst, false
	}
	// Empty copies count: a key or Vary value must tell "X:" and "X: a"
	// apart from "X: a" (cache.normaliseList keeps empty members too).
	return appendFieldLines(dst, &rq.ctx.Request.Header, name, true)
}

// dropped reports whether the rewrite of the request for its backend
// removes or replaces the field name (lower case): one the client's
// Connection names (or a hop-by-hop one), one the gateway sets or removes
// (X-Forwarded-*, X-Real-IP..., unless from a trusted proxy), or, where the
// table drops them, one with an underscore. A key is built before the
// rewrite, and must hold only what the backend will see: "X-Tenant: victim"
// with "Connection: X-Tenant" reaches the backend without its tenant, and
// its answer must not be stored under the tenant's key.
func (rq *request) dropped(name []byte) bool {
	return !rq.table.allowUnderscores && bytes.IndexByte(name, '_') >= 0 ||
		replacedForBackend(name, rq.trusted) ||
		httpsafe.RequestStrips(&rq.ctx.Request.Header, name)
}

// AppendCookie implements cache.Fields: the values of every copy of the
// cookie, joined by ";" (which no cookie value holds). Backends disagree on
// which copy counts, so a key made of one copy would let a request with a
// decoy copy store its answer under another client's key.
func (rq *request) AppendCookie(dst, name []byte) ([]byte, bool) {
	if rq.dropped([]byte("cookie")) {
		return dst, false
	}
	found := false
	for k, v := range rq.ctx.Request.Header.Cookies() {
		if string(k) != string(name) {
			continue
		}
		if found {
			dst = append(dst, ';')
		}
		dst = append(dst, v...)
		found = true
	}
	return dst, found
}

// AppendQueryArg implements cache.Fields.
func (rq *request) AppendQueryArg(dst, name []byte) ([]byte, bool) {
	v := rq.ctx.QueryArgs().PeekBytes(name)
	return append(dst, v...), v != nil
}

// containsToken reports whether the comma-separated list v has token as a
// member, without regard to case.
func containsToken(v []byte, token string) bool { return httpsafe.HasToken(v, []byte(token)) }
