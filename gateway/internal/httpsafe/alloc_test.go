//go:build !race

package httpsafe

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

const ordinaryResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json\r\n" +
	"Cache-Control: max-age=60\r\n" +
	"Connection: keep-alive\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"Content-Length: 2\r\n\r\n{}"

func TestHotPathAllocatesNothing(t *testing.T) {
	req := parseRequest(t, ordinaryRequestForBench)
	o := &Options{MergeSlashes: true}
	buf := make([]byte, 0, 512)
	run := func() {
		if st, why := Check(req, o); st != 0 {
			t.Fatalf("Check refused an ordinary request: %d %s", st, why)
		}
		host, st := AppendAuthority(buf[:0], req)
		if st != 0 {
			t.Fatal("AppendAuthority refused an ordinary request")
		}
		raw, _ := SplitRequestURI(req.Header.RequestURI())
		if _, st, _ := AppendPath(host, raw, o); st != 0 {
			t.Fatal("AppendPath refused an ordinary request")
		}
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Fatalf("Check+AppendAuthority+AppendPath allocate %v times per request, want 0", n)
	}
}

func TestStripAllocatesNothing(t *testing.T) {
	tmpl := parseRequest(t, ordinaryRequestForBench)
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	copyStrip := func() {
		tmpl.Header.CopyTo(&h)
		StripRequestHopByHop(&h)
	}
	copyOnly := func() { tmpl.Header.CopyTo(&h) }
	copyStrip() // grow h's buffers once
	if n := testing.AllocsPerRun(1000, copyStrip) - testing.AllocsPerRun(1000, copyOnly); n > 0 {
		t.Fatalf("StripRequestHopByHop allocates %v times per request, want 0", n)
	}

	resp := &fasthttp.Response{}
	resp.Header.DisableNormalizing()
	if err := resp.Read(bufio.NewReader(strings.NewReader(ordinaryResponse))); err != nil {
		t.Fatalf("read response: %v", err)
	}
	var rh fasthttp.ResponseHeader
	rh.DisableNormalizing()
	copyStripResp := func() {
		resp.Header.CopyTo(&rh)
		StripResponseHopByHop(&rh)
	}
	copyOnlyResp := func() { resp.Header.CopyTo(&rh) }
	copyStripResp()
	if n := testing.AllocsPerRun(1000, copyStripResp) - testing.AllocsPerRun(1000, copyOnlyResp); n > 0 {
		t.Fatalf("StripResponseHopByHop allocates %v times per response, want 0", n)
	}
}

func TestFieldDeletersAllocateNothing(t *testing.T) {
	tmpl := parseRequest(t, ordinaryRequestForBench)
	var h fasthttp.RequestHeader
	copyDrop := func() {
		tmpl.Header.CopyTo(&h)
		h.Set("X_Spoof", "1")
		DropUnderscoreFields(&h)
	}
	copyOnly := func() {
		tmpl.Header.CopyTo(&h)
		h.Set("X_Spoof", "1")
	}
	copyDrop()
	if n := testing.AllocsPerRun(1000, copyDrop) - testing.AllocsPerRun(1000, copyOnly); n > 0 {
		t.Fatalf("DropUnderscoreFields allocates %v times per request, want 0", n)
	}

	var rh fasthttp.ResponseHeader
	rh.DisableNormalizing()
	copyDel := func() {
		rh.Set("x-request-id", "b")
		DelResponseField(&rh, "x-request-id")
	}
	copyDel()
	if n := testing.AllocsPerRun(1000, copyDel); n != 0 {
		t.Fatalf("DelResponseField allocates %v times per response, want 0", n)
	}
}

func TestRejectAllocatesNothing(t *testing.T) {
	var ctx fasthttp.RequestCtx
	Reject(&ctx, 400, reasonBareLF)
	if n := testing.AllocsPerRun(1000, func() { Reject(&ctx, 400, reasonBareLF) }); n != 0 {
		t.Fatalf("Reject allocates %v times, want 0", n)
	}
}
