package testnet

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a tiny DNS server on loopback UDP for tests of name resolution: it
// answers A, AAAA and SRV questions from records the test sets, and changes,
// while it runs. Unknown names get NXDOMAIN; with SetFailing every question
// gets SERVFAIL, as from a broken upstream resolver.
type DNS struct {
	conn net.PacketConn

	mu      sync.Mutex // guards what follows
	hosts   map[string][]netip.Addr
	srv     map[string][]net.SRV
	failing bool
}

// StartDNS starts a DNS server on a free loopback port until the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dns: %v", err)
	}
	d := &DNS{conn: conn, hosts: map[string][]netip.Addr{}, srv: map[string][]net.SRV{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return d
}

// Addr is the server's host:port.
func (d *DNS) Addr() string { return d.conn.LocalAddr().String() }

// Resolver returns a resolver that asks only this server.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.Addr())
	}}
}

// SetHost makes name resolve to addrs (IPv4 ones answer A, IPv6 ones
// AAAA); no addrs leaves the name known with an empty answer.
func (d *DNS) SetHost(name string, addrs ...string) {
	list := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		list = append(list, netip.MustParseAddr(a))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hosts[fqdn(name)] = list
}

// SetSRV makes name answer SRV with records.
func (d *DNS) SetSRV(name string, records ...net.SRV) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[fqdn(name)] = records
}

// SetFailing makes every answer SERVFAIL (true) or normal again (false).
func (d *DNS) SetFailing(failing bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failing = failing
}

func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

func (d *DNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, ok := d.answer(buf[:n]); ok {
			_, _ = d.conn.WriteTo(out, from)
		}
	}
}

// answer builds the reply to one query; ok is false for a packet that is
// not a query.
func (d *DNS) answer(query []byte) (reply []byte, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	name := strings.ToLower(q.Name.String())
	hosts, isHost := d.hosts[name]
	srv, isSRV := d.srv[name]
	switch {
	case d.failing:
		return finish(dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeServerFailure}, q, nil)
	case !isHost && !isSRV:
		return finish(dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeNameError}, q, nil)
	}
	hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	var answers []func(*dnsmessage.Builder) error
	switch q.Type {
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		for _, a := range hosts {
			switch {
			case q.Type == dnsmessage.TypeA && a.Is4():
				answers = append(answers, func(b *dnsmessage.Builder) error {
					return b.AResource(hdr, dnsmessage.AResource{A: a.As4()})
				})
			case q.Type == dnsmessage.TypeAAAA && a.Is6():
				answers = append(answers, func(b *dnsmessage.Builder) error {
					return b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: a.As16()})
				})
			}
		}
	case dnsmessage.TypeSRV:
		for _, r := range srv {
			target := dnsmessage.MustNewName(fqdn(r.Target))
			answers = append(answers, func(b *dnsmessage.Builder) error {
				return b.SRVResource(hdr, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target})
			})
		}
	}
	return finish(dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true}, q, answers)
}

// finish writes a reply with header h, the question q and answers.
func finish(h dnsmessage.Header, q dnsmessage.Question, answers []func(*dnsmessage.Builder) error) ([]byte, bool) {
	b := dnsmessage.NewBuilder(nil, h)
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	for _, a := range answers {
		if a(&b) != nil {
			return nil, false
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
