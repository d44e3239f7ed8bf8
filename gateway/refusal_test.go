package gateway

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/origin"
	"github.com/sluice-gw/sluice/internal/testnet"
)

// Requests refused before routing, seen from a client: the answer, what
// happens to the connection, and that nothing reaches a backend.

func TestPipelinedRequestsAreAnsweredInOrderAndARefusalEndsTheConnection(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))

	t.Run("a valid request, a refused one and one after it", func(t *testing.T) {
		before := o.Requests()
		rc := testnet.Dial(t, s.Addr().String())
		rc.Send(t, "GET /echo/first HTTP/1.1\r\nHost: a\r\n\r\n"+
			"GET /echo/%2Fsecond HTTP/1.1\r\nHost: a\r\n\r\n"+
			"GET /echo/third HTTP/1.1\r\nHost: a\r\n\r\n")
		r1, _ := rc.ReadResponse(t, "GET")
		r2, _ := rc.ReadResponse(t, "GET")
		if r1.StatusCode != 200 {
			t.Fatalf("first response %v, want 200", r1)
		}
		if r2.StatusCode != 400 {
			t.Fatalf("second response %v, want 400", r2)
		}
		if !rc.Closed(3 * time.Second) {
			t.Error("connection not closed after the refusal")
		}
		if n := o.Requests() - before; n != 1 {
			t.Errorf("backend got %d requests, want 1", n)
		}
		if got := lastReceived(t, o).RequestURI; got != "/echo/first" {
			t.Errorf("backend got %q", got)
		}
	})

	t.Run("a smuggling attempt after a valid request", func(t *testing.T) {
		before := o.Requests()
		rc := testnet.Dial(t, s.Addr().String())
		rc.Send(t, "GET /echo/a HTTP/1.1\r\nHost: a\r\n\r\n"+
			"POST /echo/b HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+
			"GET /echo/smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
		r1, _ := rc.ReadResponse(t, "GET")
		r2, _ := rc.ReadResponse(t, "POST")
		if r1.StatusCode != 200 || r2.StatusCode != 400 {
			t.Fatalf("responses %v %v, want 200 then 400", r1, r2)
		}
		if !rc.Closed(3 * time.Second) {
			t.Error("connection not closed after the refusal")
		}
		if n := o.Requests() - before; n != 1 {
			t.Errorf("backend got %d requests, want 1", n)
		}
	})

	t.Run("many valid requests in one write keep their order", func(t *testing.T) {
		rc := testnet.Dial(t, s.Addr().String())
		var b strings.Builder
		for i := 1; i <= 10; i++ {
			fmt.Fprintf(&b, "GET /api/orders/%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		}
		rc.Send(t, b.String())
		for i := 1; i <= 10; i++ {
			r, body := rc.ReadResponse(t, "GET")
			if r.StatusCode != 200 || !strings.Contains(string(body), fmt.Sprintf(`"%d"`, i)) &&
				!strings.Contains(string(body), fmt.Sprintf(`:%d,`, i)) && !strings.Contains(string(body), fmt.Sprintf(`-%d"`, i)) {
				t.Fatalf("response %d: %v %q", i, r, body)
			}
		}
	})
}

// A space or a control byte in the query must not be copied onto the
// upstream request line, where a backend may split it differently (a space
// makes "/x?a HTTP/1.0" a target and a version). Refused with 400 today.
// (Non-ASCII bytes and '"<>\^`{|}' in the query ARE forwarded raw, unlike in
// the path.)
func TestInvalidBytesInTheQueryAreRefused(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	for _, q := range []string{"a=b c", "a=b HTTP/1.0", "a=\x01", "a=\x7f", "a=\tb"} {
		t.Run(fmt.Sprintf("query %q", q), func(t *testing.T) {
			before := o.Requests()
			status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x?"+q+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if n := o.Requests() - before; n != 0 {
				t.Errorf("status %d; backend received target %q, want the request refused", status, lastReceived(t, o).RequestURI)
				return
			}
			if status != 400 {
				t.Errorf("status %d, want 400\n%.200q", status, raw)
			}
		})
	}
}

// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
// framing; it must be refused and the connection closed.
func TestTransferEncodingInHTTP10IsRefused(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	before := o.Requests()
	status, raw := testnet.RawExchange(t, s.Addr().String(),
		"POST /echo/x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if status != 400 || o.Requests() != before {
		t.Errorf("status %d, backend got %d requests; want 400 and none\n%.200q", status, o.Requests()-before, raw)
	}
}

// Guards against: a request fasthttp cannot parse is answered by handleParseError,
// whose ctx has no request number yet (ctx.ID() is 0), so every such answer
// of one server carries the same generated id "<prefix>-0"; ids stop being
// unique exactly for the requests that most need explaining in the logs.
func TestGeneratedRequestIDsAreUniqueForUnparsableRequests(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		status, raw := testnet.RawExchange(t, s.Addr().String(), "GET /echo/x HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
		if status != 400 {
			t.Fatalf("status %d\n%.200q", status, raw)
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get("X-Request-ID")
		if id == "" || seen[id] {
			t.Errorf("request %d got X-Request-ID %q, already used or empty", i+1, id)
		}
		seen[id] = true
	}
}

// On a kept-alive connection, a request fasthttp cannot parse comes after
// one it numbered: its refusal must not carry that request's id.
func TestARefusalAfterARequestGetsAnIDOfItsOwn(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, gatewayYAML(o.Addr()))
	rc := testnet.Dial(t, s.Addr().String())
	rc.Send(t, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n")
	first, _ := rc.ReadResponse(t, "GET")
	rc.Send(t, "GET /echo/y HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("b", 20<<10)+"\r\n\r\n")
	refused, _ := rc.ReadResponse(t, "GET")
	if refused.StatusCode != 431 {
		t.Fatalf("status %d, want 431", refused.StatusCode)
	}
	if a, b := first.Header.Get("X-Request-Id"), refused.Header.Get("X-Request-Id"); a == b {
		t.Fatalf("the refusal carries the id of the request before it: %q", a)
	}
}

// fasthttp ends a request head only at CRLFCRLF, so a head whose blank line
// is a bare LF used to wait for read_timeout (a 408 after 10s by default)
// while its client waited for an answer. It is refused at once now, as a
// bare LF anywhere else in the head is, and bare LFs in a body are left
// alone.
func TestAHeadEndedByABareLFIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{})
	for _, f := range fronts(t, strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {read_timeout: 30s}\nlog:", 1)) {
		t.Run(f.name, func(t *testing.T) {
			soon := func(rc *testnet.Conn) {
				_ = rc.SetReadDeadline(time.Now().Add(3 * time.Second))
			}
			for _, head := range []string{
				"GET /echo/x HTTP/1.1\nHost: a\n\n",
				"GET /echo/x HTTP/1.1\r\nHost: a\n\r\n",
				"GET /echo/x HTTP/1.1\r\nHost: a\r\nX: b\n\n",
				"POST /echo/x HTTP/1.1\nHost: a\nContent-Length: 2\n\nhi",
			} {
				for _, mode := range []string{"alone", "after a request", "pipelined behind one", "pipelined behind a body"} {
					after := mode != "alone"
					t.Run(fmt.Sprintf("%q, %s", head, mode), func(t *testing.T) {
						rc := f.dial(t)
						before := o.Requests()
						const first = "GET /echo/first HTTP/1.1\r\nHost: a\r\n\r\n"
						switch mode {
						case "after a request":
							rc.Send(t, first)
							if r, _ := rc.ReadResponse(t, "GET"); r.StatusCode != 200 {
								t.Fatalf("first request: %v", r)
							}
							rc.Send(t, head)
						case "pipelined behind one":
							rc.Send(t, first+head)
							soon(rc)
							if r, _ := rc.ReadResponse(t, "GET"); r.StatusCode != 200 {
								t.Fatalf("first request: %v", r)
							}
						case "pipelined behind a body":
							rc.Send(t, "POST /echo/first HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"+head)
							soon(rc)
							if r, _ := rc.ReadResponse(t, "POST"); r.StatusCode != 200 {
								t.Fatalf("first request: %v", r)
							}
						default:
							rc.Send(t, head)
						}
						soon(rc)
						r, body := rc.ReadResponse(t, "GET")
						if r.StatusCode != 400 || !strings.Contains(string(body), "bare LF") {
							t.Fatalf("answer %v %q, want 400 for a bare LF", r.Status, body)
						}
						if !rc.Closed(3 * time.Second) {
							t.Error("connection not closed after the refusal")
						}
						if n, want := o.Requests()-before, map[bool]int64{false: 0, true: 1}[after]; n != want {
							t.Errorf("backend got %d requests, want %d", n, want)
						}
					})
				}
			}

			t.Run("bare LFs in bodies, sent with the head or after it, are bodies", func(t *testing.T) {
				rc := f.dial(t)
				for i, parts := range [][]string{
					{"POST /echo/a HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\na\n\nb\n\n"},
					{"POST /echo/b HTTP/1.1\r\nHost: a\r\nContent-Length: 22\r\n\r\n", "GET / HTTP/1.1\nX: y\n\n\n"},
					{"POST /echo/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\n\n\nx\n\n\r\n0\r\n\r\n"},
					{"GET /echo/d HTTP/1.1\r\nHost: a\r\n\r\n"},
					// Pipelined: the POST's head came with the GET before it, so
					// the read of its body follows a request that ended.
					{"GET /echo/e HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo/f HTTP/1.1\r\nHost: a\r\nContent-Length: 22\r\n\r\n",
						"GET / HTTP/1.1\nX: y\n\n\n"},
					{"GET /echo/g HTTP/1.1\r\nHost: a\r\n\r\n"},
				} {
					for j, p := range parts {
						if j > 0 {
							time.Sleep(20 * time.Millisecond) // a read of its own
						}
						rc.Send(t, p)
					}
					soon(rc)
					for range strings.Count(parts[0], " HTTP/1.1\r\n") {
						if r, body := rc.ReadResponse(t, "POST"); r.StatusCode != 200 {
							t.Fatalf("request %d: %v %q", i+1, r.Status, body)
						}
					}
				}
			})
		})
	}
}

// fasthttp writes the answer to a request it could not read (a 408 for a
// head that stopped coming) without setting a write deadline: the last
// response's was in force, long past on a kept-alive connection by then,
// and the 408 was never written (the connection closed silently).
func TestATimedOutHeadOnAKeptAliveConnectionGetsIts408(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{})
	s := startGateway(t, strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {read_timeout: 600ms, write_timeout: 200ms}\nlog:", 1))
	rc := testnet.Dial(t, s.Addr().String())
	rc.Send(t, "GET /echo/first HTTP/1.1\r\nHost: a\r\n\r\n")
	if r, _ := rc.ReadResponse(t, "GET"); r.StatusCode != 200 {
		t.Fatalf("first request: %v", r)
	}
	time.Sleep(100 * time.Millisecond)
	rc.Send(t, "GET /echo/second HTTP/1.1\r\nHost: a\r\n") // and no more
	_ = rc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if r, _ := rc.ReadResponse(t, "GET"); r.StatusCode != 408 {
		t.Fatalf("status %d, want 408", r.StatusCode)
	}
}

// A chunked body whose trailer section ends with a bare LF: fasthttp takes
// the LF for a line end and read the bytes after it as the next request,
// which reached the backend, while a proxy in front that ends lines only at
// CRLF sees one request (HTTP Garden's bare-LF-in-trailer discrepancy). The
// request is refused at once, and nothing after it is read.
func TestABareLFInAChunkedTrailerIsRefused(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{})
	for _, f := range fronts(t, strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {read_timeout: 30s}\nlog:", 1)) {
		t.Run(f.name, func(t *testing.T) {
			const head = "POST /echo/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			const smuggled = "GET /echo/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
			for _, parts := range [][]string{
				{head + "0\r\n\n" + smuggled},
				{head + "0\r\nX-A: b\n\n" + smuggled},
				{head + "0\r\nX-A: b\r\n\n" + smuggled},
				// The body in reads of its own, as a proxy in front sends it.
				{head, "5\r\nhello\r\n", "0\r\n\n" + smuggled},
				{head + "5\r\nhel", "lo\r\n0\r\nX-A: b", "\n\n" + smuggled},
				{strings.Replace(head, "chunked", "CHUNKED", 1), "0\r\n\n" + smuggled}, // the coding in any case
			} {
				t.Run(fmt.Sprintf("%q", parts), func(t *testing.T) {
					rc := f.dial(t)
					before := o.Requests()
					for i, p := range parts {
						if i > 0 {
							time.Sleep(20 * time.Millisecond) // a read of its own
						}
						rc.Send(t, p)
					}
					_ = rc.SetReadDeadline(time.Now().Add(3 * time.Second))
					// The reason is "bare LF" or, when the trailer is the bare LF
					// alone, fasthttp's own "malformed" (it reads the failed read
					// before the trailer's first byte as its end).
					r, body := rc.ReadResponse(t, "POST")
					if r.StatusCode != 400 {
						t.Fatalf("answer %v %q, want 400", r.Status, body)
					}
					if !rc.Closed(3 * time.Second) {
						t.Error("connection not closed after the refusal")
					}
					if n := o.Requests() - before; n != 0 {
						t.Errorf("backend got %d requests, want none", n)
					}
				})
			}
		})
	}
}

