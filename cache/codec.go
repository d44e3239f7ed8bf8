package cache

import (
	"encoding/binary"
	"errors"
	"time"
)

// The Redis value of an entry:
//
//	"SE" version:1 flags:1 total:4                 header, total = whole value length
//	status:2 requestTime:8 responseTime:8          times in Unix nanoseconds
//	initialAge:8 lifetime:8                        nanoseconds
//	key url vary tags                              each 4-byte length + bytes
//	fields:4 (nameLen:4 name valueLen:4 value)*
//	body                                           4-byte length + bytes
//
// Integers are big-endian. A value whose version differs, whose total does
// not match its length, or whose parts do not add up to it exactly is
// rejected (a miss, counted): never a panic, never a partial entry.
const (
	codecVersion = 1
	codecHeader  = 2 + 1 + 1 + 4
	codecFixed   = 2 + 8*4
	flagMarker   = 1
)

var errCorrupt = errors.New("cache: corrupt entry")

// appendEntry appends e's encoding to dst.
func appendEntry(dst []byte, e *Entry) []byte {
	start := len(dst)
	var flags byte
	if e.marker {
		flags |= flagMarker
	}
	dst = append(dst, 'S', 'E', codecVersion, flags, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(e.Status))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.RequestTime.UnixNano()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ResponseTime.UnixNano()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.initialAge))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.lifetime))
	dst = appendField(dst, e.Key)
	dst = appendField(dst, e.url)
	dst = appendField(dst, e.vary)
	dst = appendField(dst, e.tags)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Header)))
	for _, f := range e.Header {
		dst = appendField(dst, f.Name)
		dst = appendField(dst, f.Value)
	}
	dst = appendField(dst, e.Body)
	binary.BigEndian.PutUint32(dst[start+4:], uint32(len(dst)-start))
	return dst
}

// decodeEntry parses a value appendEntry made. The entry aliases b, which
// the caller must not reuse.
func decodeEntry(b []byte) (*Entry, error) {
	if len(b) < codecHeader+codecFixed || b[0] != 'S' || b[1] != 'E' || b[2] != codecVersion ||
		b[3]&^flagMarker != 0 || int(binary.BigEndian.Uint32(b[4:])) != len(b) {
		return nil, errCorrupt
	}
	flags := b[3]
	d := decoder{b: b, i: codecHeader}
	e := &Entry{marker: flags&flagMarker != 0}
	e.Status = int(d.number(2))
	e.RequestTime = time.Unix(0, int64(d.number(8)))
	e.ResponseTime = time.Unix(0, int64(d.number(8)))
	e.initialAge = time.Duration(d.number(8))
	e.lifetime = time.Duration(d.number(8))
	e.Key = d.bytes()
	e.url = d.bytes()
	e.vary = d.bytes()
	e.tags = d.bytes()
	n := d.number(4)
	// Each field takes at least 8 bytes: refuse counts the value cannot hold
	// before allocating for them.
	if d.bad || n*8 > uint64(len(b)-d.i) {
		return nil, errCorrupt
	}
	if n > 0 {
		e.Header = make([]Field, n)
		for i := range e.Header {
			e.Header[i] = Field{Name: d.bytes(), Value: d.bytes()}
		}
	}
	e.Body = d.bytes()
	if d.bad || d.i != len(b) || len(e.Key) == 0 || e.Status > 999 || e.lifetime < 0 || e.initialAge < 0 {
		return nil, errCorrupt
	}
	if len(e.Body) == 0 {
		e.Body = nil
	}
	e.derive(cap(b))
	if e.Status == 206 && (!e.part.OK || e.part.Len() != int64(len(e.Body))) {
		return nil, errCorrupt // a part that does not say which, or holds other bytes
	}
	return e, nil
}

// decoder reads big-endian integers and length-prefixed bytes; once a read
// runs past the end, bad is set and every later read returns zero.
type decoder struct {
	b   []byte
	i   int
	bad bool
}

// next returns the next n bytes, or nil once the value is too short.
func (d *decoder) next(n int) []byte {
	if d.bad || n < 0 || len(d.b)-d.i < n {
		d.bad = true
		return nil
	}
	v := d.b[d.i : d.i+n : d.i+n]
	d.i += n
	return v
}

// number reads an n-byte big-endian integer; zero once the value is too short.
func (d *decoder) number(n int) uint64 {
	var v uint64
	for _, c := range d.next(n) {
		v = v<<8 | uint64(c)
	}
	return v
}

func (d *decoder) bytes() []byte { return d.next(int(d.number(4))) }
