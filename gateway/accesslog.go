package gateway

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// accessLog writes one JSON line per request without making the request wait
// for the disk: the handler encodes its line into a pooled buffer and hands it
// to a channel. One goroutine wakes every accessLogTick, writes whatever is
// queued through a bufio.Writer and flushes. It does not wait on the channel
// itself: a receiver blocked there would be woken by every line, a goroutine
// hand-off per request (measured: about 7µs of latency per request in
// BenchmarkHandleProxiedGET, against none this way). When the writer falls
// behind and the queue is full, lines are dropped and counted
// (sluice_access_log_dropped_total) rather than slowing requests down.
type accessLog struct {
	lines   chan *[]byte
	bufs    sync.Pool
	out     *bufio.Writer
	closer  io.Closer // the log file; nil for stdout, stderr and test writers
	dropped prometheus.Counter
	stop    chan struct{}
	done    chan struct{}

	closeOnce sync.Once
}

const (
	// accessLogQueue is how many lines may wait for the writer: with
	// accessLogTick, room for 400k requests/s.
	accessLogQueue = 8192
	// accessLogTick is how often queued lines are written: lines reach the
	// file at most this late.
	accessLogTick = 20 * time.Millisecond
)

func newAccessLog(w io.Writer, bufSize int, dropped prometheus.Counter) *accessLog {
	a := &accessLog{
		lines:   make(chan *[]byte, accessLogQueue),
		out:     bufio.NewWriterSize(w, bufSize),
		dropped: dropped,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if f, ok := w.(*os.File); ok && f != os.Stdout && f != os.Stderr {
		a.closer = f
	}
	a.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	go a.run()
	return a
}

func (a *accessLog) run() {
	defer close(a.done)
	tick := time.NewTicker(accessLogTick)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			a.drain()
		case <-a.stop:
			a.drain()
			return
		}
	}
}

// drain writes every queued line and flushes.
func (a *accessLog) drain() {
	for {
		select {
		case b := <-a.lines:
			_, _ = a.out.Write(*b)
			*b = (*b)[:0]
			a.bufs.Put(b)
		default:
			_ = a.out.Flush()
			return
		}
	}
}

// close writes out what is queued and closes the file. It is idempotent; a
// line logged after it waits in the queue (or is dropped) and never written.
func (a *accessLog) close() {
	a.closeOnce.Do(func() {
		close(a.stop)
		<-a.done
		if a.closer != nil {
			_ = a.closer.Close()
		}
	})
}

func (a *accessLog) log(rq *request, elapsed time.Duration) {
	ctx := rq.ctx
	bp := a.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = rq.start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, rq.id)
	b = append(b, `,"remote":"`...)
	b = clientPeer(ctx).AppendTo(b) // rq.peer is unset on refused requests
	b = append(b, `","method":`...)
	b = appendJSONString(b, ctx.Method())
	b = append(b, `,"host":`...)
	b = appendJSONString(b, ctx.Request.Header.Host())
	// uri: for a routed request the normalised path the router matched (the
	// query is left out: it often carries tokens); for a refused one the
	// target exactly as received, since that is what needs explaining.
	b = append(b, `,"uri":`...)
	if rq.route != nil {
		b = appendJSONString(b, rq.path)
	} else {
		b = appendJSONString(b, ctx.Request.Header.RequestURI())
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(ctx.Response.StatusCode()), 10)
	b = append(b, `,"bytes":`...)
	if rq.streamed {
		b = strconv.AppendInt(b, rq.sent, 10) // Body would read the stream
	} else {
		b = strconv.AppendInt(b, int64(len(ctx.Response.Body())), 10)
	}
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, elapsed.Microseconds(), 10)
	if rq.route != nil {
		b = append(b, `,"route":`...)
		b = appendJSONString(b, []byte(rq.route.name))
	}
	if rq.backend != nil {
		b = append(b, `,"backend":"`...)
		b = append(b, rq.backend.Addr()...)
		b = append(b, '"')
	}
	if rq.errKind != "" {
		b = append(b, `,"error":"`...)
		b = append(b, rq.errKind...)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	*bp = b
	select {
	case a.lines <- bp:
	default:
		a.dropped.Inc()
		*bp = b[:0]
		a.bufs.Put(bp)
	}
}

// appendJSONString appends s as a JSON string. Client-controlled bytes
// (URI, Host) go through here, so control characters, quotes and invalid
// UTF-8 are escaped and a log line cannot be forged.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
