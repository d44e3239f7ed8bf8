package gateway

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/balancer"
)

// Streaming responses (README "Streaming"). A backend body larger than the
// pool's buffer_response, or of unknown length, is left unread by
// Backend.Do as a balancer.Stream; responseStream carries it to the client
// after the handler has returned, while fasthttp writes the response:
//
//   - one piece at a time through a fixed buffer, each piece written as soon
//     as it was read, so memory per stream is the buffer whatever the body's
//     size, a slow client slows the backend down (TCP backpressure) and an
//     event stream reaches the client event by event;
//   - a body with a Content-Length keeps it, and is written to the client's
//     connection directly (the head was flushed first: ImmediateHeaderFlush);
//     one of unknown length goes out chunked, one flushed chunk per piece;
//   - a broken body (short, malformed chunks, over max_response_body) is an
//     error from the stream: fasthttp then closes the client's connection,
//     so the client sees a truncated response, never a complete-looking one;
//   - server.write_timeout bounds each piece's write instead of the whole
//     body, and the pool's stream_timeout each wait for the next piece.
//
// The request's state lives on until the stream ends: the access log line
// and the request metrics are written then, with the bytes really sent.

// streamBufSize is the size of one piece. 64 KiB keeps a fast download to
// about one read and one write system call per 64 KiB; twenty concurrent
// streams hold 1.25 MiB.
const streamBufSize = 64 << 10

// responseStream is the body stream fasthttp writes out for a streamed
// response. It is used by one goroutine: fasthttp's, after the handler.
type responseStream struct {
	srv    *Server
	rq     *request // finished and released by Close
	src    *balancer.Stream
	conn   net.Conn // the client's connection
	length int64    // the body's Content-Length, or -1 (sent chunked)
	buf    *[]byte
	sent   int64
	err    error // what ended the copy early, if anything
	// writeTimeout is server.write_timeout, applied to each piece.
	writeTimeout time.Duration
}

// streamBufs holds the pieces' buffers of the streams in progress.
var streamBufs = sync.Pool{New: func() any { b := make([]byte, streamBufSize); return &b }}

// streamBody hands a streamed backend body over to a responseStream, which
// fasthttp writes out after the handler returns. A buffered response is left
// alone: this is a nil check on the fast path.
func (s *Server) streamBody(rq *request) {
	resp := &rq.ctx.Response
	if !resp.IsBodyStream() {
		return
	}
	src, ok := resp.BodyStream().(*balancer.Stream)
	if !ok {
		return
	}
	rs := &responseStream{srv: s, rq: rq, src: src.Take(), conn: rq.ctx.Conn(), length: src.Len(),
		buf: streamBufs.Get().(*[]byte), writeTimeout: s.writeTimeout}
	rq.stream = rs
	// SetBodyStream closes the stream it replaces: src was taken, so that
	// Close does nothing and rs ends it.
	resp.SetBodyStream(rs, int(rs.length))
	resp.ImmediateHeaderFlush = true
	s.streams.add(rs)
}

// Read is for fasthttp's own copy loop; WriteTo is what it uses.
func (rs *responseStream) Read(p []byte) (int, error) {
	n, err := rs.src.Read(p)
	rs.sent += int64(n)
	if err != nil && err != io.EOF {
		rs.err = err
	}
	return n, err
}

// SupportsBodyWriteTo tells fasthttp to copy with WriteTo, chunked or not.
func (rs *responseStream) SupportsBodyWriteTo() bool { return true }

