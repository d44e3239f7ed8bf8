package httpsafe

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func FuzzAppendPath(f *testing.F) {
	for _, s := range []string{
		"/", "", "/admin", "/%61dmin", "/./admin", "/x/../admin", "//admin", "/admin%2F",
		"/admin\\", "/admin;x", "/a/b/../../..", "/%2e%2E/x", "/a//b/./c/..", "/%c3%a9", "/a%zz",
		"/.../..../.", "/a/.%2e/b", "//..//.//", "/%252e%252e/",
	} {
		f.Add(s, false, false, false)
	}
	f.Fuzz(func(t *testing.T, raw string, keep, encSlash, matrix bool) {
		o := &Options{MergeSlashes: !keep, AllowEncodedSlash: encSlash, AllowMatrixParams: matrix}
		out, st, why := AppendPath([]byte("pre"), []byte(raw), o)
		if st != 0 {
			if st != 400 || why == "" || string(out) != "pre" {
				t.Fatalf("refusal of %q: status %d reason %q dst %q", raw, st, why, out)
			}
			return
		}
		p := out[len("pre"):]
		if len(p) == 0 || p[0] != '/' {
			t.Fatalf("%q gave %q, which does not start with /", raw, p)
		}
		for _, bad := range []string{"/../", "/./"} {
			if bytes.Contains(p, []byte(bad)) {
				t.Fatalf("%q gave %q, which contains %s", raw, p, bad)
			}
		}
		if bytes.HasSuffix(p, []byte("/..")) || bytes.HasSuffix(p, []byte("/.")) {
			t.Fatalf("%q gave %q, which ends in a dot segment", raw, p)
		}
		if bytes.HasPrefix(p, []byte("//")) || (!keep && bytes.Contains(p, []byte("//"))) {
			t.Fatalf("%q gave %q, which has an empty segment", raw, p)
		}
		for _, c := range p {
			if c != '/' && c != '%' && pathTable[c] == pbInvalid {
				t.Fatalf("%q gave %q, which has the byte %q", raw, p, c)
			}
		}
		again, st, why := AppendPath(nil, p, o)
		if st != 0 || !bytes.Equal(again, p) {
			t.Fatalf("not a fixed point: %q -> %q -> %q (status %d %s)", raw, p, again, st, why)
		}
	})
}

func FuzzAppendAuthority(f *testing.F) {
	for _, s := range [][2]string{
		{"a.example", "/"}, {"A.Example.:8080", "/"}, {"[::1]:443", "/"}, {"u@a", "/"},
		{"a", "http://B.example:81/p"}, {"a", "http://u:p@b/p"}, {"a", "https://b?q"},
		{"[fe80::1%25en0]", "/"}, {"a:0", "/"}, {"a", "http:///"}, {"1.2.3.4:65535", "/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, hostHeader, target string) {
		var req fasthttp.Request
		req.Header.SetHost(hostHeader)
		req.Header.SetRequestURI(target)
		host, st := AppendAuthority([]byte("pre"), &req)
		if st != 0 {
			if st != 400 || string(host) != "pre" {
				t.Fatalf("refusal: status %d dst %q", st, host)
			}
			return
		}
		h := host[len("pre"):]
		if len(h) == 0 {
			t.Fatalf("accepted %q %q as an empty host", hostHeader, target)
		}
		if bytes.IndexByte(h, '@') >= 0 || !bytes.Equal(h, bytes.ToLower(h)) {
			t.Fatalf("accepted host %q has userinfo or upper case", h)
		}
		if h[0] != '[' && bytes.IndexByte(h, ':') >= 0 {
			t.Fatalf("accepted host %q keeps a port", h)
		}
		// The routing host must parse to itself.
		var req2 fasthttp.Request
		req2.Header.SetHostBytes(h)
		req2.Header.SetRequestURI("/")
		h2, st2 := AppendAuthority(nil, &req2)
		if st2 != 0 || !bytes.Equal(h2, h) {
			t.Fatalf("%q does not parse to itself: %q status %d", h, h2, st2)
		}
	})
}

func FuzzCheckAppendAuthority(f *testing.F) {
	for _, s := range [][2]string{
		{"a.example", "/"}, {"A.Example.:8080", "/"}, {"[::1]:443", "/"}, {"u@a", "/"},
		{"a", "http://B.example:81/p"}, {"a", "http://u:p@b/p"}, {"", "https://b?q"}, {"", "/"},
		{"a", "ftp://b/"}, {"a:0", "/"}, {"a", "http:///"}, {"a", "p"}, {"a", "*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, hostHeader, target string) {
		raw := "GET " + target + " HTTP/1.1\r\n"
		if hostHeader != "" {
			raw += "Host: " + hostHeader + "\r\n"
		}
		var req fasthttp.Request
		req.Header.DisableNormalizing()
		if req.Read(bufio.NewReader(strings.NewReader(raw+"\r\n"))) != nil {
			return
		}
		got, _, st, why := CheckAppendAuthority([]byte("pre"), &req, &Options{})
		want, wst, wwhy := checkThenAppendAuthority([]byte("pre"), &req, &Options{})
		if !bytes.Equal(got, want) || st != wst || why != wwhy {
			t.Fatalf("%q: CheckAppendAuthority %q %d %q; Check then AppendAuthority %q %d %q", raw, got, st, why, want, wst, wwhy)
		}
	})
}
