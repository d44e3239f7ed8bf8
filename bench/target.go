package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
)

// A pattern is a URL or body with placeholders, parsed once per run and
// rendered once per request into a buffer the connection reuses:
//
//	{seq}               a counter shared by the run: 1, 2, 3, ...
//	{rand:LO-HI}        a uniform integer in [LO, HI]
//	{zipf:S:N}          an integer in [1, N] drawn from a Zipf distribution of
//	                    exponent S > 1 (1.1 gives a realistic few hot keys)
//	{key}               a key of the scenario's key file, picked uniformly
//	{key:zipf:S}        a key of the key file, the first lines being the hottest
//
// Text between braces that has the shape of a placeholder (a lower-case name,
// then letters, digits, '.', '-' or ':') but is none of these is an error, so
// a typo fails the run before it starts rather than sending a literal "{sq}"
// a million times. Other braces, such as a JSON body's, are literal.
type pattern struct {
	src  string
	segs []segment
}

type segmentKind uint8

const (
	segLiteral segmentKind = iota
	segSeq
	segRand
	segZipf
	segKey
	segKeyZipf
)

type segment struct {
	kind   segmentKind
	lit    []byte
	lo, hi uint64  // segRand bounds; segZipf uses hi as N
	s      float64 // Zipf exponent
}

// parseTemplate parses src. keys is the number of keys available to {key}
// placeholders (0 when no key file was given).
func parseTemplate(src string, keys int) (*pattern, error) {
	t := &pattern{src: src}
	rest := src
	for len(rest) > 0 {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			t.segs = appendLiteral(t.segs, rest)
			break
		}
		if open > 0 {
			t.segs = appendLiteral(t.segs, rest[:open])
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 || !looksLikePlaceholder(rest[open+1:open+end]) {
			// Not a placeholder (a JSON object in a body, say): the brace is
			// literal.
			t.segs = appendLiteral(t.segs, "{")
			rest = rest[open+1:]
			continue
		}
		seg, err := parsePlaceholder(rest[open+1:open+end], keys)
		if err != nil {
			return nil, fmt.Errorf("template %q: %w", src, err)
		}
		t.segs = append(t.segs, seg)
		rest = rest[open+end+1:]
	}
	return t, nil
}

