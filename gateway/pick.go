package gateway

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/balancer"
)

// choosePool settles which pool serves the request: the route's own, or,
// on a sharded route, the shard its key maps to. It also reads the key a
// consistent_hash pool balances on. It runs before the request is rewritten,
// while the target still is the client's. A sharded request without its
// key is answered 400: sending it to an arbitrary shard could read or write
// another customer's data.
func (s *Server) choosePool(rq *request) bool {
	r := rq.route
	rp := r.pools[0]
	if r.sharded {
		key, ok := rq.appendKey(rq.hashKey[:0], r.shardKey)
		rq.hashKey = key
		if !ok {
			s.writeError(rq, fasthttp.StatusBadRequest, "missing shard key")
			return false
		}
		rp = r.pools[balancer.JumpHash(shardMix(balancer.HashKey(key)), len(r.pools))]
	}
	rq.pool = rp
	switch {
	case !rp.hashed:
		rq.hashKey = rq.hashKey[:0]
	case r.sharded && rp.hashKey == r.shardKey:
		// The key read for the shard is the pool's key too.
	default:
		key, ok := rq.appendKey(rq.hashKey[:0], rp.hashKey)
		if !ok {
			key = key[:0] // no key: the policy spreads such requests by load
		}
		rq.hashKey = key
	}
	return true
}

// shardMix decorrelates the shard choice from the ring position a
// consistent_hash pool computes from the same key (splitmix64's finaliser):
// otherwise the keys of one shard would crowd one arc of its pool's ring.
func shardMix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// appendKey appends the part of the request that ks names to dst, and
// reports whether the request has it (an empty value counts as absent).
// Query values are compared raw, as the client wrote them: decoding could
// map two spellings to one key on one instance and not on another.
func (rq *request) appendKey(dst []byte, ks balancer.KeySource) ([]byte, bool) {
	var v []byte
	h := &rq.ctx.Request.Header
	switch ks.Kind {
	case balancer.KeyHeader:
		v = h.Peek(ks.Name)
	case balancer.KeyCookie:
		v = h.Cookie(ks.Name)
	case balancer.KeyQuery:
		v = queryValue(rq.query, ks.Name)
	case balancer.KeyPath:
		v = pathSegment(rq.path, ks.Segment)
	case balancer.KeyClient:
		if !rq.client.IsValid() {
			return dst, false
		}
		return rq.client.AppendTo(dst), true
	}
	return append(dst, v...), len(v) > 0
}

// queryValue returns the raw value of the first name=value pair of query
// named name, or nil.
func queryValue(query []byte, name string) []byte {
	for len(query) > 0 {
		pair := query
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			query = nil
		}
		k, v, _ := bytes.Cut(pair, []byte{'='})
		if string(k) == name {
			return v
		}
	}
	return nil
}

// pathSegment returns segment n (from 1) of a normalised path, or nil.
func pathSegment(path []byte, n int) []byte {
	for i := 1; len(path) > 0; i++ {
		if path[0] == '/' {
			path = path[1:]
		}
		seg := path
		if j := bytes.IndexByte(path, '/'); j >= 0 {
			seg, path = path[:j], path[j:]
		} else {
			path = nil
		}
		if i == n {
			return seg
		}
	}
	return nil
}

// poolHashKey returns where a consistent_hash pool built from o reads its
// key; hashed is false for the other policies.
func poolHashKey(o balancer.Options) (ks balancer.KeySource, hashed bool, err error) {
	if o.Policy != balancer.PolicyConsistentHash {
		return balancer.KeySource{}, false, nil
	}
	ks, err = balancer.ParseKeySource(o.HashKey)
	return ks, err == nil, err
}
