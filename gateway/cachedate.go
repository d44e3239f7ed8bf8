package gateway

import (
	"bufio"
	"bytes"
	"reflect"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// A response answered from storage must carry the Date it was generated
// with: Date is the origination time (RFC 9110 §6.6.1), and a downstream
// cache computes the response's age and, with Expires, its lifetime from it
// together with the Age the gateway sends (RFC 9111 §4.2). Stamping the time
// of sending instead makes a stored response look younger than it is.
//
// fasthttp writes the time of sending as Date on every response, drops a
// Date set through its header API ("managed automatically"), and its only
// switch, Server.NoDefaultDate, is for every response of a server. Two
// things keep a stored Date on one response: the field must be in the
// header's own list, which only parsing puts it in (a proxied response's
// Date gets there the same way), and the header's noDefaultDate flag must
// be set, which has no setter. keepStoredDate parses the one field into the
// header and sets the flag through its offset, found by reflection once.
// Were a fasthttp upgrade to rename or retype the field, it falls back to
// fasthttp's own Date (TestCacheHitKeepsTheStoredDate fails, to say so).

// noDefaultDate is the offset of fasthttp.ResponseHeader's noDefaultDate
// field; ok is false when there is no such bool field.
var noDefaultDate = func() (d struct {
	offset uintptr
	ok     bool
}) {
	f, ok := reflect.TypeOf(fasthttp.ResponseHeader{}).FieldByName("noDefaultDate")
	if ok && len(f.Index) == 1 && f.Type.Kind() == reflect.Bool {
		d.offset, d.ok = f.Offset, true
	}
	return d
}()

// dateParser is the reusable state of keepStoredDate: the header block it
// parses and the readers over it.
type dateParser struct {
	block []byte
	src   bytes.Reader
	br    *bufio.Reader
}

// keepStoredDate makes h, freshly reset, carry date as its Date instead of
// the time of sending. It reports false, leaving h empty (and fasthttp's
// Date on), when it cannot. Call it before anything else is set on h:
// parsing replaces the header, though not its DisableNormalizing setting.
func (st *cacheStore) keepStoredDate(h *fasthttp.ResponseHeader, date []byte) bool {
	if !noDefaultDate.ok || !plainFieldValue(date) {
		return false
	}
	p, _ := st.dates.Get().(*dateParser)
	if p == nil {
		p = &dateParser{}
		p.br = bufio.NewReaderSize(&p.src, 256)
	}
	p.block = append(p.block[:0], "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: "...)
	p.block = append(append(p.block, date...), "\r\n\r\n"...)
	p.src.Reset(p.block)
	p.br.Reset(&p.src)
	err := h.Read(p.br)
	st.dates.Put(p)
	if err != nil {
		return false // Read left h empty again, its flags as they were
	}
	// Back to a reset header's status line: the caller sets the status.
	h.SetProtocol(nil)
	h.SetStatusMessage(nil)
	*(*bool)(unsafe.Add(unsafe.Pointer(h), noDefaultDate.offset)) = true
	return true
}

// plainFieldValue reports a non-empty field value without control bytes: the
// only kind keepStoredDate writes into the block it parses, so that a
// damaged stored value (an entry read back from Redis) can never add a line.
func plainFieldValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return len(v) > 0
}
