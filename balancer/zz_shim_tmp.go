package balancer

// TEMPORARY: stand-ins for helper branches, deleted at merge.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

type KeyKind int

const (
	KeyHeader KeyKind = iota + 1
	KeyCookie
	KeyQuery
	KeyPath
	KeyClient
)

type KeySource struct {
	Kind    KeyKind
	Name    string
	Segment int
}

func ParseKeySource(s string) (KeySource, error) {
	if s == "client" {
		return KeySource{Kind: KeyClient}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return KeySource{}, fmt.Errorf("invalid key %q", s)
	}
	switch kind {
	case "header":
		return KeySource{Kind: KeyHeader, Name: name}, nil
	case "cookie":
		return KeySource{Kind: KeyCookie, Name: name}, nil
	case "query":
		return KeySource{Kind: KeyQuery, Name: name}, nil
	case "path":
		n, err := strconv.Atoi(name)
		if err != nil || n < 1 {
			return KeySource{}, fmt.Errorf("invalid key %q", s)
		}
		return KeySource{Kind: KeyPath, Segment: n}, nil
	}
	return KeySource{}, fmt.Errorf("invalid key %q", s)
}

func HashKey(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func JumpHash(key uint64, buckets int) int {
	var b, j int64 = -1, 0
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

var (
	ErrNoBackend  = errors.New("no healthy backend")
	ErrOverloaded = errors.New("pool overloaded")
)

func (p *Pool) Acquire(key []byte, not *Backend, _ time.Time) (*Backend, error) {
	var b *Backend
	if not == nil {
		b = p.Pick(key)
	} else {
		b = p.PickExcept(key, not)
	}
	if b == nil {
		return nil, ErrNoBackend
	}
	return b, nil
}

func (p *Pool) Release(b *Backend, o Outcome) { b.Observe(o) }

type RetryBudget struct{}

func NewRetryBudget(ratio float64, minPerSecond int) *RetryBudget { return &RetryBudget{} }
func (*RetryBudget) Request()                                     {}
func (*RetryBudget) TryRetry() bool                               { return true }
