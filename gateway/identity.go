package gateway

import (
	"bytes"
	"net"
	"net/netip"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// identify records who sent the request: the connection's peer and, from
// it, the client the request is for. Only a trusted proxy may speak for
// someone else; then the client is the right-most address of its
// X-Forwarded-For chain that is not itself a trusted proxy (every address
// left of that one was written by someone we do not trust, so it proves
// nothing). A chain made only of trusted proxies gives its left-most
// address; a chain with garbage in it stops at the garbage and gives the
// last address read before it (or the peer).
func (rq *request) identify() {
	rq.peer = clientPeer(rq.ctx)
	rq.client = rq.peer
	rq.trusted = rq.table.trustedPeer(rq.peer)
	if !rq.trusted {
		return
	}
	// Every copy of the field, in order: the right-most is the last line's
	// last element. rewriteRequest extends this same chain.
	rq.chain, _ = appendFieldValues(rq.chain[:0], &rq.ctx.Request.Header, []byte("x-forwarded-for"))
	list := rq.chain
	for len(list) > 0 {
		i := bytes.LastIndexByte(list, ',')
		elem := bytes.TrimSpace(list[i+1:])
		list = list[:max(i, 0)]
		a, ok := parseIP(elem)
		if !ok {
			return
		}
		rq.client = a
		if !rq.table.trustedPeer(a) {
			return
		}
	}
}

// parseIP parses a bare IPv4 or IPv6 address (no port, no zone) without
// allocating.
func parseIP(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255") || bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false
	}
	// netip.ParseAddr does not keep its argument (only a zone, refused
	// above, would be kept, and it is copied), so a string view of b is
	// safe and saves the copy a conversion would allocate.
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// clientPeer returns the IP of ctx's peer. A connection from the gateway's
// listener carries it from Accept: reading it from the connection's address
// each time cost half a percent of the CPU in a profile (cold memory behind
// three pointers). Others (TLS, tests without a connection) are asked.
func clientPeer(ctx *fasthttp.RequestCtx) netip.Addr {
	if c, ok := ctx.Conn().(*yieldConn); ok {
		return c.peer
	}
	return peerAddr(ctx.RemoteAddr())
}

// peerAddr returns the IP of the connection's peer without allocating.
func peerAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
