package origin

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Fault is a misbehaviour the origin injects into its answers. The zero value,
// FaultNone, is a well-behaved origin. Faults apply to /orders and /echo
// requests, except FaultHealthFail, which only affects /healthz, so a test can
// make the gateway's health checker and its proxy path disagree on purpose.
//
// Fault implements flag.Value, so a flag.FlagSet can parse it directly.
type Fault string

// The fault modes. The raw-wire ones (hang, slow_body, close_mid_body,
// garbage, extra_bytes, extra_bytes_late) take the connection over from
// fasthttp and write bytes to it themselves, because a correct HTTP server
// cannot be made to produce them.
const (
	// FaultNone answers normally.
	FaultNone Fault = ""
	// FaultHang reads the request and never answers. The connection stays
	// open until the client closes it or the origin is closed.
	FaultHang Fault = "hang"
	// FaultSlowBody sends the status line and headers with Content-Length
	// at once, then the body one byte per Options.SlowBodyInterval,
	// then closes the connection ("Connection: close" is announced).
	FaultSlowBody Fault = "slow_body"
	// FaultCloseMidBody sends headers announcing Content-Length N, about half
	// of the body, and closes the connection.
	FaultCloseMidBody Fault = "close_mid_body"
	// FaultGarbage writes bytes that are not HTTP ("garbage\r\n\r\n") and
	// closes the connection.
	FaultGarbage Fault = "garbage"
	// FaultExtraBytes sends a complete, valid response followed in the same
	// write by bytes that look like a second response (FaultExtraResponse),
	// and keeps the connection open. A client that reuses the connection
	// without noticing reads the extra bytes as the answer to its next
	// request (response mixing, RFC 9112 section 9.3).
	FaultExtraBytes Fault = "extra_bytes"
	// FaultExtraBytesLate is FaultExtraBytes with the extra bytes sent about
	// 20ms after the valid response, in a separate write, while the
	// connection sits idle in the client's pool.
	FaultExtraBytesLate Fault = "extra_bytes_late"
	// Fault5xx answers 500, 502 and 503 in turn, with a JSON body.
	Fault5xx Fault = "5xx"
	// FaultHealthFail makes GET /healthz answer 503. Other paths are unaffected.
	FaultHealthFail Fault = "health_fail"
)

// FaultExtraResponse is what FaultExtraBytes and FaultExtraBytesLate append
// after the valid response.
const FaultExtraResponse = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"

// faultGarbage is what FaultGarbage writes instead of a response.
const faultGarbage = "garbage\r\n\r\n"

// faultExtraDelay is how long FaultExtraBytesLate waits before the extra bytes:
// long enough for the client to have read the valid response and put the
// connection back in its pool, short enough for a test.
const faultExtraDelay = 20 * time.Millisecond

// faultModeNames lists every mode for error and help messages.
const faultModeNames = "none, hang, slow_body, close_mid_body, garbage, extra_bytes, extra_bytes_late, 5xx, health_fail"

// Valid reports whether f is one of the defined fault modes.
func (f Fault) Valid() bool {
	switch f {
	case FaultNone, FaultHang, FaultSlowBody, FaultCloseMidBody, FaultGarbage,
		FaultExtraBytes, FaultExtraBytesLate, Fault5xx, FaultHealthFail:
		return true
	}
	return false
}

// String returns the mode's name, "none" for FaultNone.
func (f Fault) String() string {
	if f == FaultNone {
		return "none"
	}
	return string(f)
}

// Set parses a mode name; "" and "none" mean FaultNone. It implements
// flag.Value.
func (f *Fault) Set(s string) error {
	v := Fault(strings.TrimSpace(s))
	if v == "none" {
		v = FaultNone
	}
	if !v.Valid() {
		return fmt.Errorf("unknown fault mode %q (want one of %s)", s, faultModeNames)
	}
	*f = v
	return nil
}

// rawWire reports whether f needs the connection taken over from fasthttp.
func (f Fault) rawWire() bool {
	switch f {
	case FaultHang, FaultSlowBody, FaultCloseMidBody, FaultGarbage, FaultExtraBytes, FaultExtraBytesLate:
		return true
	}
	return false
}

// hijack takes the connection over from fasthttp for a raw-wire fault.
// The normal response is already in ctx.Response; it is serialised here,
// while ctx is still valid, and delivered (or not) the faulty way by a
// goroutine that fasthttp starts after the handler returns. fasthttp closes
// the connection when that goroutine returns.
func (o *Server) hijack(ctx *fasthttp.RequestCtx, f Fault) {
	var wire []byte
	if f != FaultHang && f != FaultGarbage {
		if f == FaultSlowBody {
			// The connection is closed after the slow body, so say so.
			ctx.Response.SetConnectionClose()
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := ctx.Response.Write(w); err == nil && w.Flush() == nil {
			wire = buf.Bytes()
		}
	}
	bodyLen := len(ctx.Response.Body())
	if ctx.Response.SkipBody {
		bodyLen = 0 // HEAD: the serialised response has no body
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		raw := c
		if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
			raw = u.UnsafeConn()
		}
		// The connection stays tracked until the fault is done with it, so
		// Close can wait for this goroutine.
		defer o.conns.remove(raw)
		o.faultServe(c, f, wire, bodyLen)
	})
}

// faultServe writes the faulty answer for f on c. wire is the serialised
// valid response, whose last bodyLen bytes are the body.
func (o *Server) faultServe(c net.Conn, f Fault, wire []byte, bodyLen int) {
	switch f {
	case FaultHang:
		o.faultHold(c)
	case FaultGarbage:
		_, _ = io.WriteString(c, faultGarbage)
	case FaultCloseMidBody:
		head := len(wire) - bodyLen
		_, _ = c.Write(wire[:head+bodyLen/2])
	case FaultSlowBody:
		head := len(wire) - bodyLen
		if _, err := c.Write(wire[:head]); err != nil {
			return
		}
		t := time.NewTicker(o.opts.SlowBodyInterval)
		defer t.Stop()
		for i := head; i < len(wire); i++ {
			select {
			case <-o.done:
				return
			case <-t.C:
			}
			if _, err := c.Write(wire[i : i+1]); err != nil {
				return
			}
		}
	case FaultExtraBytes:
		if _, err := c.Write(append(wire, FaultExtraResponse...)); err != nil {
			return
		}
		o.faultHold(c)
	case FaultExtraBytesLate:
		if _, err := c.Write(wire); err != nil {
			return
		}
		t := time.NewTimer(faultExtraDelay)
		select {
		case <-o.done:
			t.Stop()
			return
		case <-t.C:
		}
		if _, err := io.WriteString(c, FaultExtraResponse); err != nil {
			return
		}
		o.faultHold(c)
	}
}

// faultHold keeps c open without answering anything more, reading and
// discarding what the client sends, until the client closes it or Close
// closes it. Reading (rather than waiting on o.done alone) lets the goroutine
// end as soon as the client gives up, so a long test that times out many
// hung requests does not pile them up.
func (o *Server) faultHold(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
}
