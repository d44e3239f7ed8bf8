package balancer

import (
	"net"
	"time"
)

// Upstream connections keep their deadlines coarsely. An ordinary exchange
// puts the request's deadline on its connection for reading and writing,
// and a pipelined connection's reader puts each response's on it for
// reading. Moving a deadline reads the clock, modifies a runtime timer per
// direction and takes the fd lock, every request, for a deadline that moved
// by the microseconds between two requests. So a connection remembers the
// deadline it settled last and keeps it while it is earlier than the new one
// by no more than the slack, a sixteenth of the request's timeout: the
// exchange may time out up to ~6% early, never late. (Being earlier than the
// new deadline by at most a sixteenth of the timeout, the kept one is still
// ahead when the request starts.)

// deadlineSlackDivisor sets the slack: a request's timeout over this.
const deadlineSlackDivisor = 16

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
		!deadlineDue(deadline, c.rd, slack) && !deadlineDue(deadline, c.wd, slack) {
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
	if !c.rdMoved.Load() && !deadlineDue(deadline, c.rd, slack) {
		return nil
	}
	if err := c.TCPConn.SetReadDeadline(deadline); err != nil {
		return err
	}
	c.rd = deadline
	c.rdMoved.Store(false)
	return nil
}

// deadlineDue reports whether want must replace set, the deadline in force
// (zero: none): it is earlier, it is none while one is set, or it is later
// by more than slack.
func deadlineDue(want, set time.Time, slack time.Duration) bool {
	switch {
	case want.IsZero():
		return !set.IsZero()
	case set.IsZero():
		return true
	}
	gap := want.Sub(set) // monotonic readings: no clock read
	return gap < 0 || gap > slack
}

// setExchangeDeadline puts an ordinary exchange's deadline on conn, timeout
// ahead: coarsely on a connection dialled by us (settleDeadline), exactly on
// any other.
func setExchangeDeadline(conn net.Conn, deadline time.Time, timeout time.Duration) error {
	if bc, ok := conn.(*backendConn); ok {
		return bc.settleDeadline(deadline, timeout/deadlineSlackDivisor)
	}
	return conn.SetDeadline(deadline)
}

// setResponseReadDeadline puts the read deadline of a pipelined response on
// conn, timeout ahead, coarsely like setExchangeDeadline.
func setResponseReadDeadline(conn net.Conn, deadline time.Time, timeout time.Duration) error {
	if bc, ok := conn.(*backendConn); ok {
		return bc.settleReadDeadline(deadline, timeout/deadlineSlackDivisor)
	}
	return conn.SetReadDeadline(deadline)
}
