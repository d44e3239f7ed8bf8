package balancer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/valyala/fasthttp"
)

// streams reports whether the response whose head was just read from br
// has a body that Do leaves as a Stream: one of unknown length or larger
// than bufferResponse. A body with no payload (HEAD, 1xx, 204, 304) never
// does, and neither does a chunked body that has already arrived whole
// within bufferResponse: most small dynamic answers are chunked, and
// reading what is already buffered cannot wait on the backend, so they stay
// as fast and as cacheable as a small body with a length.
func streams(resp *fasthttp.Response, br *bufio.Reader, skipBody bool, bufferResponse int64) bool {
	if skipBody || noBody(resp.StatusCode()) {
		return false
	}
	cl := int64(resp.Header.ContentLength())
	if cl == -1 && chunkedBodyBuffered(br, bufferResponse) {
		return false
	}
	return cl < 0 || cl > bufferResponse
}

// chunkedBodyBuffered reports whether br already holds a whole chunked body
// (RFC 9112 §7.1) of at most limit bytes of framing and data, in the strict
// form fasthttp's reader takes (walkChunked). It only looks at what is
// buffered; anything else (an unfinished body, bare LFs, trailers, a
// malformed one) is false, and the body streams, where its framing is
// checked as it is read.
func chunkedBodyBuffered(br *bufio.Reader, limit int64) bool {
	n := br.Buffered()
	if n == 0 || int64(n) > limit {
		return false
	}
	b, _ := br.Peek(n)
	whole, _ := walkChunked(b)
	return whole
}

