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

// ErrBareLFTrailer is what a connection's read returns when the request it
// holds ends its chunked body's trailer section with a bare LF
// (LookAtHead's trailerLF). fasthttp takes a bare LF there for a line end,
// so what follows would be read as the next request, where a peer that
// ends lines only at CRLF reads it as more trailer: two requests to one,
// the gap request smuggling lives in. ErrorStatus makes it a 400.
var ErrBareLFTrailer = errors.New("chunked request body's trailer section has a bare LF")

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
// next, whole heads are followed by one BareLFHeadAfter refuses;
// trailerLF, the index in b of a bare LF that ends a line of a chunked
// body's trailer section, or -1 (see ErrBareLFTrailer). An ordinary
// request costs a search for its line's end and one for CRLFCRLF.
func LookAtHead(b []byte) (starts, bare, next bool, trailerLF int) {
	lf := requestLineEnd(b)
	if lf < 0 {
		return false, false, false, -1
	}
	switch end := bytes.Index(b, crlfcrlf); {
	case end < 0:
		return true, bareBlankAfter(b[lf:]), false, -1
	case end+len(crlfcrlf) < len(b):
		// More than one head, or a body (a chunked one's trailer may
		// hold a bare LF): the walk.
		next, trailerLF = walkRequests(b)
		return true, false, next, trailerLF
	}
	return true, false, false, -1
}

// BareLFHeadAfter reports whether b, the first bytes read of a request that
// ended its head with CRLFCRLF, end with another request pipelined behind
// it (or behind several) whose head BareLFHead would refuse (walkRequests).
func BareLFHeadAfter(b []byte) bool {
	next, _ := walkRequests(b)
	return next
}

// walkRequests walks the requests in b, the first bytes read of a request,
// as fasthttp frames them: each head, then as many body bytes as its
// Content-Length says, or its chunked body. next reports that b ends with
// a head BareLFHead refuses; trailerLF is the index of a bare LF ending a
// line of a chunked body's trailer section, or -1. A head it cannot frame
// (another transfer coding, a Content-Length that is not one number) or a
// body that goes past b ends the walk: the read that follows is then not
// known to start a head, and the connection waits as before.
func walkRequests(b []byte) (next bool, trailerLF int) {
	at := 0 // b's offset in the read
	for {
		end := bytes.Index(b, crlfcrlf)
		if end < 0 {
			return BareLFHead(b), -1
		}
		n, chunked, ok := bodyLength(b[:end])
		if !ok {
			return false, -1
		}
		at += end + len(crlfcrlf)
		b = b[end+len(crlfcrlf):]
		if chunked {
			m, lf, ok := chunkedBody(b)
			if lf >= 0 {
				return false, at + lf
			}
			if !ok {
				return false, -1
			}
			n = int64(m)
		}
		if n > int64(len(b)) {
			return false, -1
		}
		at += int(n)
		if b = b[n:]; len(b) == 0 {
			return false, -1
		}
	}
}

// chunkedBody reads the chunked body at the start of b (RFC 9112 §7.1):
// chunk-size lines, their data and its CRLF, the last chunk, the trailer
// section. n is its length; ok is false when it goes past b or is not
// well-formed (fasthttp refuses what is not, a bare LF on a size line
// too). lf is the index of a bare LF ending a trailer line, which fasthttp
// takes, or -1.
func chunkedBody(b []byte) (n, lf int, ok bool) {
	for {
		eol := bytes.IndexByte(b[n:], '\n')
		if eol < 1 || b[n+eol-1] != '\r' {
			return 0, -1, false
		}
		size, sizeOK := chunkSize(b[n : n+eol-1])
		if !sizeOK {
			return 0, -1, false
		}
		n += eol + 1
		if size == 0 {
			break
		}
		if size > int64(len(b)-n-2) {
			return 0, -1, false
		}
		n += int(size)
		if b[n] != '\r' || b[n+1] != '\n' {
			return 0, -1, false
		}
		n += 2
	}
	for { // the trailer section, up to its empty line
		eol := bytes.IndexByte(b[n:], '\n')
		if eol < 0 {
			return 0, -1, false
		}
		if eol == 0 || b[n+eol-1] != '\r' {
			return 0, n + eol, false
		}
		n += eol + 1
		if eol == 1 {
			return n, -1, true
		}
	}
}

// chunkSize reads the hex size of a chunk-size line (without its CRLF),
// up to any extension.
func chunkSize(line []byte) (int64, bool) {
	var size int64
	for i, c := range line {
		switch {
		case isDigit(c):
			size = size<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			size = size<<4 | int64(c|0x20-'a'+10)
		case c == ';' || c == ' ' || c == '\t':
			return size, i > 0
		default:
			return 0, false
		}
		if i >= 15 {
			return 0, false // over 2^60: no body fasthttp takes
		}
	}
	return size, len(line) > 0
}

// bodyLength is the length of the body that follows head (a request line
// and its fields, without the blank line), as fasthttp reads it: its
// Content-Length, 0 without one, or chunked. ok is false for a body framed
// otherwise (another transfer coding, both), for more than one
// Content-Length, and for one that
// is not a number or is longer than maxLengthDigits digits after its
// leading zeros (far beyond any body fasthttp takes: the walk stops there,
// and the connection waits as it did before the walk).
func bodyLength(head []byte) (n int64, chunked, ok bool) {
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
			if chunked || !bytes.EqualFold(bytes.Trim(value, " \t"), []byte("chunked")) {
				return 0, false, false
			}
			chunked = true
		case bytes.EqualFold(name, []byte("content-length")):
			v := bytes.Trim(value, " \t")
			if seen || len(v) == 0 {
				return 0, false, false
			}
			v = bytes.TrimLeft(v, "0") // fasthttp takes any number of them
			if len(v) > maxLengthDigits {
				return 0, false, false
			}
			for _, c := range v {
				if !isDigit(c) {
					return 0, false, false
				}
				n = n*10 + int64(c-'0')
			}
			seen = true
		}
	}
	if chunked && seen {
		return 0, false, false // refused by the check: nothing to walk
	}
	return n, chunked, true
}

// isRequestLine reports whether line looks like "METHOD SP target SP
// HTTP/d.d", enough to tell a request head from other bytes.
func isRequestLine(line []byte) bool {
	const v = len(" HTTP/1.1")
	// A method is a token; upper case is the convention, not the rule
	// ("get" is answered as any unknown method).
	if len(line) < len("A / HTTP/1.1") {
		return false
	}
	if c := line[0] | 0x20; c < 'a' || c > 'z' {
		return false
	}
	tail := line[len(line)-v:]
	return bytes.HasPrefix(tail, []byte(" HTTP/")) && isDigit(tail[6]) && tail[7] == '.' && isDigit(tail[8])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