// A head whose lines end in bare CRs waited for read_timeout (fasthttp looks
// for an LF), then got a 408; it is refused at once, as a bare CR anywhere
// else is.
func TestAHeadWithBareCRLineEndsIsRefusedAtOnce(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	for _, f := range fronts(t, strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {read_timeout: 30s}\nlog:", 1)) {
		t.Run(f.name, func(t *testing.T) {
			rc := f.dial(t)
			rc.Send(t, "GET /echo/x HTTP/1.1\rHost: a\r\r")
			_ = rc.SetReadDeadline(time.Now().Add(3 * time.Second))
			if r, body := rc.ReadResponse(t, "GET"); r.StatusCode != 400 {
				t.Fatalf("answer %v %q, want 400", r.Status, body)
			}
			if o.Requests() != 0 {
				t.Error("the backend got the request")
			}
		})
	}
}

// A pipelining client's next request can be buffered before the answer to
// the one before it goes out, and the reads of its body then came where the
// connection expected a head: "cd\ref" was taken for a head with bare CR
// line ends, and a body holding "get /x HTTP/1.1\nHost: y\n\n" for a bare-LF
// head (400s for valid requests). The connection counts a body's bytes and
// follows a chunked one's framing, so no read of a body is looked at as a
// head.
func TestThePipelinedBodiesReadsAreNeverTakenForHeads(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{})
	for _, f := range fronts(t, gatewayYAML(o.Addr())) {
		t.Run(f.name, func(t *testing.T) {
			const a = "GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\n"
			for _, parts := range [][]string{
				{a + "PUT /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nab", "cd\ref", "ghijk"},
				{a + "PUT /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n", "get /x HTTP/1.1\nHost: y\n\n", "0123456789abcde"},
				{a + "PUT /echo/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n11\r\nab", "cd\ref", "ghijklmnop\r\n0\r\n\r\n"},
				{a + "PUT /echo/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-A: 1\r\n", "X-B: 2\r", "\n\r\n"},
				// The first request's body ends in a later read, with the next
				// request behind it, whose body comes later still.
				{"PUT /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab",
					"cdPUT /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nab", "cd\ref", "ghijk"},
			} {
				t.Run(fmt.Sprintf("%q", parts), func(t *testing.T) {
					rc := f.dial(t)
					for i, p := range parts {
						if i > 0 {
							time.Sleep(30 * time.Millisecond) // a read of its own
						}
						rc.Send(t, p)
					}
					_ = rc.SetReadDeadline(time.Now().Add(3 * time.Second))
					for _, method := range []string{"PUT", "PUT"} { // a GET's and a PUT's are framed alike
						if r, body := rc.ReadResponse(t, method); r.StatusCode != 200 {
							t.Fatalf("%s: %v %q, want 200", method, r.Status, body)
						}
					}
				})
			}
		})
	}
}

