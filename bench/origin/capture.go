package origin

import (
	"bytes"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

// Request is one request as the origin received it on the wire, for
// tests that check what a gateway forwarded.
type Request struct {
	Method     string
	RequestURI string // exactly as on the request line, not decoded or normalised
	Proto      string // e.g. "HTTP/1.1"
	// Headers are the header fields in the order received, names spelled as
	// sent. Values have the surrounding whitespace removed.
	Headers []Header
	// Body is the request body after transfer decoding (chunked framing
	// removed), at most captureBodyMax bytes; BodyLen is its full length.
	Body    []byte
	BodyLen int
	// RemoteAddr is the client's host:port: two requests with the same one
	// came over the same connection.
	RemoteAddr string
	// ConnRequest is the request's position on its connection, from 1.
	ConnRequest uint64
}

// Header is one header field as received.
type Header struct {
	Name, Value string
}

// Get returns the value of the first header named name (compared without
// regard to case) and whether there was one.
func (r Request) Get(name string) (string, bool) {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Values returns the values of every header named name (compared without
// regard to case), in the order received.
func (r Request) Values(name string) []string {
	var out []string
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

// captureSlots is how many recent requests Received returns.
const captureSlots = 64

// captureBodyMax bounds the body kept per captured request, so 64 slots
// of uploads cannot hold hundreds of megabytes.
const captureBodyMax = 1 << 20

// captureRing is a ring of the last captureSlots requests. Each slot
// has its own lock and reuses its buffers, so recording costs a few copies
// and no allocation once the buffers have grown, and concurrent requests
// rarely meet on the same lock.
type captureRing struct {
	slots [captureSlots]captureSlot
}

type captureSlot struct {
	mu      sync.Mutex
	seq     int64 // request number; 0 means empty
	method  []byte
	uri     []byte
	proto   []byte
	headers []byte // raw header block as received
	body    []byte
	bodyLen int
	remote  net.Addr
	connReq uint64
}

// record stores ctx's request as request number seq (from 1).
func (c *captureRing) record(seq int64, ctx *fasthttp.RequestCtx) {
	s := &c.slots[(seq-1)%captureSlots]
	h := &ctx.Request.Header
	body := ctx.Request.Body()
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq < s.seq {
		// A newer request already took the slot while this one waited.
		return
	}
	s.seq = seq
	s.method = append(s.method[:0], h.Method()...)
	s.uri = append(s.uri[:0], h.RequestURI()...)
	s.proto = append(s.proto[:0], h.Protocol()...)
	s.headers = append(s.headers[:0], h.RawHeaders()...)
	s.bodyLen = len(body)
	s.body = append(s.body[:0], body[:min(len(body), captureBodyMax)]...)
	s.remote = ctx.RemoteAddr()
	s.connReq = ctx.ConnRequestNum()
}

// reset empties every slot.
func (c *captureRing) reset() {
	for i := range c.slots {
		s := &c.slots[i]
		s.mu.Lock()
		s.seq = 0
		s.mu.Unlock()
	}
}

// snapshot copies the recorded requests out, oldest first.
func (c *captureRing) snapshot() []Request {
	type seqReq struct {
		seq int64
		req Request
	}
	var got []seqReq
	for i := range c.slots {
		s := &c.slots[i]
		s.mu.Lock()
		if s.seq != 0 {
			r := Request{
				Method:      string(s.method),
				RequestURI:  string(s.uri),
				Proto:       string(s.proto),
				Headers:     parseHeaders(nil, s.headers),
				Body:        bytes.Clone(s.body),
				BodyLen:     s.bodyLen,
				ConnRequest: s.connReq,
			}
			if s.remote != nil {
				r.RemoteAddr = s.remote.String()
			}
			got = append(got, seqReq{s.seq, r})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(got, func(a, b seqReq) int { return int(a.seq - b.seq) })
	out := make([]Request, len(got))
	for i := range got {
		out[i] = got[i].req
	}
	return out
}

// Received returns the last (up to 64) requests the origin counted, oldest
// first, as they were received. Control endpoint requests are not included.
func (o *Server) Received() []Request { return o.capture.snapshot() }

// ResetReceived forgets the captured requests. Requests is not reset.
func (o *Server) ResetReceived() { o.capture.reset() }

// parseHeaders appends the fields of a raw header block (as fasthttp's
// RawHeaders returns it) to dst, names as sent, values trimmed of spaces and
// tabs. A line starting with a space or tab continues the previous value
// (obsolete line folding), joined with one space.
func parseHeaders(dst []Header, raw []byte) []Header {
	scanHeaders(raw, func(name, value []byte, cont bool) {
		if cont {
			if n := len(dst); n > 0 {
				dst[n-1].Value += " " + string(value)
			}
			return
		}
		dst = append(dst, Header{Name: string(name), Value: string(value)})
	})
	return dst
}

// scanHeaders calls fn for each line of a raw header block: the name as
// sent (without the colon) and the value without surrounding whitespace. For
// a folded continuation line, cont is true and name is nil.
func scanHeaders(raw []byte, fn func(name, value []byte, cont bool)) {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue // the blank line ending the block
		}
		if line[0] == ' ' || line[0] == '\t' {
			fn(nil, bytes.Trim(line, " \t"), true)
			continue
		}
		name, value, _ := bytes.Cut(line, []byte{':'})
		fn(name, bytes.Trim(value, " \t"), false)
	}
}