// looksLikePlaceholder reports whether the text between braces has the shape
// of a placeholder: a lower-case name and arguments made of letters, digits,
// '.', '-' and ':'. Such text must be a known placeholder, so that a typo is an
// error; anything else ({}, {"a":1}) is literal text.
func looksLikePlaceholder(p string) bool {
	if p == "" || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// appendLiteral adds text, merging it with a literal segment before it.
func appendLiteral(segs []segment, text string) []segment {
	if n := len(segs); n > 0 && segs[n-1].kind == segLiteral {
		segs[n-1].lit = append(segs[n-1].lit, text...)
		return segs
	}
	return append(segs, segment{kind: segLiteral, lit: []byte(text)})
}

func parsePlaceholder(p string, keys int) (segment, error) {
	parts := strings.Split(p, ":")
	switch {
	case p == "seq":
		return segment{kind: segSeq}, nil
	case parts[0] == "rand" && len(parts) == 2:
		lo, hi, ok := strings.Cut(parts[1], "-")
		l, err1 := strconv.ParseUint(lo, 10, 64)
		h, err2 := strconv.ParseUint(hi, 10, 64)
		if !ok || err1 != nil || err2 != nil || h < l {
			return segment{}, fmt.Errorf("{%s}: want {rand:LO-HI} with 0 <= LO <= HI", p)
		}
		return segment{kind: segRand, lo: l, hi: h}, nil
	case parts[0] == "zipf" && len(parts) == 3:
		s, err1 := strconv.ParseFloat(parts[1], 64)
		n, err2 := strconv.ParseUint(parts[2], 10, 64)
		if err1 != nil || err2 != nil || !(s > 1) || n < 1 {
			return segment{}, fmt.Errorf("{%s}: want {zipf:S:N} with S > 1 and N >= 1", p)
		}
		return segment{kind: segZipf, s: s, hi: n}, nil
	case p == "key" || (parts[0] == "key" && len(parts) == 3 && parts[1] == "zipf"):
		if keys == 0 {
			return segment{}, fmt.Errorf("{%s}: no keys: give the scenario a keys file", p)
		}
		if p == "key" {
			return segment{kind: segKey}, nil
		}
		s, err := strconv.ParseFloat(parts[2], 64)
		if err != nil || !(s > 1) {
			return segment{}, fmt.Errorf("{%s}: want {key:zipf:S} with S > 1", p)
		}
		return segment{kind: segKeyZipf, s: s, hi: uint64(keys)}, nil
	}
	return segment{}, fmt.Errorf("unknown placeholder {%s}", p)
}

// static reports whether the pattern renders the same bytes every time.
func (t *pattern) static() bool {
	for _, s := range t.segs {
		if s.kind != segLiteral {
			return false
		}
	}
	return true
}

// renderer holds what one connection needs to render templates: its own
// random source (no lock shared between connections), one Zipf generator per
// Zipf placeholder, and the run's shared sequence and keys.
type renderer struct {
	rng  *rand.Rand
	seq  *atomic.Uint64
	keys [][]byte
	zipf map[*segment]*rand.Zipf
}

func newRenderer(seed uint64, seq *atomic.Uint64, keys [][]byte) *renderer {
	return &renderer{
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		seq:  seq,
		keys: keys,
		zipf: make(map[*segment]*rand.Zipf),
	}
}

// prepare builds the Zipf generators of t, so that render never allocates.
func (r *renderer) prepare(t *pattern) {
	for i := range t.segs {
		s := &t.segs[i]
		if s.kind == segZipf || s.kind == segKeyZipf {
			r.zipf[s] = rand.NewZipf(r.rng, s.s, 1, s.hi-1)
		}
	}
}

// render appends one expansion of t to dst. It allocates only when dst has
// to grow, which stops after the first few requests.
func (r *renderer) render(dst []byte, t *pattern) []byte {
	for i := range t.segs {
		s := &t.segs[i]
		switch s.kind {
		case segLiteral:
			dst = append(dst, s.lit...)
		case segSeq:
			dst = strconv.AppendUint(dst, r.seq.Add(1), 10)
		case segRand:
			v := r.rng.Uint64() // {rand:0-18446744073709551615}: the span overflows to 0
			if span := s.hi - s.lo + 1; span != 0 {
				v = s.lo + r.rng.Uint64N(span)
			}
			dst = strconv.AppendUint(dst, v, 10)
		case segZipf:
			dst = strconv.AppendUint(dst, r.zipf[s].Uint64()+1, 10)
		case segKey:
			dst = append(dst, r.keys[r.rng.IntN(len(r.keys))]...)
		case segKeyZipf:
			dst = append(dst, r.keys[r.zipf[s].Uint64()]...)
		}
	}
	return dst
}

// requestSpec is one kind of request a run sends: a scenario entry, or the
// single request built from -url, -method, -H and -body.
type requestSpec struct {
	name    string
	weight  int
	method  string
	url     *pattern // absolute: scheme://host/path?query
	headers [][2]string
	body    *pattern // nil when the request has no body
}

// target splits an absolute URL into what a fasthttp.HostClient needs. The
// scheme and host must be literal; placeholders belong in the path and query.
type target struct {
	tls  bool
	host string // host:port as dialled
}

func parseTarget(rawURL string) (target, error) {
	var t target
	rest, ok := strings.CutPrefix(rawURL, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(rawURL, "https://"); !ok {
			return t, fmt.Errorf("url %q: want http:// or https://", rawURL)
		}
		t.tls = true
	}
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	if host == "" {
		return t, fmt.Errorf("url %q: no host", rawURL)
	}
	if strings.ContainsAny(host, "{}") {
		return t, fmt.Errorf("url %q: placeholders are allowed in the path and query only", rawURL)
	}
	if !strings.Contains(strings.TrimPrefix(host, "["), "]:") && strings.Count(host, ":") != 1 {
		if t.tls {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	t.host = host
	return t, nil
}

// parseHeader splits "Name: value".
func parseHeader(h string) ([2]string, error) {
	name, value, ok := strings.Cut(h, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return [2]string{}, fmt.Errorf("header %q: want \"Name: value\"", h)
	}
	return [2]string{name, strings.TrimSpace(value)}, nil
}

// errNoURL is returned when neither a URL nor a scenario says what to load.
var errNoURL = errors.New("no target: give a url or a scenario")
