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

// ErrNotHTTP is what a connection's read returns in place of waiting for
// more bytes when they cannot begin a request (HeadLook.NotHTTP): a TLS
// handshake on the plain port, a NUL, a space: fasthttp would wait for a
// line end until read_timeout and then answer 408, for bytes it will
// refuse whatever follows. ErrorStatus makes it a 400.
var ErrNotHTTP = errors.New("request does not begin with a method")

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

// HeadLook is what LookAtHead finds in the first bytes read of a request
// head.
type HeadLook struct {
	// Starts: they begin with a request line.
	Starts bool
	// Bare: that head is one BareLFHead refuses.
	Bare bool
	// Next: whole heads are followed by one the connection refuses
	// (walkRequests): the error its read returns once their answers are
	// out (ErrBareLFHead, ErrBareCRHead, ErrNotHTTP); nil for none.
	Next error
	// TrailerLF is the index of a bare LF ending a line of a chunked body's
	// trailer section (ErrBareLFTrailer), or -1.
	TrailerLF int
	// Body is left watching when the bytes end inside a body: the reads
	// that follow bring the rest (ChunkWatch.Feed), and no head.
	Body ChunkWatch
	// Behind is how many requests begin in the bytes behind the first:
	// already buffered when the first is answered, so the reads that
	// follow those answers do not begin heads.
	Behind int
	// BareCR: a head whose lines end in bare CRs ("GET / HTTP/1.1\rHost:
	// a\r\r"), which fasthttp, looking for an LF, would wait on
	// (ErrBareCRHead).
	BareCR bool
	// NotHTTP: bytes that cannot begin a request (ErrNotHTTP).
	NotHTTP bool
	// Partial is the offset of a head the bytes end inside, which the
	// reads that follow go on with, or len of the bytes when they end
	// exactly where a request ends (the next read begins a head); -1
	// when the reads that follow do not begin or go on with a head (a
	// body, or framing the walk cannot follow). The caller keeps those
	// bytes and looks at them again with the rest (LookAtHead on the
	// whole), so that a head in pieces (written in two, in two TLS
	// records, behind another request) is looked at as one that came
	// whole, and where every head begins stays known.
	Partial int
}

// ErrBareCRHead is what a connection's read returns in place of waiting for
// more bytes when the request head it holds ends its lines in bare CRs
// (HeadLook.BareCR): fasthttp would wait for an LF until read_timeout.
// ErrorStatus makes it the 400 a bare CR gets anywhere else.
var ErrBareCRHead = errors.New("request head lines end in a bare CR")

// bareCRLines reports whether b, the first bytes read of a request that
// hold no LF, begin with a method and hold a CR followed by another byte:
// a bare CR, where a head needs CRLF.
func bareCRLines(b []byte) bool {
	if len(b) == 0 || !isTokenChar(b[0]) || bytes.IndexByte(b, '\n') >= 0 {
		return false
	}
	cr := bytes.IndexByte(b, '\r')
	return cr >= 0 && cr+1 < len(b)
}

// LookAtHead reads b, the first bytes read of a request head into an empty
// buffer, or a head kept from reads before (HeadLook.Partial) with the
// bytes read since, in one pass for what the connection needs to know
// (HeadLook). Empty lines before a request line are skipped, as fasthttp
// does (RFC 9112 §2.2). An ordinary request without a body costs a search
// for its line's end, one for CRLFCRLF and one per field line for a field
// that frames a body.
func LookAtHead(b []byte) HeadLook {
	look := HeadLook{TrailerLF: -1, Partial: -1}
	start := skipEmptyLines(b)
	h := b[start:]
	if cannotBeginRequest(h) {
		look.NotHTTP = true
		return look
	}
	lf := requestLineEnd(h)
	end := bytes.Index(h, crlfcrlf)
	switch {
	case lf < 0:
		look.BareCR = bareCRLines(h)
		if !look.BareCR && bytes.IndexByte(h, '\n') < 0 {
			look.Partial = start // the request line goes on in the reads that follow
		}
		return look
	case end < 0:
		look.Starts = true
		if look.Bare = bareBlankAfter(h[lf:]); !look.Bare {
			look.Partial = start
		}
		return look
	}
	look.Starts = true
	if end+len(crlfcrlf) == len(h) && !framesABody(h[:end]) {
		look.Partial = len(b) // a whole head and no body: the next head begins after it
		return look
	}
	// More than one head, or a body (a chunked one's trailer may hold a
	// bare LF, in this read or a later one; a body read later must not be
	// taken for a head, nor the head behind it missed): the walk.
	walkRequests(h, start, &look)
	return look
}

