package balancer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Stream is a backend response body that Backend.Do left unread because it
// is larger than the pool's buffer_response or of unknown length: the caller
// reads it as the client takes it, so memory stays bounded whatever its
// size. It re-checks the framing as it goes: a body that ends before its
// Content-Length, a broken chunk, or more than max_response_body bytes is an
// error, never a short body passed off as whole.
//
// The upstream connection is the stream's until Close: it goes back to the
// backend's pool only when the body was read to the exact end its framing
// gave, with nothing after it; otherwise it is closed. A Stream is used by
// one goroutine at a time.
type Stream struct {
	conn    net.Conn
	br      *bufio.Reader
	release func(reuse bool) // gives back br and the connection
	idle    time.Duration    // stream_timeout: the longest wait for the next piece
	max     int64            // max_response_body

	mode      streamMode
	left      int64 // bytes left in the body (fixed) or the current chunk (chunked)
	needCRLF  bool  // chunked: a chunk's data was read, its CRLF not yet
	read      int64 // body bytes read so far
	reuse     bool  // the connection may carry another request once the body ends
	done      bool  // the body ended where its framing said
	err       error // the first error; every later Read returns it
	backErr   error // the first error that was the backend's doing (see BackendErr)
	closed    bool
	taken     bool
	lastReset time.Time // when the read deadline was last pushed back
}

type streamMode uint8

const (
	streamFixed   streamMode = iota // Content-Length
	streamChunked                   // Transfer-Encoding: chunked
	streamToClose                   // neither: the body ends when the backend closes
)

// Errors a Stream's Read returns when the backend's framing is broken.
var (
	ErrShortBody     = errors.New("backend closed the connection before the end of the response body")
	ErrBrokenChunked = errors.New("backend sent a malformed chunked response body")
	ErrBodyTooLarge  = errors.New("backend response body larger than max_response_body")
)

// newStream starts reading the body of resp, whose head was read from br.
// length is the head's Content-Length as fasthttp gives it (-1 chunked, -2
// until close).
func newStream(conn net.Conn, br *bufio.Reader, length int64, max int64, idle time.Duration, reuse bool,
	release func(reuse bool)) *Stream {
	s := &Stream{conn: conn, br: br, release: release, idle: idle, max: max, reuse: reuse, left: length}
	switch {
	case length == -1:
		s.mode, s.left = streamChunked, 0
	case length < 0:
		s.mode, s.left, s.reuse = streamToClose, 0, false
	}
	return s
}

// Len returns the body's length from its Content-Length, or -1 when it is
// not known in advance.
func (s *Stream) Len() int64 {
	if s.mode == streamFixed {
		return s.left + s.read
	}
	return -1
}

// Read reads the next piece of the body: whatever the backend has sent, up
// to len(p), waiting at most stream_timeout for it.
func (s *Stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if s.br.Buffered() == 0 {
		s.extendDeadline()
	}
	var n int
	var err error
	switch s.mode {
	case streamFixed:
		n, err = s.readFixed(p)
	case streamChunked:
		n, err = s.readChunked(p)
	default:
		n, err = s.br.Read(p)
		if err == io.EOF {
			s.done = true
		}
	}
	s.read += int64(n)
	if s.max > 0 && s.read > s.max {
		// Nothing past the limit is passed on.
		n -= int(s.read - s.max)
		s.read = s.max
		err = fmt.Errorf("%w (%d bytes)", ErrBodyTooLarge, s.max)
	}
	if err != nil && err != io.EOF {
		s.err = err
		s.backErr = err // Read reads from the backend only
	}
	if s.done && n > 0 && err == io.EOF {
		err = nil // the data first, EOF on the next call
	}
	return n, err
}

// extendDeadline pushes the connection's read deadline stream_timeout
// ahead. It is done at most every hundredth of the timeout: a deadline is a
// timer update, and a fast stream reads many pieces in that time.
func (s *Stream) extendDeadline() {
	if s.idle <= 0 {
		_ = s.conn.SetReadDeadline(time.Time{})
		return
	}
	now := time.Now()
	if now.Sub(s.lastReset) < s.idle/100 {
		return
	}
	s.lastReset = now
	_ = s.conn.SetReadDeadline(now.Add(s.idle))
}

