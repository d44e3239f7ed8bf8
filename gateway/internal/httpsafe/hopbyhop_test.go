package httpsafe

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// requestFields lists "name: value" for every field, names lower-cased, sorted.
func requestFields(h *fasthttp.RequestHeader) []string {
	var out []string
	for k, v := range h.All() {
		out = append(out, strings.ToLower(string(k))+": "+string(v))
	}
	slices.Sort(out)
	return out
}

func responseFields(h *fasthttp.ResponseHeader) []string {
	var out []string
	for k, v := range h.All() {
		out = append(out, strings.ToLower(string(k))+": "+string(v))
	}
	slices.Sort(out)
	return out
}

func TestStripRequestHopByHop(t *testing.T) {
	tests := []struct {
		name   string
		fields string // header lines after the request line and Host
		want   []string
	}{
		{"a request without hop-by-hop fields is unchanged",
			"Accept: */*\r\n",
			[]string{"accept: */*", "host: a.example"}},
		{"the fixed hop-by-hop fields are removed in any case",
			"Connection: keep-alive\r\nkeep-alive: timeout=5\r\nTE: trailers\r\nupgrade: websocket\r\nPROXY-CONNECTION: x\r\nProxy-Authorization: Basic eA==\r\nX-Keep: 1\r\n",
			[]string{"host: a.example", "x-keep: 1"}},
		{"fields named by Connection are removed, whatever their case",
			"Connection: X-Foo , x-bar\r\nx-foo: 1\r\nX-BAR: 2\r\nX-Baz: 3\r\n",
			[]string{"host: a.example", "x-baz: 3"}},
		{"fields named by a second Connection header are removed",
			"Connection: x-a\r\nconnection: x-b\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n",
			[]string{"host: a.example", "x-c: 3"}},
		{"Connection naming Host and Content-Length leaves them",
			"Connection: close, Host, Content-Length, X-Foo\r\nX-Foo: 1\r\nContent-Length: 3\r\n\r\nabc",
			[]string{"content-length: 3", "host: a.example"}},
		{"Connection naming a gateway field removes only the client's copy",
			"Connection: X-Request-ID, X-Forwarded-For\r\nX-Request-ID: forged\r\nX-Forwarded-For: 6.6.6.6\r\n",
			[]string{"host: a.example"}},
		{"a lower-case connection with close and a name is removed with the name",
			"connection: close, x-foo\r\nx-foo: 1\r\nX-Bar: 2\r\n",
			[]string{"host: a.example", "x-bar: 2"}},
		{"a lone Connection: close is removed",
			"Connection: close\r\n",
			[]string{"host: a.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := "GET / HTTP/1.1\r\nHost: a.example\r\n" + tc.fields
			if strings.Contains(tc.fields, "\r\n\r\n") {
				raw = "POST" + raw[len("GET"):]
			} else {
				raw += "\r\n"
			}
			req := parseRequest(t, raw)
			StripRequestHopByHop(&req.Header)
			if got := requestFields(&req.Header); !slices.Equal(got, tc.want) {
				t.Fatalf("fields after strip:\n  %q\nwant\n  %q", got, tc.want)
			}
			if req.Header.ConnectionClose() {
				t.Fatalf("the request still says Connection: close")
			}
		})
	}
}