// skipEmptyLines is the length of the empty lines (CRLF or LF) b begins
// with, which fasthttp skips before a request line.
func skipEmptyLines(b []byte) int {
	i := 0
	for {
		switch {
		case i < len(b) && b[i] == '\n':
			i++
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			i += 2
		default:
			return i
		}
	}
}

// cannotBeginRequest reports whether b, past any empty lines, begins with
// a byte no request line can: a control byte, a space, or one outside
// ASCII (a TLS handshake on the plain port, a NUL). A method is a token
// (RFC 9110 §9.1). Only such bytes count, not every non-token byte, so
// that a look made at the wrong place (in a body) errs towards waiting.
func cannotBeginRequest(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	c := b[0]
	return c == ' ' || c >= 0x7f || c < 0x20 && c != '\r' && c != '\n'
}

// cutLine splits b at its first LF: the line before it (without the LF)
// and the rest after it; all of b and nil when it has none.
func cutLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// framesABody reports whether head (a request line and its fields) has a
// field that may frame a body: a Content-Length, or a Transfer-Encoding
// with "chunked" in it, names in any case. One search per line, and a look
// at the lines that begin with a C or a T.
func framesABody(head []byte) bool {
	for len(head) > 0 {
		var line []byte
		line, head = cutLine(head)
		switch {
		case len(line) < len("content-length:"):
		case line[0]|0x20 == 'c':
			if bytes.EqualFold(line[:len("content-length:")], []byte("content-length:")) {
				return true
			}
		case line[0]|0x20 == 't':
			if len(line) > len("transfer-encoding:") &&
				bytes.EqualFold(line[:len("transfer-encoding:")], []byte("transfer-encoding:")) && hasChunked(line) {
				return true
			}
		}
	}
	return false
}

// walkRequests walks the requests in b, which begins at offset at of the
// bytes read (past any empty lines), as fasthttp frames them: each head,
// then as many body bytes as its Content-Length says, or its chunked body
// (ChunkWatch), and records in look what it finds. A head it cannot frame
// (another transfer coding, a Content-Length that is not one number) ends
// the walk: the read that follows is then not known to start a head, and
// the connection waits as before. A body that goes past b is left to
// watch in the reads that follow (look.Body), a head that does is left to
// look at again with them (look.Partial).
func walkRequests(b []byte, at int, look *HeadLook) {
	for first := true; ; first = false {
		if !first {
			skip := skipEmptyLines(b)
			at, b = at+skip, b[skip:]
			if len(b) == 0 {
				look.Partial = at // the next head begins in the reads that follow
				return
			}
			look.Behind++
			if cannotBeginRequest(b) {
				look.Next = ErrNotHTTP
				return
			}
		}
		end := bytes.Index(b, crlfcrlf)
		if end < 0 {
			switch {
			case BareLFHead(b):
				look.Next = ErrBareLFHead
			case bareCRLines(b):
				look.Next = ErrBareCRHead
			case bytes.IndexByte(b, '\n') < 0 || requestLineEnd(b) >= 0:
				look.Partial = at // a head that goes on in the reads that follow
			}
			return
		}
		n, chunked, ok := bodyLength(b[:end])
		if !ok {
			return
		}
		at += end + len(crlfcrlf)
		b = b[end+len(crlfcrlf):]
		if chunked {
			look.Body.Start()
			m, lf := look.Body.Feed(b)
			switch {
			case lf >= 0:
				look.TrailerLF = at + lf
				return
			case m < 0:
				return // it goes on in the reads that follow, or is not watched
			}
			n = int64(m)
		}
		if n > int64(len(b)) {
			look.Body.StartFixed(n - int64(len(b)))
			return
		}
		at += int(n)
		b = b[n:]
	}
}

// hasChunked reports whether head holds "chunked" in any case, as a
// Transfer-Encoding value would: two searches for its k, and a look around
// each (a head holds few: keep-alive's).
func hasChunked(head []byte) bool {
	for _, k := range [2]byte{'k', 'K'} {
		for i := 0; ; i++ {
			j := bytes.IndexByte(head[i:], k)
			if j < 0 {
				break
			}
			i += j
			if i >= 4 && i+3 <= len(head) && bytes.EqualFold(head[i-4:i+3], []byte("chunked")) {
				return true
			}
		}
	}
	return false
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
		var line []byte
		line, head = cutLine(head)
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
	// ("get" is answered as any unknown method, and so is "_POST").
	if len(line) < len("A / HTTP/1.1") || !isTokenChar(line[0]) {
		return false
	}
	tail := line[len(line)-v:]
	return bytes.HasPrefix(tail, []byte(" HTTP/")) && isDigit(tail[6]) && tail[7] == '.' && isDigit(tail[8])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isTokenChar(c byte) bool { return tokenTable[c] != 0 }
