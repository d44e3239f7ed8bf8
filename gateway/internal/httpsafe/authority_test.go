package httpsafe

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// parseRequest reads raw the way the server does, with header names left as
// sent, so that RawHeaders is filled in.
func parseRequest(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	req := &fasthttp.Request{}
	req.Header.DisableNormalizing()
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("fasthttp cannot read %q: %v", raw, err)
	}
	return req
}

func TestAppendAuthority(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		host   string
		port   int
		status int
	}{
		{"a plain Host is the authority", "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", "a.example", 0, 0},
		{"the host is lower-cased and the port split off", "GET / HTTP/1.1\r\nHost: A.Example:8080\r\n\r\n", "a.example", 8080, 0},
		{"a trailing dot is dropped", "GET / HTTP/1.1\r\nHost: a.example.\r\n\r\n", "a.example", 0, 0},
		{"an IPv4 address is a host", "GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", "127.0.0.1", 80, 0},
		{"an IPv6 literal keeps its brackets", "GET / HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", "[::1]", 443, 0},
		{"an IPv6 literal is lower-cased", "GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n", "[2001:db8::1]", 0, 0},
		{"an absolute URI's authority wins over Host", "GET http://B.example:81/p HTTP/1.1\r\nHost: a.example\r\n\r\n", "b.example", 81, 0},
		{"an absolute URI without path still has an authority", "GET https://b.example?q HTTP/1.1\r\nHost: a.example\r\n\r\n", "b.example", 0, 0},
		{"userinfo in Host is refused", "GET / HTTP/1.1\r\nHost: u@a.example\r\n\r\n", "", 0, 400},
		{"userinfo in an absolute URI is refused", "GET http://u:p@b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", "", 0, 400},
		{"a missing Host on HTTP/1.0 is refused", "GET / HTTP/1.0\r\n\r\n", "", 0, 400},
		{"a port of zero is refused", "GET / HTTP/1.1\r\nHost: a.example:0\r\n\r\n", "", 0, 400},
		{"a port above 65535 is refused", "GET / HTTP/1.1\r\nHost: a.example:65536\r\n\r\n", "", 0, 400},
		{"a non-numeric port is refused", "GET / HTTP/1.1\r\nHost: a.example:8o\r\n\r\n", "", 0, 400},
		{"an empty port is refused", "GET / HTTP/1.1\r\nHost: a.example:\r\n\r\n", "", 0, 400},
		{"a lone dot is refused", "GET / HTTP/1.1\r\nHost: .\r\n\r\n", "", 0, 400},
		{"a sub-delim in a name is refused", "GET / HTTP/1.1\r\nHost: a!b\r\n\r\n", "", 0, 400},
		{"an unbracketed IPv6 address is refused", "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", "", 0, 400},
		{"an absolute URI with an empty authority is refused", "GET http:///p HTTP/1.1\r\nHost: a.example\r\n\r\n", "", 0, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := parseRequest(t, tc.raw)
			host, st := AppendAuthority([]byte("x:"), req)
			if st != tc.status {
				t.Fatalf("status %d, want %d (host %q)", st, tc.status, host)
			}
			if st != 0 {
				if string(host) != "x:" {
					t.Fatalf("refusal changed dst to %q", host)
				}
				return
			}
			if string(host) != "x:"+tc.host {
				t.Fatalf("got %q, want %q", host[2:], tc.host)
			}
			// The port is validated, not returned; parseAuthority has it.
			auth, _, _ := absoluteAuthority(req.Header.RequestURI())
			if auth == nil {
				auth = req.Header.Host()
			}
			if a, _ := parseAuthority(auth); a.port != tc.port {
				t.Fatalf("port %d, want %d", a.port, tc.port)
			}
		})
	}
}

func TestValidIPv6(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"::", true}, {"::1", true}, {"1::", true}, {"1:2:3:4:5:6:7:8", true},
		{"1:2:3:4:5:6:7::", true}, {"::ffff:192.0.2.1", true}, {"2001:db8::1:2", true},
		{"1:2:3:4:5:6:192.0.2.1", true},
		{":", false}, {":1", false}, {"1:", false}, {"1::2::3", false}, {"12345::", false},
		{"1:2:3:4:5:6:7:8:9", false}, {"1:2:3:4:5:6:7", false}, {"::g", false},
		{"::1.2.3", false}, {"::256.1.1.1", false}, {"fe80::1%25eth0", false},
		{"1:2:3:4:5:6:7:1.2.3.4", false}, {"", false},
	}
	for _, tc := range tests {
		name := "[" + tc.addr + "] is refused"
		if tc.ok {
			name = "[" + tc.addr + "] is accepted"
		}
		t.Run(name, func(t *testing.T) {
			if got := validIPv6([]byte(tc.addr)); got != tc.ok {
				t.Fatalf("validIPv6(%q) = %v, want %v", tc.addr, got, tc.ok)
			}
		})
	}
}

// checkThenAppendAuthority is what CheckAppendAuthority stands for: Check,
// then AppendAuthority on what it accepted.
func checkThenAppendAuthority(dst []byte, req *fasthttp.Request, o *Options) ([]byte, int, string) {
	if st, why := Check(req, o); st != 0 {
		return dst, st, why
	}
	host, st := AppendAuthority(dst, req)
	if st != 0 {
		return dst, st, "invalid host"
	}
	return host, 0, ""
}

func TestCheckAppendAuthorityIsCheckThenAppendAuthority(t *testing.T) {
	raws := []string{
		"GET / HTTP/1.1\r\nHost: A.Example:8080\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n",
		"GET http://B.example:81/p HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"GET http://B.example:81/p HTTP/1.1\r\nHost: u@a.example\r\n\r\n",
		"GET http://u:p@b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"GET ftp://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"GET http:///p HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET https://b.example?q HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.example:0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.example.\r\n\r\n",
		"GET /#f HTTP/1.1\r\nHost: a\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	}
	for _, raw := range raws {
		t.Run(strings.SplitN(raw, "\r\n", 2)[0], func(t *testing.T) {
			req := parseRequest(t, raw)
			o := &Options{}
			got, _, st, why := CheckAppendAuthority([]byte("x:"), req, o)
			want, wst, wwhy := checkThenAppendAuthority([]byte("x:"), req, o)
			if string(got) != string(want) || st != wst || why != wwhy {
				t.Errorf("CheckAppendAuthority: %q %d %q; Check then AppendAuthority: %q %d %q", got, st, why, want, wst, wwhy)
			}
		})
	}
}

func TestHostCharactersAreTheUnreservedClass(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		dns := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~'
		_, why := parseAuthority([]byte{'a', b, 'b'})
		switch {
		case dns && why != "":
			t.Errorf("host %q refused: %s", []byte{'a', b, 'b'}, why)
		case !dns && b != ':' && b != '@' && why != reasonHostInvalid:
			t.Errorf("host %q: %q, want %q", []byte{'a', b, 'b'}, why, reasonHostInvalid)
		}
	}
}
