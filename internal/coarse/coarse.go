// Package coarse is the rule by which the gateway moves connection
// deadlines coarsely, on client connections (gateway) and backend ones
// (balancer) alike.
//
// Moving a deadline on a net.Conn reads the clock, modifies a runtime timer
// and takes the fd lock, and a proxy would do it several times per request
// for deadlines that move by microseconds. So a connection keeps the
// deadline in force while it is earlier than the one asked for by no more
// than a slack, a sixteenth of the timeout: a timeout may fire up to ~6%
// early, never late.
package coarse

import "time"

// Slack is how much earlier than asked a deadline of timeout may fire.
func Slack(timeout time.Duration) time.Duration { return timeout / 16 }

// Due reports whether want must replace set, the deadline in force (zero:
// none): it is earlier, it is none while one is set, or it is later by more
// than slack.
func Due(want, set time.Time, slack time.Duration) bool {
	switch {
	case want.IsZero():
		return !set.IsZero()
	case set.IsZero():
		return true
	}
	gap := want.Sub(set) // monotonic readings: no clock read
	return gap < 0 || gap > slack
}
