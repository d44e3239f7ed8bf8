package balancer

import (
	"fmt"
	"io"
	"net"
	"time"
)

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
