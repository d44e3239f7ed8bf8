package cache

import (
	"bytes"
	"strings"
	"testing"
)

// testFields is a request's fields as Fields reads them.
type testFields struct {
	headers map[string][]string // lower-case name → field lines
	cookies map[string]string
	query   map[string]string
}

func (f *testFields) AppendHeader(dst, name []byte) ([]byte, bool) {
	lines, ok := f.headers[string(name)]
	if !ok {
		return dst, false
	}
	for i, l := range lines {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, l...)
	}
	return dst, true
}

func (f *testFields) AppendCookie(dst, name []byte) ([]byte, bool) {
	v, ok := f.cookies[string(name)]
	return append(dst, v...), ok
}

func (f *testFields) AppendQueryArg(dst, name []byte) ([]byte, bool) {
	v, ok := f.query[string(name)]
	return append(dst, v...), ok
}

func header(kv ...string) *testFields {
	f := &testFields{headers: map[string][]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		n := strings.ToLower(kv[i])
		f.headers[n] = append(f.headers[n], kv[i+1])
	}
	return f
}

func policy(parts ...string) *Policy {
	p := &Policy{MaxEntry: DefaultMaxEntry}
	for _, s := range parts {
		kp, err := ParseKeyPart(s)
		if err != nil {
			panic(err)
		}
		p.Key = append(p.Key, kp)
	}
	return p
}

func req(method, target string) *Request {
	path, query, _ := strings.Cut(target, "?")
	return &Request{
		Method: []byte(method), Scheme: []byte("https"), Host: []byte("api.example.com"),
		Path: []byte(path), Query: []byte(query), Policy: policy(),
	}
}

func key(r *Request) string { return string(AppendKey(nil, r)) }

func TestAppendKey(t *testing.T) {
	with := func(r *Request, edit func(*Request)) *Request { edit(r); return r }
	tests := []struct {
		name string
		a, b *Request
		same bool
	}{
		{"GET and HEAD share a key", req("GET", "/a"), req("HEAD", "/a"), true},
		{"GET and POST do not", req("GET", "/a"), req("POST", "/a"), false},
		{"scheme and host ignore case", req("GET", "/a"),
			with(req("GET", "/a"), func(r *Request) { r.Scheme, r.Host = []byte("HTTPS"), []byte("API.Example.com") }), true},
		{"http and https differ", req("GET", "/a"), with(req("GET", "/a"), func(r *Request) { r.Scheme = []byte("http") }), false},
		{"path case matters", req("GET", "/a"), req("GET", "/A"), false},
		{"query order matters (no reordering)", req("GET", "/a?x=1&y=2"), req("GET", "/a?y=2&x=1"), false},
		{"path and query cannot trade bytes", req("GET", "/a?b"),
			with(req("GET", "/a"), func(r *Request) { r.Path = []byte("/a?b") }), false},
		{"host and path cannot trade bytes",
			with(req("GET", "/x"), func(r *Request) { r.Host = []byte("h/a") }),
			with(req("GET", "/x"), func(r *Request) { r.Host, r.Path = []byte("h"), []byte("/a/x") }), false},
		{"a key part absent and empty differ",
			with(req("GET", "/a"), func(r *Request) { r.Policy = policy("header:X-Tenant"); r.Fields = header() }),
			with(req("GET", "/a"), func(r *Request) { r.Policy = policy("header:X-Tenant"); r.Fields = header("X-Tenant", "") }), false},
		{"a key part's value separates keys",
			with(req("GET", "/a"), func(r *Request) {
				r.Policy = policy("header:Accept-Language")
				r.Fields = header("Accept-Language", "de")
			}),
			with(req("GET", "/a"), func(r *Request) {
				r.Policy = policy("header:Accept-Language")
				r.Fields = header("Accept-Language", "fr")
			}), false},
		{"header values are normalised: lines combine and spaces go",
			with(req("GET", "/a"), func(r *Request) {
				r.Policy = policy("header:Accept")
				r.Fields = header("Accept", "a , b", "Accept", "c")
			}),
			with(req("GET", "/a"), func(r *Request) { r.Policy = policy("header:Accept"); r.Fields = header("Accept", "a,b,c") }), true},
		{"quoted strings are kept as they are",
			with(req("GET", "/a"), func(r *Request) { r.Policy = policy("header:X"); r.Fields = header("X", `"a , b"`) }),
			with(req("GET", "/a"), func(r *Request) { r.Policy = policy("header:X"); r.Fields = header("X", `"a,b"`) }), false},
		{"a cookie and a query arg of the same name and value differ",
			with(req("GET", "/a"), func(r *Request) {
				r.Policy = policy("cookie:v")
				r.Fields = &testFields{cookies: map[string]string{"v": "1"}}
			}),
			with(req("GET", "/a"), func(r *Request) {
				r.Policy = policy("query:v")
				r.Fields = &testFields{query: map[string]string{"v": "1"}}
			}), false},
		{"a route with a key part and one without differ",
			with(req("GET", "/a"), func(r *Request) { r.Policy = policy("header:X"); r.Fields = header() }),
			req("GET", "/a"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := key(tt.a) == key(tt.b); got != tt.same {
				t.Errorf("same key = %v, want %v\n a %q\n b %q", got, tt.same, key(tt.a), key(tt.b))
			}
		})
	}
}

