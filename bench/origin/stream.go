package origin

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Large and long-lived answers, for streaming through the gateway:
//
//	GET /download?size=50MiB[&chunked=1][&piece=64KiB&interval=10ms]
//	GET /events?n=10&interval=100ms
//
// /download sends size bytes of a fixed pattern, with a Content-Length (or
// chunked with chunked=1), from one shared block: no allocation of the body
// per request, so the origin can serve many large downloads at once. With
// interval it is a slow producer: piece bytes, then a pause. /events is a
// server-sent event stream: n events, one every interval, each flushed as
// it is produced and stamped with the time it was sent (sent_ns, Unix
// nanoseconds) so a client can measure what the path added.

// maxDownload bounds /download's size.
const maxDownload = 64 << 30

// patternBlock is the bytes /download repeats: printable, so a truncated
// or shifted body shows in a diff.
var patternBlock = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = "0123456789abcdef"[i%16]
	}
	for i := 63; i < len(b); i += 64 {
		b[i] = '\n'
	}
	return b
}()

// PatternAt returns the byte /download sends at offset i, for tests that
// check a body.
func PatternAt(i int64) byte { return patternBlock[i%int64(len(patternBlock))] }

// serveDownload answers GET /download.
func (o *Server) serveDownload(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	size, err := parseByteSize(string(args.Peek("size")), 1<<20)
	if err != nil || size > maxDownload {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid_size", "size must be a byte count up to 64GiB, such as 50MiB")
		return
	}
	piece, err := parseByteSize(string(args.Peek("piece")), int64(len(patternBlock)))
	if err != nil || piece <= 0 || piece > int64(len(patternBlock)) {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid_piece", "piece must be from 1 byte to 64KiB")
		return
	}
	interval, err := parseInterval(args.Peek("interval"))
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid_interval", "interval must be a duration such as 10ms")
		return
	}
	ctx.SetContentType("application/octet-stream")
	length := int(size)
	if args.Has("chunked") && string(args.Peek("chunked")) != "0" {
		length = -1
	}
	if ctx.IsHead() {
		ctx.Response.Header.SetContentLength(int(size))
		return
	}
	ctx.SetBodyStream(&download{left: size, piece: piece, interval: interval, done: o.done}, length)
}

// download is /download's body: the pattern, size bytes of it.
type download struct {
	left, sent int64
	piece      int64
	interval   time.Duration
	done       <-chan struct{}
}

func (d *download) Read(p []byte) (int, error) {
	if d.left == 0 {
		return 0, io.EOF
	}
	if d.interval > 0 && d.sent > 0 {
		t := time.NewTimer(d.interval)
		select {
		case <-t.C:
		case <-d.done:
			t.Stop()
			return 0, errors.New("origin closing")
		}
	}
	off := d.sent % int64(len(patternBlock))
	n := min(int64(len(p)), d.left, d.piece, int64(len(patternBlock))-off)
	copy(p, patternBlock[off:off+n])
	d.left -= n
	d.sent += n
	return int(n), nil
}

// WriteTo writes whole blocks straight from the shared pattern: one write
// per 64 KiB, no copy. A paced download goes through Read.
func (d *download) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if d.interval > 0 {
		buf := make([]byte, d.piece)
		for {
			n, err := d.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return total, werr
				}
				total += int64(n)
				if f, ok := w.(interface{ Flush() error }); ok {
					if err := f.Flush(); err != nil {
						return total, err
					}
				}
			}
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
		}
	}
	for d.left > 0 {
		off := d.sent % int64(len(patternBlock))
		n := min(d.left, int64(len(patternBlock))-off)
		wn, err := w.Write(patternBlock[off : off+n])
		d.left -= int64(wn)
		d.sent += int64(wn)
		total += int64(wn)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// SupportsBodyWriteTo lets fasthttp use WriteTo for chunked framing too.
func (d *download) SupportsBodyWriteTo() bool { return d.interval == 0 }

// serveEvents answers GET /events with a text/event-stream.
func (o *Server) serveEvents(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	n := 10
	if v := args.Peek("n"); len(v) > 0 {
		var err error
		if n, err = strconv.Atoi(string(v)); err != nil || n < 0 || n > 1_000_000 {
			writeError(ctx, fasthttp.StatusBadRequest, "invalid_n", "n must be a count of events from 0 to 1000000")
			return
		}
	}
	interval, err := parseInterval(args.Peek("interval"))
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid_interval", "interval must be a duration such as 100ms")
		return
	}
	if len(args.Peek("interval")) == 0 {
		interval = 100 * time.Millisecond
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	done := o.done
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		var line []byte
		for i := 1; i <= n; i++ {
			if i > 1 {
				t := time.NewTimer(interval)
				select {
				case <-t.C:
				case <-done:
					t.Stop()
					return
				}
			}
			line = append(line[:0], "id: "...)
			line = strconv.AppendInt(line, int64(i), 10)
			line = append(line, "\nevent: tick\ndata: {\"seq\":"...)
			line = strconv.AppendInt(line, int64(i), 10)
			line = append(line, ",\"sent_ns\":"...)
			line = strconv.AppendInt(line, time.Now().UnixNano(), 10)
			line = append(line, "}\n\n"...)
			if _, err := w.Write(line); err != nil {
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
		}
	})
}

// parseInterval reads a duration query value; empty is 0.
func parseInterval(v []byte) (time.Duration, error) {
	if len(v) == 0 {
		return 0, nil
	}
	d, err := time.ParseDuration(string(v))
	if err != nil || d < 0 || d > time.Hour {
		return 0, errors.New("invalid interval")
	}
	return d, nil
}

// parseByteSize reads "50MiB", "64KiB", "1GiB", "10MB" or a plain count;
// empty is def.
func parseByteSize(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > maxDownload/mult {
		return 0, errors.New("invalid size")
	}
	return n * mult, nil
}
