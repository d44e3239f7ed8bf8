package balancer

// TEMPORARY: stand-ins for helper branches, deleted at merge.

import (
	"errors"
	"time"
)

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
