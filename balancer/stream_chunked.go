package balancer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

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
	line, err := s.readLineChecked(partialChunkSize)
	if err != nil {
		return 0, err
	}
	return parseChunkSize(line)
}

// partialChunkSize refuses the start of a chunk-size line that no bytes to
// come can make valid: a byte no size line holds, a size already too
// large, or a line end begun on an empty line.
func partialChunkSize(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] == '\r' { // the line end, begun
		b = b[:len(b)-1]
		if len(b) == 0 {
			return fmt.Errorf("%w: empty chunk size line", ErrBrokenChunked)
		}
	}
	_, err := parseChunkSize(b)
	return err
}

// walkChunked walks b, the start of a chunked body, as the stream's reader
// reads it, and reports:
//
//   - whole: b holds the whole body, up to the empty line after its last
//     chunk, in the strict form fasthttp's reader takes as well: CRLF line
//     ends, no whitespace in size lines, no trailer fields (such a body is
//     read at once rather than streamed: see streams);
//   - err: the framing error b already shows (the errors the stream's
//     reader would meet, in the same forms it takes), nil when it holds
//     none: a body whose framing has gone wrong in the bytes already here
//     is refused before its head goes to the client, rather than cut short
//     after it. Trailer fields are left to the reader.
func walkChunked(b []byte) (whole bool, err error) {
	strict := true
	for {
		line, rest, crlf, ok := cutLineLF(b)
		if !ok {
			return false, partialChunkSize(b)
		}
		size, err := parseChunkSize(line)
		if err != nil {
			return false, err
		}
		// Whitespace in a size line is left to the stream's reader, which
		// takes more forms of it than fasthttp's.
		strict = strict && crlf && !bytes.ContainsAny(line, " \t")
		if size == 0 {
			end, _, crlf, ok := cutLineLF(rest) // the empty line that ends the body
			return strict && ok && crlf && len(end) == 0, nil
		}
		if int64(len(rest)) < size {
			return false, nil
		}
		data := rest[size:] // what follows the chunk's data
		end, next, crlf, ok := cutLineLF(data)
		if !ok {
			return false, partialCRLF(data)
		}
		if len(end) != 0 {
			return false, fmt.Errorf("%w: chunk data longer than its size", ErrBrokenChunked)
		}
		strict = strict && crlf
		b = next
	}
}

// cutLineLF splits b after its first line, ended by CRLF or a bare LF as
// readLine takes it; the line is returned without its end, and crlf says
// which end it had.
func cutLineLF(b []byte) (line, rest []byte, crlf, ok bool) {
	line, rest, ok = bytes.Cut(b, []byte{'\n'})
	n := len(line)
	crlf = ok && n > 0 && line[n-1] == '\r'
	if crlf {
		line = line[:n-1]
	}
	return line, rest, crlf, ok
}

// partialCRLF refuses what follows chunk data unless it can be the CRLF
// (or bare LF) that must come next.
func partialCRLF(b []byte) error {
	if len(b) > 0 && b[0] != '\r' && b[0] != '\n' || len(b) > 1 && b[0] == '\r' && b[1] != '\n' {
		return fmt.Errorf("%w: chunk data longer than its size", ErrBrokenChunked)
	}
	return nil
}

// parseChunkSize reads a chunk-size line without its line end: hex digits,
// then optionally whitespace and extensions after ';' (RFC 9112 §7.1.1:
// chunk-size *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )),
// which are ignored but must hold no control character. Anything else
// after the digits ("5 5", "5 xyz") is malformed. An error quotes one byte
// at most: the line is the backend's, and errors reach the log.
func parseChunkSize(line []byte) (int64, error) {
	var size int64
	digits := 0
	for i, c := range line {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		case (c == ';' || c == ' ' || c == '\t') && digits > 0:
			return size, chunkExtensions(line[i:])
		default:
			return 0, fmt.Errorf("%w: byte %q in a chunk size line", ErrBrokenChunked, c)
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

// chunkExtensions checks what follows a chunk size: whitespace, then
// nothing or ";" and extensions without control characters.
func chunkExtensions(rest []byte) error {
	i := 0
	for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t') {
		i++
	}
	if i == len(rest) {
		return nil
	}
	if rest[i] != ';' {
		return fmt.Errorf("%w: byte %q after a chunk size", ErrBrokenChunked, rest[i])
	}
	for _, c := range rest[i:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("%w: control byte %q in a chunk extension", ErrBrokenChunked, c)
		}
	}
	return nil
}

// readLineChecked is readLine for a line whose beginning can already be
// wrong: while its end has not come, check looks at what has, and its
// error ends the read at once rather than when the line ends or the stream
// timeout passes (a backend that sends "hello" where a chunk size belongs,
// then nothing).
func (s *Stream) readLineChecked(check func(partial []byte) error) ([]byte, error) {
	for {
		b, _ := s.br.Peek(s.br.Buffered())
		if bytes.IndexByte(b, '\n') >= 0 || len(b) >= s.br.Size() {
			return s.readLine()
		}
		if err := check(b); err != nil {
			return nil, err
		}
		if _, err := s.br.Peek(len(b) + 1); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: %w", ErrShortBody, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
	}
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
	line, err := s.readLineChecked(partialCRLF)
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
