package balancer

import (
	"fmt"
	"net"
	"time"
)

// Dial opens a connection of its own to the backend for an exchange that
// will not give it back: an Upgrade handshake, whose connection becomes a
// tunnel once the backend switches protocols. It is never one of the pooled
// keep-alive connections and never joins them, so a tunnel cannot hold a
// place that ordinary requests wait for, and closing idle connections on a
// reload leaves it alone. The pool's connect timeout applies, or the time
// left before deadline when that is shorter. Errors wrap ErrConnect or
// ErrTimeout and are counted like Do's; as with Do, the place in flight is
// Pool.Acquire's and Release's.
func (b *Backend) Dial(deadline time.Time) (net.Conn, error) {
	b.requests.Add(1)
	left := time.Until(deadline)
	if left <= 0 {
		return nil, b.classify(fmt.Errorf("%w: no time left to connect", ErrTimeout))
	}
	c, err := dial(b.addr, time.Duration(b.connectTimeout.Load()), left)
	if err != nil {
		return nil, b.classify(err)
	}
	// The stray-byte check of backendConn is for pooled connections; a
	// tunnel gets the plain TCP connection, whose ReadFrom and WriteTo can
	// splice.
	if bc, ok := c.(*backendConn); ok {
		return bc.TCPConn, nil
	}
	return c, nil
}
