package balancer

// Available reports whether policies may pick the backend now. Every policy
// asks this, never Healthy, so that what "available" means can grow (an
// in-flight cap) in this one place.
func (b *Backend) Available() bool { return b.Healthy() }