// front is a way to reach a gateway's front listener.
type front struct {
	name string
	dial func(t testing.TB) *testnet.Conn
}

// fronts starts two gateways from yaml, one plain and one terminating TLS,
// for the checks on a client's bytes, which must hold on both.
func fronts(t *testing.T, yaml string) []front {
	t.Helper()
	plain := startGateway(t, yaml)
	sealed := startGateway(t, withTLS(t, yaml))
	return []front{
		{"plain", func(t testing.TB) *testnet.Conn { return testnet.Dial(t, plain.Addr().String()) }},
		{"TLS", func(t testing.TB) *testnet.Conn { return testnet.DialTLS(t, sealed.Addr().String()) }},
	}
}

// The trailer and head looks could be stepped around by how the bytes came
// (a differential probe against nginx and HAProxy found each): empty lines
// before the request line, a method that does not begin with a letter, a
// head in two writes or two TLS records, a head begun behind another
// request, a chunked request behind a Content-Length body whose bytes came
// in a later read. Each is refused now, whether its parts came apart or
// together, and what came before it is answered.
func TestTheLooksFollowHeadsHoweverTheyCome(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, origin.Options{})
	const head = "POST /echo/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	const smuggle = "5\r\nhello\r\n0\r\n\nGET /echo/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	const get = "GET /echo/g HTTP/1.1\r\nHost: a\r\n\r\n"
	const post = "POST /echo/p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
	for _, f := range fronts(t, strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {read_timeout: 30s}\nlog:", 1)) {
		t.Run(f.name, func(t *testing.T) {
			for _, c := range []struct {
				parts  []string
				before []string // the methods answered 200 before the refusal
			}{
				{[]string{"\r\n" + head + smuggle}, nil},
				{[]string{"\n" + head + smuggle}, nil},
				{[]string{strings.Replace(head, "POST", "_POST", 1) + smuggle}, nil},
				{[]string{head[:10], head[10:] + smuggle}, nil},
				{[]string{head[:len(head)-1], "\n" + smuggle}, nil},
				{[]string{get + head[:20], head[20:] + smuggle}, []string{"GET"}},
				{[]string{post, "hello" + head + smuggle}, []string{"POST"}},
				{[]string{post, "hel", "lo" + head[:30], head[30:] + smuggle}, []string{"POST"}},
				{[]string{"GET /echo/x HTTP/1.1\n", "Host: a\n\n"}, nil},               // a bare-LF head in pieces
				{[]string{get + "GET /echo/y HTTP/1.1\rHost: a\r\r"}, []string{"GET"}}, // bare CRs behind a request
			} {
				for _, apart := range []bool{true, false} {
					t.Run(fmt.Sprintf("%q apart=%v", c.parts, apart), func(t *testing.T) {
						rc := f.dial(t)
						before := o.Requests()
						for i, p := range c.parts {
							if i > 0 && apart {
								time.Sleep(30 * time.Millisecond) // a read of its own
							}
							rc.Send(t, p)
						}
						_ = rc.SetReadDeadline(time.Now().Add(3 * time.Second))
						for _, m := range c.before {
							if r, body := rc.ReadResponse(t, m); r.StatusCode != 200 {
								t.Fatalf("%s before the refusal: %v %q", m, r.Status, body)
							}
						}
						if r, body := rc.ReadResponse(t, "POST"); r.StatusCode != 400 {
							t.Fatalf("answer %v %q, want 400", r.Status, body)
						}
						if !rc.Closed(3 * time.Second) {
							t.Error("connection not closed after the refusal")
						}
						if n := o.Requests() - before; n != int64(len(c.before)) {
							t.Errorf("backend got %d requests, want %d", n, len(c.before))
						}
					})
				}
			}
		})
	}
}

