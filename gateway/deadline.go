package gateway

import (
	"time"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/internal/coarse"
)

// Client connections apply their deadlines lazily and coarsely.
//
// fasthttp moves a keep-alive connection's read deadline twice per request
// (now+idle_timeout before waiting for the next request, now+read_timeout
// once its first byte is in) and its write deadline once. Each move on a
// net.Conn reads the clock twice, modifies a runtime timer and takes the fd
// lock: about 4% of the gateway's CPU in a profile, for deadlines that move
// by microseconds at a time. So the connection only records the deadline it
// is asked for and settles it at the next Read or Write, where it keeps the
// one already in force when that is earlier by no more than the slack
// (internal/coarse): a
// timeout may fire up to the slack early, never late. The slack is a
// sixteenth of the smallest server timeout (625ms with the defaults), so no
// timeout fires more than ~6% early. Recording instead of applying also
// drops the read deadline fasthttp sets after the first byte when the whole
// request arrived with it, as small requests do: no read happens under it.
//
// A recorded deadline takes effect at the next Read or Write, not while one
// is blocked: every Set*Deadline must come from the goroutine that reads or
// writes, as fasthttp's server loop does. SetDeadline ends that: fasthttp
// calls it before it hands a connection to a hijack handler (or another
// protocol), whose code may set a deadline from one goroutine to interrupt a
// Read blocked in another. From then on every deadline is applied at once.
//
// Every way of reading or writing through yieldConn must settle first: a
// ReadFrom or WriteTo added to it (for splice, say) must call settleWrite or
// settleRead before it moves a byte, or it runs under a stale deadline.

// deadlineSlack is how much earlier than asked a client connection's
// deadline may fire: a sixteenth of the smallest server timeout that is on,
// 0 (exact) with none.
func deadlineSlack(s config.Server) time.Duration {
	smallest := time.Duration(0)
	for _, d := range []time.Duration{s.ReadTimeout, s.WriteTimeout, s.IdleTimeout} {
		if d > 0 && (smallest == 0 || d < smallest) {
			smallest = d
		}
	}
	return coarse.Slack(smallest)
}

// deadline is one direction's deadline: the one asked for and the one in
// force on the socket (zero: none).
type deadline struct {
	want, set time.Time
}

// due reports whether want must be put in force before the next read or
// write (coarse.Due).
func (d *deadline) due(slack time.Duration) bool { return coarse.Due(d.want, d.set, slack) }

// SetDeadline applies t to both directions at once and makes every later
// deadline apply at once too (see the comment at the top of this file).
func (c *yieldConn) SetDeadline(t time.Time) error {
	// Before a hijack: the handshake's answer goes out, and nothing
	// written from now on is held.
	if err := c.flushHeld(); err != nil {
		return err
	}
	c.mu.Lock()
	c.hold = false
	c.mu.Unlock()
	c.direct = true
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline records t for the next Read, or applies it at once after
// SetDeadline.
func (c *yieldConn) SetReadDeadline(t time.Time) error {
	if c.direct {
		return c.Conn.SetReadDeadline(t)
	}
	c.rd.want = t
	return nil
}

// SetWriteDeadline records t for the next Write, or applies it at once after
// SetDeadline.
func (c *yieldConn) SetWriteDeadline(t time.Time) error {
	if c.direct {
		return c.Conn.SetWriteDeadline(t)
	}
	c.wd.want = t
	return nil
}

// settleRead puts the recorded read deadline in force if it is due.
func (c *yieldConn) settleRead() error {
	if c.direct || !c.rd.due(c.slack) {
		return nil
	}
	if err := c.Conn.SetReadDeadline(c.rd.want); err != nil {
		return err
	}
	c.rd.set = c.rd.want
	return nil
}

// settleWrite puts the recorded write deadline in force if it is due.
func (c *yieldConn) settleWrite() error {
	if c.direct || !c.wd.due(c.slack) {
		return nil
	}
	if err := c.Conn.SetWriteDeadline(c.wd.want); err != nil {
		return err
	}
	c.wd.set = c.wd.want
	return nil
}
