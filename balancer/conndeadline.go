package balancer

import (
	"net"
	"time"

	"github.com/sluice-gw/sluice/internal/coarse"
)

// Upstream connections keep their deadlines coarsely (internal/coarse). An
// ordinary exchange puts the request's deadline on its connection for
// reading and writing, and a pipelined connection's reader puts each
// response's on it for reading. A connection remembers the deadline it
// settled last and keeps it while coarse.Due says so, with a sixteenth of
// the request's timeout as slack: the exchange may time out up to ~6%
// early, never late. (Being earlier than the new deadline by at most that,
// the kept one is still ahead when the request starts.)

// SetDeadline, SetReadDeadline and SetWriteDeadline pass through and make
// the next settle of that direction apply its deadline, whatever was
// remembered. They may be called from any goroutine (a pipelined
// connection's writer and reader each set one).
func (c *backendConn) SetDeadline(t time.Time) error {
	c.rdMoved.Store(true)
	c.wdMoved.Store(true)
	return c.TCPConn.SetDeadline(t)
}

func (c *backendConn) SetReadDeadline(t time.Time) error {
	c.rdMoved.Store(true)
	return c.TCPConn.SetReadDeadline(t)
}

func (c *backendConn) SetWriteDeadline(t time.Time) error {
	c.wdMoved.Store(true)
	return c.TCPConn.SetWriteDeadline(t)
}

// settleDeadline puts deadline (zero: none) in force for reading and
// writing, unless the one settled last in each direction is still there and
// earlier by no more than slack. Only the goroutine that owns the
// connection for an exchange calls it.
func (c *backendConn) settleDeadline(deadline time.Time, slack time.Duration) error {
	if !c.rdMoved.Load() && !c.wdMoved.Load() &&
		!coarse.Due(deadline, c.rd, slack) && !coarse.Due(deadline, c.wd, slack) {
		return nil
	}
	if err := c.TCPConn.SetDeadline(deadline); err != nil {
		return err
	}
	c.rd, c.wd = deadline, deadline
	c.rdMoved.Store(false)
	c.wdMoved.Store(false)
	return nil
}

// settleReadDeadline is settleDeadline for reading only: the goroutine that
// reads calls it, and nobody sets a read deadline while it reads.
func (c *backendConn) settleReadDeadline(deadline time.Time, slack time.Duration) error {
	if !c.rdMoved.Load() && !coarse.Due(deadline, c.rd, slack) {
		return nil
	}
	if err := c.TCPConn.SetReadDeadline(deadline); err != nil {
		return err
	}
	c.rd = deadline
	c.rdMoved.Store(false)
	return nil
}

// setExchangeDeadline puts an ordinary exchange's deadline on conn, timeout
// ahead: coarsely on a connection dialled by us (settleDeadline), exactly on
// any other.
func setExchangeDeadline(conn net.Conn, deadline time.Time, timeout time.Duration) error {
	if bc, ok := conn.(*backendConn); ok {
		return bc.settleDeadline(deadline, coarse.Slack(timeout))
	}
	return conn.SetDeadline(deadline)
}

// setResponseReadDeadline puts the read deadline of a pipelined response on
// conn, timeout ahead, coarsely like setExchangeDeadline.
func setResponseReadDeadline(conn net.Conn, deadline time.Time, timeout time.Duration) error {
	if bc, ok := conn.(*backendConn); ok {
		return bc.settleReadDeadline(deadline, coarse.Slack(timeout))
	}
	return conn.SetReadDeadline(deadline)
}
