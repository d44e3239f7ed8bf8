package balancer

import (
	"net"
	"runtime"
	"time"
)

// write is the writer goroutine.
func (c *pipeConn) write() {
	defer close(c.writerDone)
	defer c.idleTmr.Stop()
	for {
		var w *pipeWork
		select {
		case w = <-c.queue: // queued while the last batch went out
		default:
			select {
			case w = <-c.queue:
			case <-c.idleTmr.C:
				if c.inflight.Load() == 0 {
					c.retire()
				}
				c.idleTmr.Reset(c.p.maxIdle)
				continue
			case <-c.stop:
				return
			}
		}
		c.batch = append(c.batch[:0], w)
		idle := c.written.Load() == c.answered.Load()
		c.collect(idle)
		if !c.send(idle) {
			return
		}
		c.idleTmr.Reset(c.p.maxIdle)
	}
}

// collect adds to the batch what is queued once the other runnable
// goroutines (the gateway's handlers) have had a turn to queue theirs. While
// earlier requests are unanswered it waits up to BatchDelay for more, until
// the connection's depth is used or everything written is answered; an idle
// connection writes at once.
func (c *pipeConn) collect(idle bool) {
	runtime.Gosched()
	c.drainQueue()
	if idle || c.p.opts.BatchDelay <= 0 {
		return
	}
	select {
	case <-c.kick: // a stale token from an earlier idle moment
	default:
	}
	if c.written.Load() == c.answered.Load() {
		return
	}
	depth := uint64(c.p.opts.Depth)
	c.kickTmr.Reset(c.p.opts.BatchDelay)
	defer c.kickTmr.Stop()
	for c.written.Load()-c.answered.Load()+uint64(len(c.batch)) < depth {
		select {
		case w := <-c.queue:
			c.batch = append(c.batch, w)
			c.drainQueue()
		case <-c.kick:
			return
		case <-c.kickTmr.C:
			return
		case <-c.stop:
			return
		}
	}
}

func (c *pipeConn) drainQueue() {
	for {
		select {
		case w := <-c.queue:
			c.batch = append(c.batch, w)
		default:
			return
		}
	}
}

// send writes the batch, and reports whether the connection goes on. On a
// connection that was idle it first checks, as the ordinary transport does
// before reusing a connection, that the backend has neither sent anything
// nor closed it; the batch is never written on one that it did.
func (c *pipeConn) send(idle bool) bool {
	// Requests whose callers left are dropped here, unwritten. The write
	// may take as long as the latest deadline: one request close to its
	// own must not fail the others.
	n := 0
	var last time.Time
	for _, w := range c.batch {
		if w.abandoned() {
			c.p.release(w)
			c.unreserve()
			continue
		}
		if w.deadline.After(last) {
			last = w.deadline
		}
		c.batch[n] = w
		n++
	}
	c.batch = c.batch[:n]
	if n == 0 {
		return true
	}
	if idle && c.used {
		// The reader is waiting on sent, not reading: the socket is ours.
		_ = c.conn.SetReadDeadline(last)
		if state := connStateOf(c.conn); state != connClean {
			var reason error
			if state == connStray {
				c.p.tr.strayBytes.Add(1)
				reason = errPipeStray
			}
			c.shutdown(reason) // first: the reader must not read for these
			c.handBack()
			return false
		}
	}
	c.used = true
	_ = c.conn.SetWriteDeadline(last)
	for _, w := range c.batch {
		_, _ = c.bw.Write(w.wire.b) // a failure shows again at Flush
	}
	// Into sent before the flush: the reader must know what it awaits
	// before any response can arrive.
	c.written.Add(uint64(n))
	c.handBack()
	if err := c.bw.Flush(); err != nil {
		// The backend closed or reset the connection (or shutdown did, or
		// it stopped reading). No response byte of these has been read:
		// each is replayed.
		var reason error
		if !c.stopping() && c.pipelined() && !isTimeout(err) {
			reason = errPipeClosed
		}
		c.shutdown(reason)
		return false
	}
	return true
}

// handBack moves the batch to sent, in order (finalize settles it there
// when the connection is ending). It never blocks: sent holds Depth.
func (c *pipeConn) handBack() {
	for i, w := range c.batch {
		c.sent <- w
		c.batch[i] = nil
	}
	c.batch = c.batch[:0]
}

// connStateOf peeks at conn; a connection not dialled by us passes.
func connStateOf(conn net.Conn) connState {
	bc, ok := conn.(*backendConn)
	if !ok {
		return connClean
	}
	return bc.check()
}
