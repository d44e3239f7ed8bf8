package balancer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
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

// Abort closes the upstream connection at once, from any goroutine, so that
// a Read waiting on the backend returns: a shutdown that cannot wait any
// longer. The owner still calls End.
func (s *Stream) Abort() { _ = s.conn.Close() }