func (s *Stream) readFixed(p []byte) (int, error) {
	if s.left == 0 {
		s.done = true
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.br.Read(p)
	s.left -= int64(n)
	if s.left == 0 {
		s.done = true
		return n, io.EOF
	}
	if err == io.EOF {
		return n, fmt.Errorf("%w: %d bytes missing", ErrShortBody, s.left)
	}
	return n, err
}

// readChunked reads chunk data, and the chunk framing in between (RFC 9112
// §7.1). Extensions are ignored and trailer fields dropped: the gateway
// frames what it sends itself.
func (s *Stream) readChunked(p []byte) (int, error) {
	for s.left == 0 {
		if s.needCRLF {
			if err := s.readCRLF(); err != nil {
				return 0, err
			}
			s.needCRLF = false
		}
		size, err := s.readChunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := s.skipTrailer(); err != nil {
				return 0, err
			}
			s.done = true
			return 0, io.EOF
		}
		s.left, s.needCRLF = size, true
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.br.Read(p)
	s.left -= int64(n)
	if err == io.EOF {
		return n, fmt.Errorf("%w: %w", ErrShortBody, err)
	}
	return n, err
}

// maxChunkSize bounds one chunk's size line value; larger is refused (a
// 16-hex-digit size would overflow).
const maxChunkSize = 1 << 40

func (s *Stream) readChunkSize() (int64, error) {
	line, err := s.readLine()
	if err != nil {
		return 0, err
	}
	var size int64
	digits := 0
	for _, c := range line {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t':
			// Extensions (and the whitespace some senders put before them)
			// end the size.
			if digits == 0 {
				return 0, fmt.Errorf("%w: chunk size line %q", ErrBrokenChunked, line)
			}
			return size, nil
		default:
			return 0, fmt.Errorf("%w: chunk size line %q", ErrBrokenChunked, line)
		}
		size = size<<4 | int64(v)
		digits++
		if size > maxChunkSize {
			return 0, fmt.Errorf("%w: chunk of %d bytes or more", ErrBrokenChunked, size)
		}
	}
	if digits == 0 {
		return 0, fmt.Errorf("%w: empty chunk size line", ErrBrokenChunked)
	}
	return size, nil
}

// readLine returns one line without its CRLF (or bare LF, which fasthttp
// accepts too). A line longer than the read buffer is malformed.
func (s *Stream) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %w", ErrShortBody, io.ErrUnexpectedEOF)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line too long", ErrBrokenChunked)
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func (s *Stream) readCRLF() error {
	line, err := s.readLine()
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return fmt.Errorf("%w: chunk data longer than its size", ErrBrokenChunked)
	}
	return nil
}

