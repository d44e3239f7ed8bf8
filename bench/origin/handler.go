package origin

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// maxID is the largest order id: 2^53, the largest integer a JSON
// number keeps exactly in every client.
const maxID = 1 << 53

// serve is the origin's fasthttp handler. The control endpoint is answered
// first and not counted; every other request is counted and captured, then
// routed. Latency and faults apply to /orders and /echo only, so a health
// checker keeps seeing the truth unless FaultHealthFail says otherwise.
func (o *Server) serve(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(o.hdr.originName, o.hdr.originValue)
	path := ctx.Path()
	if bytes.HasPrefix(path, []byte("/_origin/")) {
		o.serveControl(ctx, path[len("/_origin/"):])
		return
	}
	seq := o.reqs.Add(1)
	o.capture.record(seq, ctx)

	var orders bool
	switch {
	case string(path) == "/healthz":
		o.serveHealth(ctx)
		return
	case string(path) == "/download": // stream.go
		o.serveDownload(ctx)
		return
	case string(path) == "/events":
		o.serveEvents(ctx)
		return
	case string(path) == "/ws":
		o.serveWebSocket(ctx) // ws.go
		return
	case string(path) == "/orders" || bytes.HasPrefix(path, []byte("/orders/")):
		orders = true
	case string(path) == "/echo" || bytes.HasPrefix(path, []byte("/echo/")):
	default:
		writeError(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint")
		return
	}

	if o.opts.Latency.Dist != "" && !o.sleep(o.opts.Latency.sample()) {
		return // closing: the connection is about to go
	}
	f := *o.fault.Load()
	switch {
	case f == FaultHang || f == FaultGarbage:
		// Nothing to render: no valid byte will be sent.
		o.hijack(ctx, f)
		return
	case f == Fault5xx:
		o.serve5xx(ctx, seq)
		return
	case orders && o.opts.ErrorRate > 0 && rand.Float64() < o.opts.ErrorRate:
		writeError(ctx, fasthttp.StatusInternalServerError, "injected_error", "random failure (error rate)")
	case orders:
		o.serveOrders(ctx, path)
	default:
		o.serveEcho(ctx)
	}
	if f.rawWire() {
		o.hijack(ctx, f)
	}
}

// sleep waits d, or until Close; it reports whether d passed.
func (o *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-o.done:
		return false
	}
}

// serveHealth answers GET /healthz.
func (o *Server) serveHealth(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	if *o.fault.Load() == FaultHealthFail {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("unhealthy")
		return
	}
	ctx.SetBodyString("ok")
}

// serveOrders answers GET|HEAD /orders/{id} and POST /orders.
func (o *Server) serveOrders(ctx *fasthttp.RequestCtx, path []byte) {
	if string(path) == "/orders" {
		if !ctx.IsPost() {
			ctx.Response.Header.Set("Allow", "POST")
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "use POST to create an order")
			return
		}
		o.createOrder(ctx)
		return
	}
	id, ok := parseID(path[len("/orders/"):])
	if !ok {
		writeError(ctx, fasthttp.StatusNotFound, "order_not_found", "order id must be an integer from 1 to 2^53")
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "orders are read with GET")
		return
	}
	ctx.SetContentType("application/json")
	if o.opts.CacheControl != "" {
		ctx.Response.Header.SetCanonical(o.hdr.cacheControlName, o.hdr.cacheControlValue)
	}
	// Render into the response's own body buffer, which fasthttp keeps
	// between requests on the connection: no allocation once it has grown.
	b := ctx.Response.SwapBody(nil)
	b = appendOrder(b[:0], id, "", o.opts.PayloadBytes)
	ctx.Response.SwapBody(b)
}

