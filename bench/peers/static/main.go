// Command static is the ceiling of bench/compare.sh's cache comparison: a
// fasthttp server that answers every request with the same bytes held in
// memory (what the origin's cacheable GET /orders/{id} answers: the same
// body, Content-Type and Cache-Control; fasthttp adds Date and
// Content-Length). No routing, no cache lookup, no headers to rewrite: a
// gateway answering from its cache cannot do less work per request on this
// stack, so its requests per second are the number a cache hit is held to.
//
//	static -listen 127.0.0.1:18110 -body-file body.json
//	static -listen 127.0.0.1:18110 -size 300
//
// compare.sh builds it with `go build`, runs it with GOMAXPROCS=1 pinned on
// the core of the system under test, and stops it with SIGTERM.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9002", "address to listen on")
	bodyFile := flag.String("body-file", "", "file whose bytes are the response body (wins over -size)")
	size := flag.Int("size", 300, "body size in bytes when no -body-file is given")
	contentType := flag.String("content-type", "application/json", "Content-Type of the response")
	cacheControl := flag.String("cache-control", "public, max-age=3600", "Cache-Control of the response (empty: none)")
	flag.Parse()

	body, err := loadBody(*bodyFile, *size)
	if err != nil {
		log.Fatalf("static: %v", err)
	}
	ln, err := net.Listen("tcp4", *listen)
	if err != nil {
		log.Fatalf("static: %v", err)
	}
	ct := []byte(*contentType)
	ccName, cc := []byte(fasthttp.HeaderCacheControl), []byte(*cacheControl)
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.SetContentTypeBytes(ct)
			if len(cc) > 0 {
				ctx.Response.Header.SetCanonical(ccName, cc)
			}
			ctx.Response.SetBodyRaw(body) // no copy: the bytes are never changed
		},
		NoDefaultServerHeader: true,
		ReduceMemoryUsage:     false,
		Logger:                quietLogger{},
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		_ = srv.Shutdown()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
		log.Fatalf("static: %v", err)
	}
}

// loadBody returns the bytes of path, or size bytes of a JSON object padded
// with 'x' when path is empty.
func loadBody(path string, size int) ([]byte, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	if size < 0 {
		return nil, fmt.Errorf("-size %d: want >= 0", size)
	}
	const head, tail = `{"padding":"`, `"}`
	if size < len(head)+len(tail) {
		return bytes.Repeat([]byte{'x'}, size), nil
	}
	b := make([]byte, 0, size)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte{'x'}, size-len(head)-len(tail))...)
	b = append(b, tail...)
	return b, nil
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