// skipTrailer reads the trailer section up to its empty line.
func (s *Stream) skipTrailer() error {
	for range 64 {
		line, err := s.readLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: too many trailer fields", ErrBrokenChunked)
}

// Take hands the stream to a caller that will End it: Close does nothing
// from now on. fasthttp closes a response's body stream whenever the
// response is reset or given another stream (SetBodyStream); a caller that
// wraps the stream in its own takes it first.
func (s *Stream) Take() *Stream {
	s.taken = true
	return s
}

// Close ends the stream unless it was taken (see Take and End). fasthttp
// calls it once the response has been written, or when it is reset.
func (s *Stream) Close() error {
	if s.taken {
		return nil
	}
	return s.End()
}

// End gives the upstream connection back: to the pool when the body was
// read to its end and nothing followed it, closed otherwise (a body the
// client stopped reading, a broken one, a backend that said close). It
// reports the error that ended the stream early, if any. Calling it again
// does nothing.
func (s *Stream) End() error {
	if s.closed {
		return nil
	}
	s.closed = true
	reuse := s.done && s.err == nil && s.reuse && s.br.Buffered() == 0
	if reuse {
		// The next request sets its own deadline; a pooled connection must
		// not carry this one's.
		reuse = s.conn.SetReadDeadline(time.Time{}) == nil
	}
	s.release(reuse)
	return s.err
}

// BackendErr returns what ended the stream early on the backend's side: a
// body shorter than its framing, a broken chunk, a stall past
// stream_timeout, more than max_response_body; nil when the body was whole
// or the copy failed on the other side (a client that went away), or when
// that cannot be told (a failed splice).
func (s *Stream) BackendErr() error { return s.backErr }

// Done reports whether the body was read to the end its framing gave.
func (s *Stream) Done() bool { return s.done && s.err == nil }

// BytesRead returns the number of body bytes read so far.
func (s *Stream) BytesRead() int64 { return s.read }

// streams reports whether the response whose head was just read has a body
// that Do leaves as a Stream: one of unknown length or larger than
// bufferResponse. A body with no payload (HEAD, 1xx, 204, 304) never does.
func streams(resp *fasthttp.Response, skipBody bool, bufferResponse int64) bool {
	if skipBody || noBody(resp.StatusCode()) {
		return false
	}
	cl := int64(resp.Header.ContentLength())
	return cl < 0 || cl > bufferResponse
}

// startStream leaves the body of resp unread, as a Stream in
// resp.BodyStream(), or refuses a body whose Content-Length is over max
// (and closes the connection).
func (t *transport) startStream(conn net.Conn, br *bufio.Reader, resp *fasthttp.Response, max int64, reuse bool,
	release func(reuse bool)) error {
	length := int64(resp.Header.ContentLength())
	if max > 0 && length > max {
		release(false)
		return fmt.Errorf("%w: Content-Length %d", ErrBodyTooLarge, length)
	}
	s := newStream(conn, br, length, max, t.streamTimeout, reuse, release)
	resp.SetBodyStream(s, int(s.Len()))
	return nil
}

// maxInterimResponses bounds the 1xx responses read before the final one,
// as fasthttp does.
const maxInterimResponses = 100

var errTooManyInterim = errors.New("backend sent too many interim (1xx) responses")

// readHead reads a response head from br, skipping interim 1xx responses
// other than 101: fasthttp's ReadLimitBody without the body.
func readHead(resp *fasthttp.Response, br *bufio.Reader) error {
	resp.ResetBody()
	if err := resp.Header.Read(br); err != nil {
		return err
	}
	for n := 0; ; n++ {
		st := resp.StatusCode()
		if st < 100 || st > 199 || st == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if n >= maxInterimResponses {
			return errTooManyInterim
		}
		if err := resp.Header.Read(br); err != nil {
			return err
		}
	}
}

// readBody reads the whole body after readHead, as ReadLimitBody would have.
func readBody(resp *fasthttp.Response, br *bufio.Reader, max int) error {
	if resp.SkipBody || noBody(resp.StatusCode()) {
		return nil
	}
	if err := resp.ReadBody(br, max); err != nil {
		return err
	}
	if resp.Header.ContentLength() == -1 {
		if err := resp.Header.ReadTrailer(br); err != nil {
			if err == io.EOF {
				return fmt.Errorf("%w: %w", ErrBrokenChunked, io.ErrUnexpectedEOF)
			}
			return err
		}
	}
	return nil
}

// noBody reports the statuses whose responses have no body (RFC 9112 §6.3).
func noBody(status int) bool {
	return status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified
}

// Abort closes the upstream connection at once, from any goroutine, so that
// a Read waiting on the backend returns: a shutdown that cannot wait any
// longer. The owner still calls End.
func (s *Stream) Abort() { _ = s.conn.Close() }

// spliceSlice is how much of a body one ReadFrom call in WriteTo may move:
// the read deadline (stream_timeout) and the writer's own deadline are
// renewed between slices, so a slice must fit in them at the slowest rate a
// client or backend is allowed.
const spliceSlice = 1 << 20

// WriteTo copies the rest of the body to w. For a body with a
// Content-Length, once the bytes already buffered are written, the rest is
// handed to w's ReadFrom straight from the upstream connection, a slice at a
// time: between two TCP sockets Go moves it with splice(2), never through
// user space. Other bodies, and writers without ReadFrom, are copied with
// Read. It returns the bytes written and what ended the copy early, if
// anything (a broken body is an error, as from Read).
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	rf, ok := w.(io.ReaderFrom)
	tcp := tcpConnOf(s.conn)
	if !ok || tcp == nil || s.mode != streamFixed {
		return s.copyTo(w)
	}
	var written int64
	if n := s.br.Buffered(); n > 0 && s.left > 0 && s.err == nil {
		b, _ := s.br.Peek(min(n, int(s.left)))
		wn, err := w.Write(b)
		_, _ = s.br.Discard(wn)
		s.left -= int64(wn)
		s.read += int64(wn)
		written += int64(wn)
		if err != nil {
			s.err = err
			return written, err
		}
	}
	for s.left > 0 && s.err == nil {
		s.lastReset = time.Time{} // each slice gets a whole stream_timeout
		s.extendDeadline()
		want := min(s.left, spliceSlice)
		n, err := rf.ReadFrom(&io.LimitedReader{R: tcp, N: want})
		s.left -= n
		s.read += n
		written += n
		switch {
		case err != nil:
			s.err = err
		case n < want: // the backend closed before the end
			s.err = fmt.Errorf("%w: %d bytes missing", ErrShortBody, s.left)
			s.backErr = s.err
		}
	}
	if s.err != nil {
		return written, s.err
	}
	s.done = true
	return written, nil
}

// copyTo is WriteTo through Read, with a buffer of its own.
func (s *Stream) copyTo(w io.Writer) (int64, error) {
	buf := make([]byte, 32<<10)
	var written int64
	for {
		n, err := s.Read(buf)
		if n > 0 {
			wn, werr := w.Write(buf[:n])
			written += int64(wn)
			if werr != nil {
				s.err = werr
				return written, werr
			}
		}
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, err
		}
	}
}

// tcpConnOf returns the TCP connection under an upstream connection, or
// nil.
func tcpConnOf(c net.Conn) *net.TCPConn {
	switch c := c.(type) {
	case *backendConn:
		return c.TCPConn
	case *net.TCPConn:
		return c
	}
	return nil
}
