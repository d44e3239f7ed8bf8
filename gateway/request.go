package gateway

import (
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/cache"
	"github.com/sluice-gw/sluice/gateway/internal/httpsafe"
	"github.com/sluice-gw/sluice/ratelimit"
)

// request is one request on its way through the pipeline: the configuration
// it is served under, what each step learned, and the buffers the steps build
// into. Server.handle takes one from a pool and gives it to every step; no
// field may be used after the request has been answered, and nothing may keep
// a reference to it (or to ctx) beyond that.
type request struct {
	srv   *Server
	ctx   *fasthttp.RequestCtx
	table *Table // the configuration this request sees from start to end
	route *Route // nil until routed
	query []byte // raw query of the request target, without '?'; aliases ctx
	tls   bool   // the client's leg is TLS (ctx.IsTLS, kept for a background refresh's copy)
	// start is when the gateway took the request: its one clock read for
	// the request's duration, the access log and the route deadline.
	start time.Time

	// Who sent it. peer is the connection's peer; client is who the request
	// is for: the peer, or, when the peer is a trusted proxy, the right-most
	// address of X-Forwarded-For that is not itself a trusted proxy. Rate
	// limits and client-keyed balancing key on client.
	peer    netip.Addr
	client  netip.Addr
	trusted bool // peer is one of server.trusted_proxies

	pool      *routePool        // the pool (or shard) serving the request; set by choosePool
	hashKey   []byte            // the shard's or consistent_hash pool's key, copied out of the request
	admitted  bool              // counted in Server.active (shed.go); finish gives it back
	backend   *balancer.Backend // the backend that answered (or failed) last
	errKind   string            // why the upstream exchange failed, for logs
	rewritten bool              // rewriteRequest ran: the request is the upstream one now
	// absent are fields check found the client's head (and body) without,
	// so that assignRequestID and rewriteRequest need not look them up.
	// Nothing is known absent until check has accepted the request.
	absent httpsafe.Fields

	// The cache step (cache.go): the request as the cache sees it, what a
	// fill gave it, and why a fill failed.
	creq    cache.Request
	cresp   cache.Response
	fillErr error
	// connNamed: the last response's Connection named a field the cache
	// decides by (stripResponse), which it did not see: it is not stored.
	connNamed bool

	// Buffers, reused from request to request.
	host   []byte // routing host: lower case, no port
	path   []byte // normalised path the router matched
	uri    []byte // request-target sent upstream
	id     []byte // request id
	chain  []byte // a trusted peer's X-Forwarded-For, every copy joined
	fwd    []byte // X-Forwarded-For / Via being built
	allow  []byte // Allow header for 405
	errBuf []byte // JSON error body

	limitBuf  []byte               // a rate limit's client key, then its header values
	decisions []ratelimit.Decision // the route's limits passed, for writeLimitHeaders

	hit    hitHead       // the head of the entry last answered with (cache.go)
	key    []byte        // cache key
	fields []cache.Field // upstream response fields handed to the cache
	status []byte        // Cache-Status being built
	age    []byte        // Age value
	// interim is forwardInterim, made once per request state so that
	// passing it to the balancer allocates nothing; interimBuf is what it
	// writes.
	interim    balancer.Interim
	interimBuf []byte
	byteRange  []byte // a GET's Range field, served from a stored 200 (writeRange); nil: none
	rangeBuf   []byte // byteRange's buffer
	crange     []byte // Content-Range value
	schemeBuf  []byte // "http" or "https" (and the authority sent, see scheme), for the cache key

	// The response body streaming to the client (stream.go); while it is
	// set the request outlives its handler. noStream asks for the whole
	// body instead (a background refresh, an HTTP/1.0 client).
	stream   *responseStream
	noStream bool
	http10   bool // the client spoke HTTP/1.0 (the upstream request is 1.1)
	// reqBody is the request body streaming to the backend, nil when it
	// was read whole (reqbody.go); body is the buffer one is read into.
	reqBody *requestBody
	body    []byte
	// held is the backend whose place a streamed answer keeps until it
	// ends, with the exchange's outcome (proxy.go releaseHeld).
	held        *balancer.Backend
	heldOutcome balancer.Outcome
	sent        int64 // body bytes a finished stream sent, for the access log
	streamed    bool  // the response body was streamed: sent counts it
}

func newRequest() any {
	rq := &request{
		host: make([]byte, 0, 64), path: make([]byte, 0, 256), uri: make([]byte, 0, 512),
		id: make([]byte, 0, 64), chain: make([]byte, 0, 128), fwd: make([]byte, 0, 128), allow: make([]byte, 0, 64), errBuf: make([]byte, 0, 256),
		key: make([]byte, 0, 256), fields: make([]cache.Field, 0, 16), status: make([]byte, 0, 96),
		age: make([]byte, 0, 12), schemeBuf: make([]byte, 0, 5), hashKey: make([]byte, 0, 64),
	}
	rq.interim = rq.forwardInterim
	return rq
}

// acquire takes a request state for ctx, bound to the live table.
func (s *Server) acquire(ctx *fasthttp.RequestCtx) *request {
	rq := s.requests.Get().(*request)
	rq.srv, rq.ctx = s, ctx
	rq.table = s.table.Load()
	rq.tls = ctx.IsTLS()
	rq.start = time.Now()
	return rq
}

// release forgets everything that pointed into the finished request and
// returns rq to the pool; the buffers keep their capacity.
func (s *Server) release(rq *request) {
	if rq.stream != nil {
		return // the stream releases it when it ends
	}
	rq.noStream, rq.http10, rq.sent, rq.streamed, rq.reqBody = false, false, 0, false, nil
	rq.ctx, rq.table, rq.route, rq.query, rq.tls = nil, nil, nil, nil, false
	rq.peer, rq.client, rq.trusted = netip.Addr{}, netip.Addr{}, false
	rq.backend, rq.errKind, rq.rewritten, rq.absent = nil, "", false, 0
	rq.pool, rq.hashKey, rq.admitted = nil, rq.hashKey[:0], false
	rq.creq, rq.cresp, rq.fillErr = cache.Request{}, cache.Response{}, nil
	rq.byteRange = nil
	clear(rq.fields) // views of the finished response
	rq.decisions = rq.decisions[:0]
	s.requests.Put(rq)
}
