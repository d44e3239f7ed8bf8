package gateway

import (
	"net"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

// requestFrom builds the pipeline state of a request from peer carrying the
// given X-Forwarded-For lines, under a table trusting trusted.
func requestFrom(peer string, trusted []string, xff ...string) *request {
	t := &Table{}
	for _, p := range trusted {
		t.trusted = append(t.trusted, netip.MustParsePrefix(p))
	}
	var req fasthttp.Request
	req.Header.SetRequestURI("/")
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(peer), Port: 4242}, nil)
	rq := newRequest().(*request)
	rq.ctx, rq.table = ctx, t
	return rq
}

func TestTheClientIsThePeerUnlessAProxyWeTrustSpeaksForIt(t *testing.T) {
	proxies := []string{"10.0.0.0/8", "2001:db8::/32"}
	tests := []struct {
		name   string
		peer   string
		xff    []string
		client string
	}{
		{"an untrusted peer's X-Forwarded-For is ignored", "203.0.113.7", []string{"1.2.3.4"}, "203.0.113.7"},
		{"a trusted peer without X-Forwarded-For is the client", "10.0.0.1", nil, "10.0.0.1"},
		{"a trusted peer speaks for the address it appended", "10.0.0.1", []string{"198.51.100.9"}, "198.51.100.9"},
		{"addresses left of the first untrusted one are not believed", "10.0.0.1", []string{"1.1.1.1, 198.51.100.9, 10.0.0.2"}, "198.51.100.9"},
		{"every copy of the field counts, the last one last", "10.0.0.1", []string{"1.1.1.1", "198.51.100.9, 10.0.0.2"}, "198.51.100.9"},
		{"a chain of trusted proxies only gives its left-most address", "10.0.0.1", []string{"10.9.9.9, 10.0.0.2"}, "10.9.9.9"},
		{"garbage stops the walk at the last address read", "10.0.0.1", []string{"unknown, 10.0.0.2"}, "10.0.0.2"},
		{"garbage next to the peer leaves the peer", "10.0.0.1", []string{"1.1.1.1, not-an-ip"}, "10.0.0.1"},
		{"an address with a port is garbage", "10.0.0.1", []string{"198.51.100.9:80"}, "10.0.0.1"},
		{"IPv6 clients behind an IPv6 proxy", "2001:db8::1", []string{"2001:db8:ffff::5, 2001:db8::2"}, "2001:db8:ffff::5"},
		{"IPv4-mapped addresses are taken as IPv4", "10.0.0.1", []string{"::ffff:198.51.100.9"}, "198.51.100.9"},
		{"spaces and empty elements are tolerated", "10.0.0.1", []string{" 198.51.100.9 ,  "}, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rq := requestFrom(tt.peer, proxies, tt.xff...)
			rq.identify()
			if got := rq.client.String(); got != tt.client {
				t.Fatalf("client = %s, want %s", got, tt.client)
			}
			if got := rq.peer.String(); got != netip.MustParseAddr(tt.peer).Unmap().String() {
				t.Fatalf("peer = %s, want %s", got, tt.peer)
			}
		})
	}
}
