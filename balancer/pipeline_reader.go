package balancer

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// countingReader counts the bytes read from the connection: with the
// reader's buffered count it tells whether a response had begun. It keeps
// the first error too: a response read without error after one had a body
// delimited by the connection's end.
type countingReader struct {
	c   net.Conn
	n   int64
	err error
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.c.Read(b)
	r.n += int64(n)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// read is the reader goroutine: one response per request in sent, in
// order. Every way out goes through finalize.
func (c *pipeConn) read() {
	var (
		head      *pipeWork
		owned     bool  // head claimed: its caller waits for finish
		headBytes bool  // a byte of head's response arrived
		headErr   error // why head's exchange failed
		failNext  bool  // bytes after head's response belong to the next
		offReason error
		// lastWritten is how many requests were written when the last
		// response ended: a request among them was waiting behind it.
		lastWritten uint64
	)
	defer func() { c.finalize(head, owned, headBytes, headErr, failNext, offReason) }()
	for {
		// Under load the next request is usually written already: a
		// non-blocking receive is far cheaper than the two-way select.
		select {
		case head = <-c.sent:
		default:
			select {
			case head = <-c.sent:
			case <-c.stop:
				return
			}
		}
		c.busySince.Store(c.p.now())
		start := c.cr.n - int64(c.br.Buffered())
		resp, deadline, timeout := &c.scratch, head.deadline, head.timeout
		if owned = head.claim(); owned {
			resp = head.resp
		} else {
			// Its caller left at its deadline, but the response must still
			// be read for the connection to stay in step: it gets a whole
			// pool timeout more, like a request of its own.
			resp.Reset()
			resp.SkipBody = head.head
			deadline, timeout = time.Now().Add(c.p.timeout), c.p.timeout
		}
		// Coarse (conndeadline.go): up to a sixteenth of timeout early.
		_ = setResponseReadDeadline(c.conn, deadline, timeout)
		err := QuietResponseError(readResponse(resp, c.br, c.p.maxBody, nil))
		if err != nil && isTimeout(err) && c.cr.n == start && time.Now().Before(deadline) {
			// Early, before any byte of it: the request's own deadline,
			// exactly, is waited out on the same connection, rather than
			// the connection ended and the request replayed. The
			// timeout was no close: it must not make a later response
			// look delimited by one.
			c.cr.err = nil
			_ = c.conn.SetReadDeadline(deadline)
			err = QuietResponseError(readResponse(resp, c.br, c.p.maxBody, nil))
		}
		if err != nil {
			headBytes = c.cr.n > start
			headErr = err
			switch {
			case headBytes && !isTimeout(err) && !errors.Is(err, fasthttp.ErrBodyTooLarge):
				offReason = fmt.Errorf("%w: %w", errPipeFraming, err)
			case !headBytes && c.pipelined() && !isTimeout(err) && !c.stopping():
				offReason = errPipeClosed
			case !headBytes && isTimeout(err) && c.answered.Load() < lastWritten && !time.Now().Before(deadline):
				// The response before this one ended while this request
				// was already written, and its own deadline has passed
				// (not the read's coarse one: see above). One whose
				// Content-Length was too long by exactly this response
				// swallowed it, and was handed, whole, to the wrong
				// request; nothing but the silence since shows it. Or the
				// backend holds up its pipeline past the deadlines of the
				// requests queued behind a slow answer, where pipelining
				// costs more than it saves. Either way, pipelining to it
				// stops.
				offReason = errPipeStalled
			}
			return
		}
		answered := c.answered.Add(1)
		lastWritten = c.written.Load()
		if owned {
			resp.ParseNetConn(c.conn)
		}

		// Framing: a body that ran to the connection's end may hold the
		// responses to requests written after it; bytes already here after
		// this response must be the start of the next one, and there must
		// be a next one.
		closeDelimited := c.cr.err != nil
		if closeDelimited && c.written.Load() != answered {
			headErr, headBytes, failNext = errMisframed, true, true
			offReason = errPipeFraming
			return
		}
		if n := c.br.Buffered(); n > 0 {
			if c.written.Load() == answered {
				c.p.tr.strayBytes.Add(1)
				offReason = errPipeStray
			} else if !startsResponse(c.br, n) {
				headErr, headBytes, failNext = errMisframed, true, true
				offReason = errPipeFraming
				return
			}
		}
		final := closeDelimited || resp.StatusCode() < 200 || resp.ConnectionClose()
		if final && c.written.Load() != answered && answered < probation {
			offReason = errPipeClosed
		}
		if offReason != nil {
			c.p.turnOff(offReason) // before the verdict, as in finalize
		}
		c.settle(head, owned, nil)
		head = nil
		if offReason != nil || final {
			return
		}
		if c.written.Load() == answered {
			c.busySince.Store(0)
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
	}
}

// pipelined reports whether the connection carried requests that a
// backend closing it left unanswered, early in its life (see probation).
func (c *pipeConn) pipelined() bool {
	answered := c.answered.Load()
	return answered < probation && answered < c.written.Load()
}

// stopping reports whether shutdown was called: a read error is then ours.
func (c *pipeConn) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// startsResponse reports whether the n bytes buffered in br can begin a
// status line. A Content-Length that is too short leaves the rest of the
// body here; one that is too long has swallowed the next response's start.
// Either way what follows is not "HTTP/1.".
func startsResponse(br *bufio.Reader, n int) bool {
	const prefix = "HTTP/1."
	b, _ := br.Peek(min(n, len(prefix)))
	return string(b) == prefix[:len(b)]
}
