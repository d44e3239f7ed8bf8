package cache

import (
	"bytes"
	"testing"
)

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"max-age=60", `no-cache="a, b", s-maxage="10"`, "max-stale, min-fresh=5",
		"max-age=99999999999999999999", `"`, `x="\`, "=,=,", "public,,,private",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cc := ParseCacheControl(b)
		if cc != ParseCacheControl(b) {
			t.Fatal("parsing is not deterministic")
		}
		for _, d := range []Delta{cc.MaxAge, cc.SMaxAge, cc.MaxStale, cc.MinFresh, cc.StaleWhileRevalidate, cc.StaleIfError} {
			if d.Seconds > maxDelta || (!d.Set && d.Seconds != 0) {
				t.Fatalf("delta %+v out of range", d)
			}
		}
		// Adding the same line again changes nothing: duplicates resolve to
		// the most restrictive value, which is already there.
		again := cc
		again.Add(b)
		if again != cc {
			t.Fatalf("a repeated line changed the directives:\n%+v\n%+v", cc, again)
		}
	})
}

// keyInput is what a key is built from in FuzzAppendKey.
type keyInput struct {
	method, scheme, host, path, query string
	part                              string
	present                           bool
}

func (k keyInput) request() *Request {
	r := &Request{
		Method: []byte(k.method), Scheme: []byte(k.scheme), Host: []byte(k.host),
		Path: []byte(k.path), Query: []byte(k.query), Policy: policy("header:x-part"),
		Fields: header(),
	}
	if k.present {
		r.Fields = header("X-Part", k.part)
	}
	return r
}

// canonical is the input as the key means it: the method class, scheme and
// host without case, and the part's normalised value.
func (k keyInput) canonical() keyInput {
	if k.method == "HEAD" {
		k.method = "GET"
	}
	k.scheme, k.host = string(bytes.Map(rune2lower, []byte(k.scheme))), string(bytes.Map(rune2lower, []byte(k.host)))
	if k.present {
		b := []byte(k.part)
		k.part = string(b[:normaliseList(b)])
	} else {
		k.part = ""
	}
	return k
}

func rune2lower(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

func FuzzAppendKey(f *testing.F) {
	f.Add("GET", "https", "a.example", "/x", "q=1", "de", true, "HEAD", "HTTPS", "A.example", "/x", "q=1", "de ", true)
	f.Add("GET", "http", "a", "/x", "", "", false, "GET", "http", "a", "/x", "", "", true)
	f.Add("GET", "http", "a", "/x?y", "", "", false, "GET", "http", "a", "/x", "y", "", false)
	f.Fuzz(func(t *testing.T, m1, s1, h1, p1, q1, v1 string, pr1 bool, m2, s2, h2, p2, q2, v2 string, pr2 bool) {
		a := keyInput{m1, s1, h1, p1, q1, v1, pr1}
		b := keyInput{m2, s2, h2, p2, q2, v2, pr2}
		ka, kb := AppendKey(nil, a.request()), AppendKey(nil, b.request())
		same := a.canonical() == b.canonical()
		if bytes.Equal(ka, kb) != same {
			t.Fatalf("inputs equal=%v but keys equal=%v\n a %+v\n b %+v", same, !same, a, b)
		}
		// A secondary key never equals any primary key.
		va := appendVaryKey(nil, ka, []byte("x-part"), a.request().Fields)
		if bytes.Equal(va, kb) || bytes.Equal(va, ka) {
			t.Fatal("a secondary key equals a primary key")
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntry(nil, testEntry("k", 200, "body", "ETag", `"x"`, "Cache-Control", "max-age=5")))
	f.Add(appendEntry(nil, newMarker([]byte("k"), []byte("h/"), []byte("a,b"), t0)))
	f.Add([]byte("SE\x01\x00\x00\x00\x00\x08"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		if again := appendEntry(nil, e); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, again)
		}
	})
}

func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, ok := ParseHTTPDate(b, t0); ok {
			// A valid date prints back as an IMF-fixdate that parses to it.
			if back, ok := ParseHTTPDate([]byte(httpDate(d)), t0); !ok || !back.Equal(d) {
				t.Fatalf("%q parsed to %v, which does not round-trip", b, d)
			}
		}
	})
}