// A chunked request loses Transfer-Encoding; fasthttp must then frame the
// forwarded body with Content-Length.
func TestStripRequestHopByHopReframesAChunkedBody(t *testing.T) {
	req := parseRequest(t, "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	StripRequestHopByHop(&req.Header)
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := req.Write(w); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = w.Flush()
	out := strings.ToLower(buf.String())
	if strings.Contains(out, "transfer-encoding") || !strings.Contains(out, "content-length: 3\r\n") || !strings.HasSuffix(out, "\r\n\r\nabc") {
		t.Fatalf("forwarded request is not framed by Content-Length:\n%s", buf.String())
	}
}

func TestStripRequestHopByHopKeepsFieldsSetAfterwards(t *testing.T) {
	req := parseRequest(t, "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: X-Request-ID\r\nX-Request-ID: forged\r\n\r\n")
	StripRequestHopByHop(&req.Header)
	req.Header.Set("X-Request-ID", "gw-1")
	if got := string(req.Header.Peek("X-Request-ID")); got != "gw-1" {
		t.Fatalf("X-Request-ID = %q, want the gateway's gw-1", got)
	}
}

func TestStripResponseHopByHop(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []string
	}{
		{"a plain response is unchanged",
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
			[]string{"content-length: 2", "content-type: text/plain"}},
		{"hop-by-hop and named fields are removed and close is cleared",
			"HTTP/1.1 200 OK\r\nConnection: close, X-B\r\nx-b: 1\r\nkeep-alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
			[]string{"content-length: 2", "content-type: text/plain"}},
		{"Connection naming Content-Length leaves it",
			"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
			[]string{"content-length: 2", "content-type: text/plain"}},
		{"a chunked response loses Transfer-Encoding",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n2\r\nok\r\n0\r\n\r\n",
			[]string{"content-type: text/plain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := &fasthttp.Response{}
			resp.Header.DisableNormalizing()
			if err := resp.Read(bufio.NewReader(strings.NewReader(tc.raw))); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := StripResponseHopByHop(&resp.Header); err != nil {
				t.Fatalf("strip: %v", err)
			}
			if got := responseFields(&resp.Header); !slices.Equal(got, tc.want) {
				t.Fatalf("fields after strip:\n  %q\nwant\n  %q", got, tc.want)
			}
			if resp.Header.ConnectionClose() {
				t.Fatalf("the response still says Connection: close")
			}
		})
	}
}

func TestDropUnderscoreFields(t *testing.T) {
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	h.Set("X_Forwarded_For", "6.6.6.6")
	h.Set("x_real_ip", "6.6.6.6")
	h.Set("X-Forwarded-For", "1.2.3.4")
	h.Set("Accept", "*/*")
	DropUnderscoreFields(&h)
	want := []string{"accept: */*", "x-forwarded-for: 1.2.3.4"}
	if got := requestFields(&h); !slices.Equal(got, want) {
		t.Errorf("fields %q, want %q", got, want)
	}
}

func TestDelResponseFieldRemovesEveryCopyInAnyCase(t *testing.T) {
	resp := &fasthttp.Response{}
	resp.Header.DisableNormalizing()
	raw := "HTTP/1.1 200 OK\r\nX-Request-ID: a\r\nx-request-id: b\r\nX-REQUEST-ID: c\r\nX-Other: d\r\nContent-Length: 0\r\n\r\n"
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	DelResponseField(&resp.Header, "x-request-id")
	for _, f := range responseFields(&resp.Header) {
		if strings.HasPrefix(f, "x-request-id") {
			t.Errorf("left %q", f)
		}
	}
	if len(resp.Header.Peek("X-Other")) == 0 {
		t.Error("removed an unrelated field")
	}
}

