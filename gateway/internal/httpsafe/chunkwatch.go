package httpsafe

// ChunkWatch follows a request body through the reads that bring it: one of
// a known length by count, so that no read of it is taken for a head, and
// a chunked one for a bare LF in its trailer section (ErrBareLFTrailer): fasthttp
// takes one for a line end and reads what follows as another request,
// where a peer that ends lines only at CRLF reads it as more trailer. It
// reads only the framing (size lines, the CRLF after each chunk's data, the
// trailer lines) and skips the data by count. Anything it does not expect
// ends the watch without a verdict: fasthttp refuses the malformed framing
// itself (a bare LF on a size line, a missing CRLF), and where the two
// might read a body differently the watch stays silent rather than refuse
// a request fasthttp takes. The zero value watches nothing.
type ChunkWatch struct {
	state  watchState
	left   int64 // data bytes left in the current chunk
	size   int64 // the size line read so far
	digits int
	ext    bool // past the size, in an extension
	cr     bool // the byte before was a CR
	line   int  // bytes of the current trailer line
}

type watchState uint8

const (
	watchOff     watchState = iota
	watchFixed              // a body of a known length: left bytes to come
	watchSize               // a chunk-size line
	watchData               // a chunk's data
	watchDataCR             // the CR after the data
	watchDataLF             // the LF after it
	watchTrailer            // the trailer section, up to its empty line
)

// Start begins watching a chunked body from its first byte.
func (w *ChunkWatch) Start() { *w = ChunkWatch{state: watchSize} }

// StartFixed begins counting the n bytes left of a body with a
// Content-Length: the reads that bring them are body, not heads.
func (w *ChunkWatch) StartFixed(n int64) {
	*w = ChunkWatch{}
	if n > 0 {
		w.state, w.left = watchFixed, n
	}
}

// Stop ends the watch.
func (w *ChunkWatch) Stop() { w.state = watchOff }

// Active reports whether the body being watched has not ended yet.
func (w *ChunkWatch) Active() bool { return w.state != watchOff }

// Feed reads b, the next bytes of the body. end is the index in b just past
// the body's end (its trailer section's empty line), or -1 when it goes on
// or the watch stopped; lf is the index of a bare LF ending a trailer line,
// or -1. Either ends the watch.
func (w *ChunkWatch) Feed(b []byte) (end, lf int) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch w.state {
		case watchOff:
			return -1, -1
		case watchFixed:
			skip := min(w.left, int64(len(b)-i))
			if w.left -= skip; w.left == 0 {
				w.state = watchOff
				return i + int(skip), -1
			}
			return -1, -1
		case watchData:
			skip := min(w.left, int64(len(b)-i))
			w.left -= skip
			i += int(skip) - 1
			if w.left == 0 {
				w.state = watchDataCR
			}
		case watchDataCR:
			w.expect(c == '\r', watchDataLF)
		case watchDataLF:
			w.expect(c == '\n', watchSize)
		case watchSize:
			w.sizeByte(c)
		case watchTrailer:
			switch {
			case c == '\n' && !w.cr:
				w.state = watchOff
				return -1, i
			case c == '\n' && w.line == 0:
				w.state = watchOff
				return i + 1, -1
			case c == '\n':
				w.line, w.cr = 0, false
			case c == '\r':
				w.cr = true
			default:
				w.line++
				w.cr = false
			}
		}
	}
	return -1, -1
}

// expect moves to next when ok, and stops the watch otherwise.
func (w *ChunkWatch) expect(ok bool, next watchState) {
	if !ok {
		w.state = watchOff
		return
	}
	w.state = next
}

// sizeByte reads one byte of a chunk-size line.
func (w *ChunkWatch) sizeByte(c byte) {
	switch {
	case c == '\n':
		if !w.cr || w.digits == 0 {
			w.state = watchOff // fasthttp refuses it
			return
		}
		if w.size == 0 {
			w.state, w.cr, w.line = watchTrailer, false, 0
		} else {
			w.state, w.left = watchData, w.size
		}
		w.size, w.digits, w.ext, w.cr = 0, 0, false, false
	case c == '\r':
		w.cr = true
	case w.cr:
		w.state = watchOff // a bare CR
	case w.ext:
		// an extension's bytes: fasthttp checks them
	case c == ';' || c == ' ' || c == '\t':
		w.ext = true
	default:
		v, ok := hexValue(c)
		if !ok || w.digits == 15 { // over 2^60: no body fasthttp takes
			w.state = watchOff
			return
		}
		w.size = w.size<<4 | int64(v)
		w.digits++
	}
}

func hexValue(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return c | 0x20 - 'a' + 10, true
	}
	return 0, false
}