// createOrder answers POST /orders: the body must be JSON; the answer is a
// new order with the next id and a Location pointing at it.
func (o *Server) createOrder(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 || !json.Valid(body) {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid_json", "the request body must be a JSON document")
		return
	}
	id := o.nextID.Add(1)
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.SetContentType("application/json")
	var loc [32]byte
	ctx.Response.Header.SetBytesV("Location", strconv.AppendInt(append(loc[:0], "/orders/"...), id, 10))
	b := ctx.Response.SwapBody(nil)
	b = appendOrder(b[:0], id, "created", 0)
	ctx.Response.SwapBody(b)
}

// parseID parses a decimal order id in [1, 2^53].
func parseID(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n >= 1 && n <= maxID
}

// serve5xx answers Fault5xx: 500, 502 and 503 in turn.
func (o *Server) serve5xx(ctx *fasthttp.RequestCtx, seq int64) {
	codes := [...]int{fasthttp.StatusInternalServerError, fasthttp.StatusBadGateway, fasthttp.StatusServiceUnavailable}
	writeError(ctx, codes[seq%3], "injected_fault", "fault mode 5xx")
}

// serveEcho answers /echo/... with a JSON description of the request as
// received: the request line's parts, the header fields in order with names
// as sent, and the body's length.
func (o *Server) serveEcho(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	b := make([]byte, 0, 512)
	b = append(b, `{"origin":`...)
	b = appendJSONString(b, o.opts.Name)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, string(h.Method()))
	b = append(b, `,"uri":`...)
	b = appendJSONString(b, string(h.RequestURI()))
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, string(h.Protocol()))
	b = append(b, `,"headers":[`...)
	first := true
	scanHeaders(h.RawHeaders(), func(name, value []byte, cont bool) {
		if cont {
			name = nil // a folded line: reported as a field without a name
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '[')
		b = appendJSONString(b, string(name))
		b = append(b, ',')
		b = appendJSONString(b, string(value))
		b = append(b, ']')
	})
	b = append(b, `],"body_len":`...)
	b = strconv.AppendInt(b, int64(len(ctx.Request.Body())), 10)
	b = append(b, `,"remote_addr":`...)
	b = appendJSONString(b, ctx.RemoteAddr().String())
	b = append(b, `,"conn_request":`...)
	b = strconv.AppendUint(b, ctx.ConnRequestNum(), 10)
	b = append(b, '}')
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// writeError answers status with a small JSON error document.
func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b := ctx.Response.SwapBody(nil)
	b = appendError(b[:0], code, msg)
	ctx.Response.SwapBody(b)
}

// serveControl answers the control endpoint, /_origin/...:
//
//	POST /_origin/fault?mode=hang   switch the fault mode ("none" or "" to clear)
//	GET  /_origin/stats             {"requests":N,"fault":"mode"}
//	POST /_origin/reset             forget the captured requests
func (o *Server) serveControl(ctx *fasthttp.RequestCtx, what []byte) {
	switch string(what) {
	case "fault":
		if !ctx.IsPost() && !ctx.IsPut() {
			ctx.Response.Header.Set("Allow", "POST, PUT")
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "use POST /_origin/fault?mode=...")
			return
		}
		var f Fault
		if err := f.Set(string(ctx.QueryArgs().Peek("mode"))); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, "bad_mode", err.Error())
			return
		}
		o.SetFault(f)
		o.serveStats(ctx)
	case "stats":
		o.serveStats(ctx)
	case "reset":
		if !ctx.IsPost() {
			ctx.Response.Header.Set("Allow", "POST")
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "use POST /_origin/reset")
			return
		}
		o.ResetReceived()
		o.serveStats(ctx)
	default:
		writeError(ctx, fasthttp.StatusNotFound, "not_found", "control endpoints: /_origin/fault, /_origin/stats, /_origin/reset")
	}
}

// serveStats answers {"requests":N,"fault":"mode"} with the current values.
func (o *Server) serveStats(ctx *fasthttp.RequestCtx) {
	b := make([]byte, 0, 64)
	b = append(b, `{"requests":`...)
	b = strconv.AppendInt(b, o.Requests(), 10)
	b = append(b, `,"fault":`...)
	b = appendJSONString(b, o.Fault().String())
	b = append(b, '}')
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
