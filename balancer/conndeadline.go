package balancer

import (
	"net"
	"time"
)

// An ordinary upstream exchange puts the request's deadline on its
// connection for reading and writing. Moving a deadline reads the clock,
// modifies two runtime timers and takes the fd lock, every request, for a
// deadline that moved by the microseconds between two requests. So a
// connection remembers the deadline ready put in force and keeps it while it
// is earlier than the new one by no more than the slack, a sixteenth of the
// request's timeout: the exchange may time out up to ~6% early, never late.

// deadlineSlackDivisor sets the slack: a request's timeout over this.
const deadlineSlackDivisor = 16

// SetDeadline, SetReadDeadline and SetWriteDeadline pass through and make
// the next settle apply its deadline, whatever was remembered: the
// connection's deadlines are then not what settle last put in force. They
// may be called from any goroutine (a pipelined connection's reader and
// writer each set one).
func (c *backendConn) SetDeadline(t time.Time) error {
	c.moved.Store(true)
	return c.TCPConn.SetDeadline(t)
}

func (c *backendConn) SetReadDeadline(t time.Time) error {
	c.moved.Store(true)
	return c.TCPConn.SetReadDeadline(t)
}

func (c *backendConn) SetWriteDeadline(t time.Time) error {
	c.moved.Store(true)
	return c.TCPConn.SetWriteDeadline(t)
}

// settleDeadline puts deadline (zero: none) in force for reading and
// writing, unless the one settle put in force last is still there and
// earlier by no more than slack. Only the goroutine that owns the
// connection for an exchange calls it.
func (c *backendConn) settleDeadline(deadline time.Time, slack time.Duration) error {
	if !c.moved.Load() && !deadlineDue(deadline, c.deadline, slack) {
		return nil
	}
	if err := c.TCPConn.SetDeadline(deadline); err != nil {
		return err
	}
	c.deadline = deadline
	c.moved.Store(false)
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

// setExchangeDeadline puts an exchange's deadline on conn, coarsely on a
// connection dialled by us (settleDeadline), exactly on any other.
func setExchangeDeadline(conn net.Conn, deadline time.Time, timeout time.Duration) error {
	if bc, ok := conn.(*backendConn); ok {
		return bc.settleDeadline(deadline, timeout/deadlineSlackDivisor)
	}
	return conn.SetDeadline(deadline)
}
