package httpsafe

import (
	"bytes"
	"errors"
)

// ErrBareLFHead is what a connection's read returns in place of waiting for
// more bytes when the request head it holds ends in a blank line of bare LF
// (BareLFHead): fasthttp ends a head only at CRLFCRLF (a peer that knows no
// other end would frame the stream differently), so it would wait for one
// until read_timeout while the client waits for an answer. ErrorStatus
// makes it the 400 a bare LF in the head gets anywhere else.
var ErrBareLFHead = errors.New("request head ends in a bare LF blank line")

var crlfcrlf = []byte("\r\n\r\n")

// maxLengthDigits bounds the Content-Length the bare-LF walk reads: 15
// digits fit an int64 on every platform, so the walk never wraps.
const maxLengthDigits = 15

// BareLFHead reports whether b, the first bytes read of a request, are a
// request line and a header section ended by a blank line that fasthttp
// will never take for the end: "\n\n", or "\n\r\n" after a line ended by a
// bare LF, with no CRLFCRLF anywhere in b. It is false for anything that
// does not start with a request line (the start of a TLS record, a body),
// so a caller unsure where b starts errs towards waiting, as before.
func BareLFHead(b []byte) bool {
	lf := requestLineEnd(b)
	return lf >= 0 && !bytes.Contains(b, crlfcrlf) && bareBlankAfter(b[lf:])
}

// bareBlankAfter reports whether rest, a head from its request line's LF
// on, holds a blank line fasthttp will not end the head at.
func bareBlankAfter(rest []byte) bool {
	if bytes.HasPrefix(rest, []byte("\n\r\n")) {
		return false // no fields and a CRLF blank line: fasthttp takes it
	}
	// "\n\n" from the request line's LF: a bare request without fields.
	return bytes.Contains(rest, []byte("\n\n")) || bytes.Contains(rest, []byte("\n\r\n"))
}

// requestLineEnd is the index of the LF ending the request line ("METHOD SP
// target SP HTTP/d.d", ended by LF or CRLF) b starts with, or -1 when b
// does not start with a whole one: bytes read in the middle of a head or of
// a body.
func requestLineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	if lf < 0 || !isRequestLine(bytes.TrimSuffix(b[:lf], []byte("\r"))) {
		return -1
	}
	return lf
}

// LookAtHead reads b, the first bytes read of a request head into an empty
// buffer, in one pass for what the connection needs to know: starts, they
// begin with a request line; bare, that head is one BareLFHead refuses;
// next, whole heads are followed by one BareLFHeadAfter refuses. An
// ordinary request costs a search for its line's end and one for
// CRLFCRLF.
func LookAtHead(b []byte) (starts, bare, next bool) {
	lf := requestLineEnd(b)
	if lf < 0 {
		return false, false, false
	}
	switch end := bytes.Index(b, crlfcrlf); {
	case end < 0:
		return true, bareBlankAfter(b[lf:]), false
	case end+len(crlfcrlf) < len(b):
		// More than one head: a body, or requests pipelined behind this
		// one, the last of which may be bare.
		return true, false, BareLFHeadAfter(b)
	}
	return true, false, false
}

// BareLFHeadAfter reports whether b, the first bytes read of a request that
// ended its head with CRLFCRLF, end with another request pipelined behind
// it (or behind several) whose head BareLFHead would refuse. It walks the
// requests as fasthttp frames them: each head, then as many body bytes as
// its Content-Length says. A head it cannot frame so (Transfer-Encoding,
// a Content-Length that is not one number) or a body that goes past b
// ends the walk with false: the read that follows is then not known to
// start a head, and the connection waits as before.
func BareLFHeadAfter(b []byte) bool {
	for {
		end := bytes.Index(b, crlfcrlf)
		if end < 0 {
			return BareLFHead(b)
		}
		n, ok := bodyLength(b[:end])
		if !ok || n > int64(len(b)-end-len(crlfcrlf)) {
			return false
		}
		if b = b[end+len(crlfcrlf)+int(n):]; len(b) == 0 {
			return false
		}
	}
}

// bodyLength is the length of the body that follows head (a request line
// and its fields, without the blank line), as fasthttp reads it: its
// Content-Length, 0 without one. ok is false for a body framed otherwise
// (Transfer-Encoding), for more than one Content-Length, and for one that
// is not a number or is longer than maxLengthDigits digits after its
// leading zeros (far beyond any body fasthttp takes: the walk stops there,
// and the connection waits as it did before the walk).
func bodyLength(head []byte) (n int64, ok bool) {
	seen := false
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		name, value, found := bytes.Cut(bytes.TrimSuffix(line, []byte("\r")), []byte(":"))
		if !found {
			continue // the request line
		}
		switch {
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			return 0, false
		case bytes.EqualFold(name, []byte("content-length")):
			v := bytes.Trim(value, " \t")
			if seen || len(v) == 0 {
				return 0, false
			}
			v = bytes.TrimLeft(v, "0") // fasthttp takes any number of them
			if len(v) > maxLengthDigits {
				return 0, false
			}
			for _, c := range v {
				if !isDigit(c) {
					return 0, false
				}
				n = n*10 + int64(c-'0')
			}
			seen = true
		}
	}
	return n, true
}

// isRequestLine reports whether line looks like "METHOD SP target SP
// HTTP/d.d", enough to tell a request head from other bytes.
func isRequestLine(line []byte) bool {
	const v = len(" HTTP/1.1")
	if len(line) < len("A / HTTP/1.1") || line[0] < 'A' || line[0] > 'Z' {
		return false
	}
	tail := line[len(line)-v:]
	return bytes.HasPrefix(tail, []byte(" HTTP/")) && isDigit(tail[6]) && tail[7] == '.' && isDigit(tail[8])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