func TestVaryKey(t *testing.T) {
	primary := AppendKey(nil, req("GET", "/a"))
	de := appendVaryKey(nil, primary, []byte("accept-language"), header("Accept-Language", "de"))
	fr := appendVaryKey(nil, primary, []byte("accept-language"), header("Accept-Language", "fr"))
	none := appendVaryKey(nil, primary, []byte("accept-language"), header())
	empty := appendVaryKey(nil, primary, []byte("accept-language"), header("Accept-Language", ""))
	spaced := appendVaryKey(nil, primary, []byte("accept-language"), header("accept-language", " de "))
	keys := map[string][]byte{"de": de, "fr": fr, "absent": none, "empty": empty, "primary": primary}
	for n1, k1 := range keys {
		for n2, k2 := range keys {
			if n1 != n2 && bytes.Equal(k1, k2) {
				t.Errorf("RFC 9111 §4.1: %s and %s share a key", n1, n2)
			}
		}
	}
	if !bytes.Equal(de, spaced) {
		t.Errorf("RFC 9111 §4.1: whitespace around a Vary value changed the secondary key")
	}
}

func TestNormaliseVary(t *testing.T) {
	got := normaliseVary(fields("Vary", "Accept-Language, accept-encoding", "vary", "Accept-Encoding,X-Y"))
	if string(got) != "accept-encoding,accept-language,x-y" {
		t.Errorf("normaliseVary = %q", got)
	}
	if normaliseVary(fields("Content-Type", "a")) != nil {
		t.Errorf("no Vary should give nil")
	}
}

func TestParseKeyPart(t *testing.T) {
	for _, s := range []string{"header:Accept-Language", "cookie:currency", "query:lang"} {
		p, err := ParseKeyPart(s)
		if err != nil {
			t.Fatalf("ParseKeyPart(%q): %v", s, err)
		}
		if !strings.EqualFold(p.String(), s) {
			t.Errorf("ParseKeyPart(%q).String() = %q", s, p)
		}
	}
	for _, s := range []string{"", "header", "header:", "body:x", "header:a b"} {
		if _, err := ParseKeyPart(s); err == nil {
			t.Errorf("ParseKeyPart(%q) accepted", s)
		}
	}
}

func TestAppendURL(t *testing.T) {
	if got := AppendURL(nil, []byte("API.example.com"), []byte("/a"), []byte("x=1")); string(got) != "api.example.com/a?x=1" {
		t.Errorf("AppendURL = %q", got)
	}
	if got := AppendURL(nil, []byte("h"), []byte("/a"), nil); string(got) != "h/a" {
		t.Errorf("AppendURL without query = %q", got)
	}
}
