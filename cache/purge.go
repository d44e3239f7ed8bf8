package cache

import (
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Purged counts the entries a purge removed. Local is this instance's L1;
// Redis is L2, where a response with Vary counts once per variant. Other
// instances apply the purge to their L1 when the broadcast reaches them,
// asynchronously: their counts are not known here. The same response is
// usually in L1 and L2, so the two counts overlap; neither counts Vary index
// entries.
type Purged struct {
	Local int
	Redis int
}

// Purge kinds, as broadcast.
const (
	purgeURL    = 'u'
	purgePrefix = 'p'
	purgeTag    = 't'
)

// Invalidate removes every stored response of a URL (RFC 9111 §4.4: after
// a successful unsafe request, for its target and its same-host Location and
// Content-Location). host and target are as the request had them (target is
// the normalised path with an optional "?query"). L1 is purged before it
// returns, with the count; L2 and the other instances are told through the
// write queue, so the request does not wait for Redis (a full queue drops
// it, counted in WriteDrops).
func (t *Tiered) Invalidate(host, target []byte) int {
	path, query, _ := bytes.Cut(target, []byte("?"))
	url := AppendURL(make([]byte, 0, len(host)+len(target)), host, path, query)
	if t.l2 == nil {
		return t.l1.purgeURL(url)
	}
	// Queued before L1 forgets the URL: a read of L2 in between would find
	// nothing under way and put the old entry back into L1.
	t.l2.invalidate(url, t.message(purgeURL, url))
	return t.l1.purgeURL(url)
}

// PurgeURL removes every stored response of url ("host/path?query", the
// form AppendURL builds; the host is compared without case and both
// schemes go) from both tiers and every instance.
func (t *Tiered) PurgeURL(ctx context.Context, url string) (Purged, error) {
	u := normalisePurgeURL(url)
	return t.purge(ctx, purgeURL, u,
		func() int { return t.l1.purgeURL(u) },
		func(ctx context.Context) (int, error) { return t.l2.purgeURL(ctx, u) })
}

// PurgePrefix removes every stored response whose URL starts with prefix:
// a whole host ("api.example.com", every path of it) or a host and a path
// prefix ("api.example.com/orders/"). The host is never a prefix: "api.ex"
// matches nothing. In L1 it scans every entry; in Redis it scans the host's
// URL index (see doc.go).
func (t *Tiered) PurgePrefix(ctx context.Context, prefix string) (Purged, error) {
	p := normalisePurgeURL(prefix)
	return t.purge(ctx, purgePrefix, p,
		func() int { return t.l1.purgeMatching(prefixMatcher(p)) },
		func(ctx context.Context) (int, error) { return t.l2.purgePrefix(ctx, p) })
}

// PurgeTag removes every stored response whose Surrogate-Key had tag.
func (t *Tiered) PurgeTag(ctx context.Context, tag string) (Purged, error) {
	g := []byte(tag)
	return t.purge(ctx, purgeTag, g,
		func() int { return t.l1.purgeMatching(tagMatcher(g)) },
		func(ctx context.Context) (int, error) { return t.l2.purgeTag(ctx, g) })
}

// purge runs one purge on L1, then L2, then broadcasts it. An error says the
// Redis part failed: L2 and the other instances may still hold entries.
func (t *Tiered) purge(ctx context.Context, kind byte, arg []byte, local func() int,
	remote func(context.Context) (int, error)) (Purged, error) {
	p := Purged{Local: local()}
	if t.l2 == nil {
		return p, nil
	}
	n, err := t.l2.purge(ctx, remote)
	p.Redis = n
	if err != nil {
		return p, err
	}
	_, err = t.l2.purge(ctx, func(ctx context.Context) (int, error) {
		return 0, t.l2.c.Publish(ctx, t.o.PurgeChannel, t.message(kind, arg)).Err()
	})
	return p, err
}

// prefixMatcher matches the entries of prefix's host whose path and query
// start with prefix's path.
func prefixMatcher(prefix []byte) func(*Entry) bool {
	host, path := splitURL(prefix)
	return func(e *Entry) bool {
		h, p := splitURL(e.url)
		return bytes.Equal(h, host) && bytes.HasPrefix(p, path)
	}
}

// tagMatcher matches the entries tagged tag.
func tagMatcher(tag []byte) func(*Entry) bool {
	return func(e *Entry) bool { return e.hasTag(tag) }
}

// normalisePurgeURL puts a purge's "host[:port]/path?query" in the form
// AppendURL builds: the host in lower case, without its port or a trailing
// dot (routingHost). Entries are filed under the routing host, and a URL
// copied from a client's request line usually has a port
// ("127.0.0.1:8080/orders/42"): kept, it would purge nothing and still
// answer 200.
func normalisePurgeURL(s string) []byte {
	host, rest := s, ""
	if i := strings.IndexByte(s, '/'); i >= 0 {
		host, rest = s[:i], s[i:]
	}
	h := routingHost([]byte(host))
	b := make([]byte, 0, len(h)+len(rest))
	for _, ch := range h {
		b = append(b, lower(ch))
	}
	return append(b, rest...)
}

// routingHost returns the host of an authority as the gateway routes and
// files entries by it: without a ":digits" port and without a trailing dot
// ("Shop.Example.:8080" → "Shop.Example"; case is left to the caller). An
// IPv6 literal keeps its brackets ("[::1]:8080" → "[::1]"); one without
// brackets is left alone, since its last colon is not a port's.
func routingHost(a []byte) []byte {
	if i := bytes.LastIndexByte(a, ':'); i >= 0 && bytes.IndexByte(a[i:], ']') < 0 &&
		(a[0] == '[' || bytes.Count(a, []byte(":")) == 1) && allDigits(a[i+1:]) {
		a = a[:i]
	}
	if len(a) > 1 && a[len(a)-1] == '.' {
		a = a[:len(a)-1]
	}
	return a
}

// message is the broadcast form of a purge: "1 <instance> <kind> <arg>".
func (t *Tiered) message(kind byte, arg []byte) string {
	return "1 " + t.l2.id + " " + string(kind) + " " + string(arg)
}

// applyRemote applies a purge another instance broadcast to this L1.
func (t *Tiered) applyRemote(payload string) {
	parts := strings.SplitN(payload, " ", 4)
	if len(parts) != 4 || parts[0] != "1" || len(parts[2]) != 1 {
		return
	}
	if parts[1] == t.l2.id {
		return // our own, already applied
	}
	t.c.purgesReceived.Add(1)
	arg := []byte(parts[3])
	switch parts[2][0] {
	case purgeURL:
		// Under way while L1 forgets the URL, and recorded after: an L2
		// read may predate the purge, and finish later.
		h := Hash(arg)
		t.l2.inval.start(h)
		t.l1.purgeURL(arg)
		t.l2.inval.finish(h)
	case purgePrefix:
		t.l1.purgeMatching(prefixMatcher(arg))
	case purgeTag:
		t.l1.purgeMatching(tagMatcher(arg))
	}
}

// subscribe applies broadcast purges to L1 until Close. A purge sent while
// this instance was cut off from Redis is lost to it, so every time the
// subscription is re-established after a disconnection L1 is cleared: an
// instance may serve a purged entry only while it cannot reach Redis.
// ready is closed once the first subscription is confirmed, or after a
// short wait if Redis does not answer.
func (t *Tiered) subscribe(ready chan struct{}) {
	defer close(t.subDone)
	ps := t.l2.c.Subscribe(context.Background(), t.o.PurgeChannel)
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions()
	wait := time.NewTimer(max(200*time.Millisecond, 10*t.o.RedisTimeout))
	defer wait.Stop()
	confirmed := false
	for {
		select {
		case <-t.stopSub:
			if ready != nil {
				close(ready)
			}
			return
		case <-wait.C:
			if ready != nil {
				close(ready)
				ready = nil
			}
		case msg, ok := <-ch:
			if !ok {
				return
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				if confirmed || ready == nil {
					t.l1.clear()
					t.c.l1Cleared.Add(1)
				}
				confirmed = true
				if ready != nil {
					close(ready)
					ready = nil
				}
			case *redis.Message:
				t.applyRemote(m.Payload)
			}
		}
	}
}