// WriteTo copies the body to the client one piece at a time. w is fasthttp's
// writer: for a chunked body it frames and flushes each piece; a body with
// a length goes straight to the connection, which fasthttp's buffered writer
// would otherwise hold until 4 KiB had gathered.
func (rs *responseStream) WriteTo(w io.Writer) (int64, error) {
	dst := w
	if rs.length >= 0 && rs.conn != nil {
		if _, ok := rs.conn.(io.ReaderFrom); ok {
			// A plain TCP client: the balancer's stream hands the body
			// from socket to socket (splice), never through this buffer.
			_, err := rs.src.WriteTo(clientWriter{rs})
			if err != nil {
				rs.err = err
			}
			return rs.sent, err
		}
		dst = rs.conn
	}
	buf := *rs.buf
	for {
		n, err := rs.src.Read(buf)
		if n > 0 {
			rs.extendWriteDeadline()
			wn, werr := dst.Write(buf[:n])
			rs.sent += int64(wn)
			if werr != nil {
				rs.err = werr
				return rs.sent, werr
			}
		}
		if err == io.EOF {
			return rs.sent, nil
		}
		if err != nil {
			rs.err = err
			return rs.sent, err
		}
	}
}

// clientWriter writes to the client's connection, past fasthttp's buffered
// writer, counting what was sent and giving each write server.write_timeout.
// Its ReadFrom is the connection's (splice between TCP sockets).
type clientWriter struct{ rs *responseStream }

func (w clientWriter) Write(p []byte) (int, error) {
	w.rs.extendWriteDeadline()
	n, err := w.rs.conn.Write(p)
	w.rs.sent += int64(n)
	return n, err
}

func (w clientWriter) ReadFrom(r io.Reader) (int64, error) {
	w.rs.extendWriteDeadline()
	n, err := w.rs.conn.(io.ReaderFrom).ReadFrom(r)
	w.rs.sent += n
	return n, err
}

// extendWriteDeadline gives the next piece server.write_timeout to be
// written: for a stream it bounds a client that stopped reading, not the
// length of the download.
func (rs *responseStream) extendWriteDeadline() {
	if rs.writeTimeout > 0 && rs.conn != nil {
		_ = rs.conn.SetWriteDeadline(time.Now().Add(rs.writeTimeout))
	}
}

// Close ends the stream: fasthttp calls it once the response has been
// written (or could not be). The upstream connection goes back to its pool
// if the body was read to its end, the request is counted and logged, and
// its state released.
func (rs *responseStream) Close() error {
	if rs.src == nil {
		return nil
	}
	s, rq := rs.srv, rs.rq
	s.streams.remove(rs) // first: cut must not see rs.src change under it
	endErr := rs.src.End()
	if rs.err == nil && !rs.src.Done() {
		rs.err = endErr // the client's write ended early, before the body did
	}
	backendErr := rs.src.BackendErr()
	rs.src = nil
	streamBufs.Put(rs.buf)
	rs.buf = nil
	if rq.stream == rs {
		rq.stream = nil
		rq.streamed, rq.sent = true, rs.sent
		s.releaseHeld(rq, backendErr)
		if rs.err != nil {
			// Logged as the failure it was: the client got a cut body.
			rq.errKind = "stream"
		}
		s.finishRequest(rq)
		s.release(rq)
	}
	return nil
}

// streamSet is the streams in progress, which a shutdown waits for and, at
// its deadline, cuts.
type streamSet struct {
	mu sync.Mutex
	m  map[*responseStream]struct{}
}

func (ss *streamSet) add(rs *responseStream) {
	ss.mu.Lock()
	if ss.m == nil {
		ss.m = make(map[*responseStream]struct{})
	}
	ss.m[rs] = struct{}{}
	ss.mu.Unlock()
}

func (ss *streamSet) remove(rs *responseStream) {
	ss.mu.Lock()
	delete(ss.m, rs)
	ss.mu.Unlock()
}

// len returns the number of streams in progress.
func (ss *streamSet) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

// cut closes both connections of every stream in progress, so that one
// waiting on its backend ends as surely as one writing to its client:
// fasthttp ends the response and Close finishes the request.
func (ss *streamSet) cut() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for rs := range ss.m {
		rs.src.Abort()
		if rs.conn != nil {
			_ = rs.conn.Close()
		}
	}
	return len(ss.m)
}
