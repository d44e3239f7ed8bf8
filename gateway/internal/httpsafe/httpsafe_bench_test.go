package httpsafe

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func BenchmarkCheck(b *testing.B) {
	req := parseRequest(b, ordinaryRequestForBench)
	o := &Options{}
	b.ReportAllocs()
	for b.Loop() {
		if st, _ := Check(req, o); st != 0 {
			b.Fatal("refused")
		}
	}
}

func BenchmarkAppendAuthority(b *testing.B) {
	req := parseRequest(b, ordinaryRequestForBench)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, st := AppendAuthority(buf[:0], req); st != 0 {
			b.Fatal("refused")
		}
	}
}

func BenchmarkAppendPath(b *testing.B) {
	paths := []struct{ name, raw string }{
		{"short", "/api/v1/orders"},
		{"messy", "/api/v1/orders/%61bc/./items//7/../8"},
		{"long", "/" + strings.Repeat("segment/", 32) + "end"},
	}
	o := &Options{MergeSlashes: true}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			raw := []byte(p.raw)
			buf := make([]byte, 0, 512)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, st, _ := AppendPath(buf[:0], raw, o); st != 0 {
					b.Fatal("refused")
				}
			}
		})
	}
}

func BenchmarkStripRequestHopByHop(b *testing.B) {
	tmpl := parseRequest(b, ordinaryRequestForBench)
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	b.ReportAllocs()
	for b.Loop() {
		tmpl.Header.CopyTo(&h)
		StripRequestHopByHop(&h)
	}
}

func BenchmarkRequestHeaderCopyOnly(b *testing.B) {
	tmpl := parseRequest(b, ordinaryRequestForBench)
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	b.ReportAllocs()
	for b.Loop() {
		tmpl.Header.CopyTo(&h)
	}
}

func BenchmarkStripResponseHopByHop(b *testing.B) {
	resp := &fasthttp.Response{}
	resp.Header.DisableNormalizing()
	raw := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: max-age=60\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n{}"
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	var h fasthttp.ResponseHeader
	h.DisableNormalizing()
	b.ReportAllocs()
	for b.Loop() {
		resp.Header.CopyTo(&h)
		StripResponseHopByHop(&h)
	}
}

// ordinaryRequestForBench is browser-like: keep-alive, a handful of fields,
// a query. alloc_test.go uses it too.
const ordinaryRequestForBench = "GET /api/v1/orders/%61bc/./items//7?expand=lines HTTP/1.1\r\n" +
	"Host: API.Example.com:8443\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip, br\r\n" +
	"Accept-Language: en-GB,en;q=0.9\r\n" +
	"Cookie: session=abc; theme=dark\r\n" +
	"Connection: keep-alive\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"X-Custom: 1\r\n\r\n"

// BenchmarkStripWorstCase is the most a strip may remove within its bounds
// (31 options, each named field twice, in two spellings, and Connection),
// among 1,400 other fields: a 17.5 KiB head.
func BenchmarkStripWorstCase(b *testing.B) {
	head := connectionNaming(31, 2, 1400)
	b.Run("request", func(b *testing.B) {
		req := &fasthttp.Request{}
		req.Header.DisableNormalizing()
		raw := "GET / HTTP/1.1\r\nHost: a\r\n" + head
		if err := req.Header.Read(bufio.NewReaderSize(strings.NewReader(raw), len(raw)+16)); err != nil {
			b.Fatal(err)
		}
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		for b.Loop() {
			req.Header.CopyTo(&h)
			StripRequestHopByHop(&h)
		}
	})
	b.Run("response", func(b *testing.B) {
		resp := &fasthttp.Response{}
		resp.Header.DisableNormalizing()
		raw := "HTTP/1.1 200 OK\r\n" + head
		if err := resp.Header.Read(bufio.NewReaderSize(strings.NewReader(raw), len(raw)+16)); err != nil {
			b.Fatal(err)
		}
		var h fasthttp.ResponseHeader
		h.DisableNormalizing()
		for b.Loop() {
			resp.Header.CopyTo(&h)
			if err := StripResponseHopByHop(&h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLookAtHead is the look at the first read of an ordinary GET,
// made on every proxied request.
func BenchmarkLookAtHead(b *testing.B) {
	head := []byte("GET /api/orders/42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: wrk\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\nCache-Control: no-cache\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if look := LookAtHead(head); !look.Starts {
			b.Fatal("not a head")
		}
	}
}