// Bytes no request can begin with (a TLS handshake on the plain port, a
// NUL, a space) waited for read_timeout and got a 408; they get a 400 at
// once, as nginx and HAProxy answer.
func TestBytesThatCannotBeginARequestAreRefusedAtOnce(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	for _, f := range fronts(t, strings.Replace(gatewayYAML(o.Addr()), "log:", "server: {read_timeout: 30s}\nlog:", 1)) {
		t.Run(f.name, func(t *testing.T) {
			for _, raw := range []string{"\x16\x03\x01\x00\x05hello", "\x00\x01", " ", "\r\n\x80abc"} {
				t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
					rc := f.dial(t)
					rc.Send(t, raw)
					_ = rc.SetReadDeadline(time.Now().Add(3 * time.Second))
					if r, body := rc.ReadResponse(t, "GET"); r.StatusCode != 400 {
						t.Fatalf("answer %v %q, want 400", r.Status, body)
					}
				})
			}
		})
	}
}

// A ';' in a path is refused by default (a servlet container drops
// ";params" before matching, so "/admin;x" would reach /admin while the
// gateway routed another path); server.allow_matrix_params lets it through
// as it came, for backends that use them (a jsessionid).
func TestMatrixParamsAreRefusedUnlessAllowed(t *testing.T) {
	o := startOrigin(t, origin.Options{})
	const path = "/echo/login;jsessionid=ABC123/x;v=2"
	for _, allow := range []bool{false, true} {
		yaml := strings.Replace(gatewayYAML(o.Addr()), "log:", fmt.Sprintf("server: {allow_matrix_params: %v}\nlog:", allow), 1)
		s := startGateway(t, yaml)
		before := o.Requests()
		r, body := testnet.Do(t, s.Addr().String(), "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		switch {
		case !allow && (r.StatusCode != 400 || !strings.Contains(string(body), "semicolon")):
			t.Errorf("by default: %v %q, want 400 for the semicolon", r.Status, body)
		case !allow && o.Requests() != before:
			t.Error("by default: the backend got the request")
		case allow && r.StatusCode != 200:
			t.Errorf("allowed: %v %q, want 200", r.Status, body)
		case allow && lastReceived(t, o).RequestURI != path:
			t.Errorf("allowed: the backend got %q, want %q", lastReceived(t, o).RequestURI, path)
		}
	}
}

// withTLS adds a tls section with a new self-signed certificate to yaml.
func withTLS(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, "sluice")
	return strings.Replace(yaml, "log:", fmt.Sprintf("tls: {cert_file: %s, key_file: %s}\nlog:", certFile, keyFile), 1)
}
