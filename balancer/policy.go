package balancer

import "fmt"

// Policy chooses a backend for a request. Pick returns nil when no backend is
// available; it skips unhealthy backends. key identifies the client or
// request for policies that hash it; the current ones ignore it. A Policy is
// used concurrently by every request of its pool and may keep state for it,
// so each pool has its own.
type Policy interface {
	Pick(backends []*Backend, key []byte) *Backend
}

// NewPolicy returns a fresh policy for the name used in Options.Policy.
func NewPolicy(name string) (Policy, error) {
	switch name {
	case PolicyRoundRobin:
		return &RoundRobin{}, nil
	case PolicyWeightedRoundRobin:
		return &WeightedRoundRobin{}, nil
	case PolicyLeastConn:
		return &LeastConn{}, nil
	default:
		return nil, fmt.Errorf("unknown policy %q", name)
	}
}