// startStream leaves the body of resp unread, as a Stream in
// resp.BodyStream(), or refuses (and closes the connection) a body whose
// Content-Length is over max or whose chunk framing, in the bytes already
// read, has gone wrong (walkChunked).
func (t *transport) startStream(conn net.Conn, br *bufio.Reader, resp *fasthttp.Response, max int64, reuse bool,
	release func(reuse bool)) error {
	length := int64(resp.Header.ContentLength())
	if max > 0 && length > max {
		release(false)
		return fmt.Errorf("%w: Content-Length %d", ErrBodyTooLarge, length)
	}
	if length == -1 {
		b, _ := br.Peek(br.Buffered())
		if _, err := walkChunked(b); err != nil {
			release(false)
			return err
		}
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
// other than 101 (handed to interim first, but 100): fasthttp's
// ReadLimitBody without the body. Every head is looked at first
// (checkHead), the interim ones too.
func readHead(resp *fasthttp.Response, br *bufio.Reader, interim Interim) error {
	resp.ResetBody()
	if err := checkHead(br); err != nil {
		return err
	}
	if err := resp.Header.Read(br); err != nil {
		if err == io.EOF { //nolint:errorlint // fasthttp's own sentinel
			// checkHead saw a byte arrive: not the keep-alive race that
			// io.EOF stands for (a pooled connection closed before any
			// byte), so the request is not sent again. (fasthttp says
			// io.EOF after, say, a flood of empty lines and a close.)
			return io.ErrUnexpectedEOF
		}
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
		if interim != nil && st != fasthttp.StatusContinue {
			interim(&resp.Header)
		}
		if err := checkHead(br); err != nil {
			if err == io.EOF { //nolint:errorlint // checkHead's own sentinel
				// Not the keep-alive race that io.EOF stands for (a
				// pooled connection closed before any byte): the backend
				// answered, then closed. Not resent as if unanswered.
				return io.ErrUnexpectedEOF
			}
			return err
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

var (
	errCodingBeforeHTTP11 = errors.New("response in a version other than HTTP/1.1 with Transfer-Encoding")
	errBadStatus          = errors.New("response status outside 100-599")
	errNotHTTP1           = errors.New("response in an HTTP version other than 1.x")
)

// ReadResponse reads a backend's response from br as the transport does:
// every head looked at first (a status outside 100-599, a version other
// than HTTP/1.x, HTTP/1.0 with Transfer-Encoding: errors), 1xx but 101
// skipped, the body whole up to max, and the error without the backend's
// bytes (QuietResponseError). It is for a caller that exchanges on a
// connection of its own, such as the gateway's upgrade handshake.
func ReadResponse(resp *fasthttp.Response, br *bufio.Reader, max int) error {
	return QuietResponseError(readResponse(resp, br, max, nil))
}

// readResponse is fasthttp's ReadLimitBody, with every head looked at
// first (readHead).
func readResponse(resp *fasthttp.Response, br *bufio.Reader, max int, interim Interim) error {
	if err := readHead(resp, br, interim); err != nil {
		return err
	}
	return readBody(resp, br, max)
}

// checkHead refuses, before fasthttp reads it, a response head waiting in
// br whose status is outside 100-599 (invalid, RFC 9110 §15: fasthttp
// reads 000 as 200 and passes 600-999 on), whose version is not HTTP/1.x
// (fasthttp reads HTTP/2.0 as HTTP/1.0), or whose version is not
// HTTP/1.1 and which has a Transfer-Encoding field: fasthttp drops the
// field from such a response and would read the chunk framing as the body
// (for HTTP/1.0 the framing is faulty, RFC 9112 §6.1, a MUST). It reads the
// status line as fasthttp does (empty lines before it skipped, spaces
// between version and status too), from bytes the read needs anyway;
// whatever else is wrong with a head is left to the read that follows.
func checkHead(br *bufio.Reader) error {
	if _, err := br.Peek(1); err != nil {
		// Peek consumed the error (bufio hands it out once): pass it on,
		// or the read that follows would try the connection again (after
		// a failed reuse check, wait for an answer to a request never
		// sent). As fasthttp's read would: a timeout, or else io.EOF for
		// any failure before the first byte, which the caller may retry
		// (a reset on a pooled connection the backend had just closed).
		if isTimeout(err) {
			return fasthttp.ErrTimeout
		}
		return io.EOF
	}
	line, start, ok := peekStatusLine(br)
	if !ok {
		return nil // cut short or too long: the read says so
	}
	version, rest, _ := bytes.Cut(line, []byte{' '})
	rest = bytes.TrimLeft(rest, " ")
	if len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ' && rest[3] != '\r') ||
		rest[0] < '1' || rest[0] > '5' || !isDigit(rest[1]) || !isDigit(rest[2]) {
		if len(version) > 0 && version[0] == 'H' {
			return errBadStatus
		}
		return nil // not a status line: the read says so
	}
	// version is a view into br's buffer, which the peekHead below may
	// move: what it says is read now.
	v11, v1 := string(version) == "HTTP/1.1", isHTTP1(version)
	buffered, _ := br.Peek(br.Buffered())
	bare, space, seen := headFaults(buffered[start:])
	if !seen && !bare && !space {
		// Its later lines have not come: read up to its end, and look
		// again (peekHead stops at either kind of blank line).
		if _, ok := peekHead(br, start); ok {
			buffered, _ = br.Peek(br.Buffered())
			bare, space, _ = headFaults(buffered[start:])
		}
	}
	switch {
	case bare:
		return errBareLFHead
	case space:
		return errSpaceBeforeColon
	case v11:
		return nil
	}
	if !v1 {
		// fasthttp reads any other version as HTTP/1.0 ("HTTP/2.0 200"
		// from a backend that speaks something else on this port).
		return errNotHTTP1
	}
	head, ok := peekHead(br, start)
	if !ok {
		return nil
	}
	for len(head) > 0 {
		l := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			l, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		name, _, ok := bytes.Cut(l, []byte{':'})
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("transfer-encoding")) {
			return errCodingBeforeHTTP11
		}
	}
	return nil
}

// peekStatusLine returns the first non-empty line waiting in br (without
// its line end) and where it starts; false when the connection ends first or
// the line fills the buffer.
func peekStatusLine(br *bufio.Reader) (line []byte, start int, ok bool) {
	b, ok := peekUntil(br, func(b []byte) int {
		for start = 0; start < len(b) && (b[start] == '\r' || b[start] == '\n'); start++ {
		}
		if i := bytes.IndexByte(b[start:], '\n'); i >= 0 {
			return start + i
		}
		return -1
	})
	if !ok {
		return nil, 0, false
	}
	return bytes.TrimSuffix(b[start:], []byte{'\r'}), start, true
}

// peekHead returns the head waiting in br from start up to its last field
// line's end; false when the connection ends first or it fills the buffer.
func peekHead(br *bufio.Reader, start int) ([]byte, bool) {
	b, ok := peekUntil(br, func(b []byte) int {
		if end := headEnd(b[start:]); end >= 0 {
			return start + end
		}
		return -1
	})
	return b[min(start, len(b)):], ok
}

// peekUntil peeks at more and more of what br receives until end finds
// where what the caller wants ends, and returns it up to there; false when
// the connection ends first or the buffer fills.
func peekUntil(br *bufio.Reader, end func(b []byte) int) ([]byte, bool) {
	for {
		b, _ := br.Peek(br.Buffered())
		if n := end(b); n >= 0 {
			return b[:n], true
		}
		if len(b) >= br.Size() {
			return nil, false
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil, false
		}
	}
}

// headEnd is the length of the response head at the start of b up to its
// last field line's end, or -1 when its empty line has not arrived.
func headEnd(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\n' && (b[i+1] == '\n' || b[i+1] == '\r' && i+2 < len(b) && b[i+2] == '\n') {
			return i + 1
		}
	}
	return -1
}

// errBareLFHead is checkHead's error for a head ended by a bare-LF blank
// line: fasthttp ends a head at one only if a CRLFCRLF follows somewhere in
// its buffer (perhaps in the body), and otherwise waits for one until the
// timeout. Either way the framing would be a guess: a 502 at once.
var errBareLFHead = fmt.Errorf("%w: head ended by a bare LF blank line", errMalformedResponse)

// errSpaceBeforeColon is checkHead's error for a field line with
// whitespace between its name and colon ("Transfer-Encoding : chunked").
// RFC 9112 §5.1 lets a proxy remove the whitespace and go on, which is
// what fasthttp does, framing the body by such a field; but a parser in
// front of the backend may not take it for the field it names, and then
// the two frame the connection differently. nginx and HAProxy answer 502.
var errSpaceBeforeColon = fmt.Errorf("%w: whitespace between a field name and its colon", errMalformedResponse)

// headFaults walks the head at the start of b (received bytes from its
// status line on) line by line, up to its blank line or as far as b goes,
// and reports:
//
//   - bare: its first blank line is not CRLF after CRLF ("\n\n", or "\n\r\n"
//     after a line ended by a bare LF; but a bare-LF status line followed
//     by a CRLF blank line is a head without fields, where fasthttp ends
//     it too): errBareLFHead;
//   - space: a field line has whitespace just before its first colon (a
//     name holds no colon; an obs-fold continuation is a value's, left to
//     the read): errSpaceBeforeColon;
//   - seen: nothing after what was walked matters: the blank line was in
//     b, or a line without a colon that fasthttp's read refuses at once
//     (the head's end is not waited for then).
//
// One pass, two byte searches a line, over bytes in cache: it runs on
// every response.
func headFaults(b []byte) (bare, space, seen bool) {
	lf := bytes.IndexByte(b, '\n')
	if lf < 0 {
		return false, false, false
	}
	crlf := lf > 0 && b[lf-1] == '\r' // the line before ended in CRLF
	for pos, first := lf+1, true; ; first = false {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			return false, space, false
		}
		line := b[pos : pos+i]
		pos += i + 1
		switch {
		case len(line) == 0:
			return true, space, true
		case len(line) == 1 && line[0] == '\r':
			return !crlf && !first, space, true
		}
		crlf = line[len(line)-1] == '\r'
		if line[0] != ' ' && line[0] != '\t' {
			c := bytes.IndexByte(line, ':')
			if c <= 0 {
				return false, space, true
			}
			if line[c-1] == ' ' || line[c-1] == '\t' {
				space = true
			}
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isHTTP1 reports whether version is HTTP/1.d, a version an HTTP/1.1
// client reads (RFC 9110 §2.5: a higher minor version is read as 1.1's
// highest it knows, which fasthttp takes for 1.0's framing, the safe side).
func isHTTP1(v []byte) bool {
	return len(v) == len("HTTP/1.1") && bytes.HasPrefix(v, []byte("HTTP/1.")) && isDigit(v[7])
}