func TestIsTokenAcceptsFieldNamesOnly(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Request-Id": true, "x_y": true, "!#$%&'*+-.^_`|~09azAZ": true,
		"": false, "X A": false, "X\tA": false, "X:A": false, `X"A`: false, "X(A)": false, "Ä": false, "X\x7f": false,
	} {
		if got := IsToken([]byte(name)); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestDropInvalidResponseFieldsKeepsTheValidOnes(t *testing.T) {
	var resp fasthttp.Response
	resp.Header.DisableNormalizing() // as the balancer reads a backend's response
	raw := "HTTP/1.1 200 OK\r\nX A: 1\r\nX-Kept: 2\r\nY B C: 3\r\nX A: 4\r\nContent-Length: 0\r\n\r\n"
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	DropInvalidResponseFields(&resp.Header)
	var names []string
	for k := range resp.Header.All() {
		names = append(names, string(k))
	}
	if slices.Contains(names, "X A") || slices.Contains(names, "Y B C") || !slices.Contains(names, "X-Kept") {
		t.Errorf("fields left: %q; want X-Kept and no name with a space", names)
	}
}

// gateway's stripResponse looks only for a space before it calls
// DropInvalidResponseFields, because fasthttp refuses a backend's response
// whose field name holds any other byte that is not a token character. This
// pins that: a fasthttp upgrade that accepts more must make it look again.
func TestFasthttpRefusesNonTokenResponseNamesButSpace(t *testing.T) {
	for c := 0; c < 256; c++ {
		if tokenTable[c] != 0 || c == '\r' || c == '\n' || c == ':' {
			continue // token characters are valid; CR, LF and ':' end the name
		}
		var resp fasthttp.Response
		resp.Header.DisableNormalizing() // as the balancer reads a backend's response
		raw := "HTTP/1.1 200 OK\r\nX" + string([]byte{byte(c)}) + "A: 1\r\nContent-Length: 0\r\n\r\n"
		err := resp.Read(bufio.NewReader(strings.NewReader(raw)))
		if accepted := err == nil; accepted != (c == ' ') {
			t.Errorf("a response field named %q: accepted %v, want %v", "X"+string([]byte{byte(c)})+"A", accepted, c == ' ')
		}
	}
}

// A trailer field is never merged into the header section (RFC 9110
// §6.5.1): the message goes on with its header section as received, with
// or without a Trailer announcement, in any spelling, and with fields of the
// same name in the head kept.
func TestStripHopByHopDropsTheTrailerSection(t *testing.T) {
	tests := []struct {
		name      string
		head      string // fields after the start line, each ending in CRLF
		trailer   string // the trailer section's fields
		normalise bool
		want      []string // every field, lower-cased, sorted (requests: with host)
	}{
		{"an unannounced trailer field of a name the head has", "X-User: alice\r\n", "X-User: admin\r\n", true,
			[]string{"x-user: alice"}},
		{"an announced one", "Trailer: X-User\r\nX-User: alice\r\n", "X-User: admin\r\n", true,
			[]string{"x-user: alice"}},
		{"a name only the trailer has", "X-A: 1\r\n", "X-Request-Id: forged\r\nX-Sum: 5\r\n", true,
			[]string{"x-a: 1"}},
		{"names in another case, not normalised", "x-user: alice\r\nX-User: bob\r\n", "X-USER: admin\r\n", false,
			[]string{"x-user: alice", "x-user: bob"}},
		{"announced but not sent", "Trailer: X-Sum\r\nX-Sum: head\r\n", "", true,
			[]string{"x-sum: head"}},
	}
	for _, tc := range tests {
		t.Run(tc.name+" (request)", func(t *testing.T) {
			req := &fasthttp.Request{}
			if !tc.normalise {
				req.Header.DisableNormalizing()
			}
			raw := "POST /p HTTP/1.1\r\nHost: a.example\r\n" + tc.head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n" + tc.trailer + "\r\n"
			if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatalf("read: %v", err)
			}
			StripRequestHopByHop(&req.Header)
			want := append([]string{"host: a.example"}, tc.want...)
			slices.Sort(want)
			if got := requestFields(&req.Header); !slices.Equal(got, want) {
				t.Errorf("fields after strip:\n  %q\nwant\n  %q", got, want)
			}
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			if err := req.Write(w); err != nil {
				t.Fatalf("write: %v", err)
			}
			_ = w.Flush()
			if out := strings.ToLower(buf.String()); strings.Contains(out, "admin") || strings.Contains(out, "forged") ||
				strings.Contains(out, "trailer") || !strings.HasSuffix(out, "\r\n\r\nabc") {
				t.Errorf("forwarded:\n%s", buf.String())
			}
		})
		t.Run(tc.name+" (response)", func(t *testing.T) {
			resp := &fasthttp.Response{}
			if !tc.normalise {
				resp.Header.DisableNormalizing()
			}
			raw := "HTTP/1.1 200 OK\r\n" + tc.head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n" + tc.trailer + "\r\n"
			if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := StripResponseHopByHop(&resp.Header); err != nil {
				t.Fatalf("strip: %v", err)
			}
			got := responseFields(&resp.Header)
			got = slices.DeleteFunc(got, func(f string) bool {
				return strings.HasPrefix(f, "content-type: ") || strings.HasPrefix(f, "content-length: ")
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("fields after strip:\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}

// connectionNaming is a header section whose Connection field names opts
// fields, each sent copies times in alternating case, after plain fields.
func connectionNaming(opts, copies, plain int) string {
	var b strings.Builder
	names := make([]string, opts)
	for i := range names {
		names[i] = fmt.Sprintf("x-opt%d", i)
	}
	b.WriteString("Connection: " + strings.Join(names, ", ") + "\r\n")
	for i := range plain {
		fmt.Fprintf(&b, "Y%d: v\r\n", i)
	}
	for c := range copies {
		for _, n := range names {
			if c%2 == 1 {
				n = strings.ToUpper(n)
			}
			b.WriteString(n + ": v\r\n")
		}
	}
	return b.String() + "\r\n"
}

// RFC 9110 §7.6.1: every field a Connection option names goes. Removing
// each rescans the header, so a message naming more fields than the strip
// bounds is refused instead: a 16 KiB request naming 540 fields among 1,000
// others took seconds of CPU, and past the old bound of 512 rounds the
// rest reached the backend.
func TestHopByHopBoundsAreCheckedAndEverythingWithinThemIsStripped(t *testing.T) {
	tests := []struct {
		name         string
		opts, copies int
		refused      bool
	}{
		{"the most options, each field once", maxConnectionOptions, 1, false},
		{"the most fields to strip", 31, 2, false}, // with Connection and the response's Connection: close
		{"one option more", maxConnectionOptions + 1, 1, true},
		{"one field to strip more", 16, 4, true},
		{"the reported attack", 540, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := connectionNaming(tt.opts, tt.copies, 1000)
			st, _, _ := checkRawHeaders([]byte(head))
			if refused := st != 0; refused != tt.refused {
				t.Fatalf("request refused = %v (%d), want %v", refused, st, tt.refused)
			}
			resp := &fasthttp.Response{}
			resp.Header.DisableNormalizing()
			raw := "HTTP/1.1 200 OK\r\n" + head
			if err := resp.Header.Read(bufio.NewReaderSize(strings.NewReader(raw), len(raw)+16)); err != nil {
				t.Fatal(err)
			}
			err := StripResponseHopByHop(&resp.Header)
			if refused := err != nil; refused != tt.refused {
				t.Fatalf("response refused = %v (%v), want %v", refused, err, tt.refused)
			}
			if tt.refused {
				return
			}
			for k := range resp.Header.All() {
				if !bytes.HasPrefix(k, []byte("Y")) && !bytes.EqualFold(k, []byte("content-type")) {
					t.Fatalf("%s survived the strip", k)
				}
			}
			req := &fasthttp.Request{}
			req.Header.DisableNormalizing()
			rawReq := "GET / HTTP/1.1\r\nHost: a\r\n" + head
			if err := req.Header.Read(bufio.NewReaderSize(strings.NewReader(rawReq), len(rawReq)+16)); err != nil {
				t.Fatal(err)
			}
			StripRequestHopByHop(&req.Header)
			for k := range req.Header.All() {
				if !bytes.HasPrefix(k, []byte("Y")) && !bytes.EqualFold(k, []byte("host")) {
					t.Fatalf("%s survived the request strip", k)
				}
			}
		})
	}
}
