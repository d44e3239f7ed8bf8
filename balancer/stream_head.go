package balancer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/valyala/fasthttp"
)

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
