package httpsafe

import "testing"

// feed gives w body in pieces of size step and returns the body's end and
// the bare LF's index in body, as Feed reports them piece by piece.
func feed(w *ChunkWatch, body string, step int) (end, lf int) {
	w.Start()
	for at := 0; at < len(body); at += step {
		piece := body[at:min(at+step, len(body))]
		e, l := w.Feed([]byte(piece))
		switch {
		case l >= 0:
			return -1, at + l
		case e >= 0:
			return at + e, -1
		}
	}
	return -1, -1
}

func TestChunkWatchFollowsABodyInPieces(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		end, lf    int
	}{
		{"a body and its end", "5\r\nhello\r\n0\r\n\r\n", 15, -1},
		{"extensions and trailer fields", "5;a=\"b c\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-A: b\r\nX-B: c\r\n\r\n", 54, -1},
		{"a bare LF in data is data", "3\r\n\n\n\n\r\n0\r\n\r\n", 13, -1},
		{"a bare LF ends the trailer", "5\r\nhello\r\n0\r\n\nGET / HTTP/1.1\r\n\r\n", -1, 13},
		{"a bare LF ends a trailer line", "0\r\nX-A: b\nGET / HTTP/1.1\r\n\r\n", -1, 9},
		{"a bare LF on a size line: fasthttp refuses it", "0\n\n", -1, -1},
		{"not hex", "x\r\n\r\n", -1, -1},
		{"no CRLF after the data", "2\r\nabc\r\n0\r\n\n", -1, -1},
		{"the body goes on", "5\r\nhel", -1, -1},
	} {
		for _, step := range []int{1, 2, 3, 1000} {
			var w ChunkWatch
			if end, lf := feed(&w, tc.body, step); end != tc.end || lf != tc.lf {
				t.Errorf("%s, in pieces of %d: end %d, lf %d; want %d, %d", tc.name, step, end, lf, tc.end, tc.lf)
			}
		}
	}
	var w ChunkWatch
	if w.Active() {
		t.Error("the zero watch is active")
	}
	if e, l := w.Feed([]byte("0\r\n\n")); e != -1 || l != -1 {
		t.Error("the zero watch read a body")
	}
}

func TestChunkWatchCountsABodyOfAKnownLength(t *testing.T) {
	var w ChunkWatch
	w.StartFixed(10)
	if e, l := w.Feed([]byte("abc\r\n\n")); e != -1 || l != -1 || !w.Active() {
		t.Fatalf("6 of 10 bytes: end %d, lf %d, active %v", e, l, w.Active())
	}
	if e, l := w.Feed([]byte("defgGET / HTTP/1.1\n\n")); e != 4 || l != -1 || w.Active() {
		t.Fatalf("the last 4: end %d, lf %d, active %v; want the end at 4", e, l, w.Active())
	}
	if w.StartFixed(0); w.Active() {
		t.Error("an empty body is watched")
	}
}

func TestHasChunkedInAnyCase(t *testing.T) {
	for head, want := range map[string]bool{
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked": true,
		"POST / HTTP/1.1\r\nTRANSFER-ENCODING: CHUNKED": true,
		"POST / HTTP/1.1\r\ntransfer-encoding: cHuNkEd": true,
		"GET / HTTP/1.1\r\nConnection: keep-alive":      false,
		"GET /k HTTP/1.1\r\nHost: k\r\nX-K: chunke":     false,
		"kkkk": false,
	} {
		if got := hasChunked([]byte(head)); got != want {
			t.Errorf("%q: %v, want %v", head, got, want)
		}
	}
}
