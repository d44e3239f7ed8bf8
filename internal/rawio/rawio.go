// Package rawio reads and writes a TCP socket with raw system calls, for
// the proxy's small, hot reads and writes on client and backend connections.
//
// A net.Conn's Read and Write go through syscall.Read and syscall.Write,
// which tell the Go scheduler that the call may block (entersyscall and
// exitsyscall, so that the processor can be handed to another thread). A
// socket of the runtime's netpoller is non-blocking: the call returns at
// once, with data or EAGAIN, and the bookkeeping is pure cost, a few percent
// of the CPU of a proxied request where four to six such calls are made.
// Socket calls through syscall.RawConn skip it: the callback makes the call
// with RawSyscall and, on EAGAIN, asks the runtime to wait for readiness
// (the netpoller parks the goroutine, exactly as for a net.Conn). Deadlines
// set on the connection apply as they do to its Read and Write.
//
// Large transfers are not meant for it: a raw call cannot be preempted, so
// a write of many megabytes would hold its thread while the kernel copies.
// Conn caps one call at MaxChunk bytes and loops.
package rawio

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxChunk is the most one raw read or write moves. 64 KiB is a
// millisecond-scale copy at worst; larger buffers take several calls.
const MaxChunk = 64 << 10

// Conn is the raw read and write side of one TCP connection. Its callbacks
// are made once, so a Read or Write allocates nothing. A Conn is used by
// one reader and one writer at a time, like the connection it belongs to.
type Conn struct {
	raw  syscall.RawConn
	addr net.Addr // for errors, as net names them

	rbuf    []byte
	rn      int
	rerr    error
	waited  bool // a read found nothing and waited for readiness
	readFn  func(fd uintptr) bool
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool

	// WriteThenRead's state (exchange): its own write fields, so that a
	// Write may run beside the wait that follows its write.
	step       exchangeStep
	xout       []byte
	xn         int
	xerr       error
	sent       func()
	probeN     int
	probeErr   error
	exchangeFn func(fd uintptr) bool
}

// New returns the raw side of c.
func New(c *net.TCPConn) (*Conn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	x := &Conn{raw: raw, addr: c.RemoteAddr()}
	x.readFn = x.read
	x.writeFn = x.write
	x.exchangeFn = x.exchange
	return x, nil
}

// Read reads into p as net.Conn's Read does: at least one byte, or an
// error (io.EOF when the peer has closed its side).
func (x *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > MaxChunk {
		p = p[:MaxChunk]
	}
	x.rbuf, x.rn, x.rerr, x.waited = p, 0, nil, false
	err := x.raw.Read(x.readFn)
	n, rerr := x.rn, x.rerr
	x.rbuf = nil
	if err != nil { // deadline, closed connection: already a *net.OpError
		return 0, err
	}
	return x.readResult(n, rerr)
}

// Waited reports whether the last Read found nothing at first and waited
// for the socket to be readable: false means what it returned was there
// when it was called.
func (x *Conn) Waited() bool { return x.waited }

// readResult is what Read returns for a read that got n bytes or failed
// with rerr.
func (x *Conn) readResult(n int, rerr error) (int, error) {
	switch {
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Addr: x.addr, Err: rerr}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is the callback of Read: false means "not ready, wait".
func (x *Conn) read(fd uintptr) bool {
	for {
		n, errno := recv(fd, x.rbuf)
		switch errno {
		case 0:
			x.rn = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			x.waited = true
			return false
		default:
			x.rerr = errno
			return true
		}
	}
}

// Write writes all of p, or returns the error that stopped it.
func (x *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	x.wbuf, x.wn, x.werr = p, 0, nil
	err := x.raw.Write(x.writeFn)
	n, werr := x.wn, x.werr
	x.wbuf = nil
	switch {
	case err != nil:
		return n, err
	case werr != nil:
		return n, &net.OpError{Op: "write", Net: "tcp", Addr: x.addr, Err: werr}
	}
	return n, nil
}

// write is the callback of Write: it returns false to wait for the socket
// to take more, true once everything is written or an error stopped it.
func (x *Conn) write(fd uintptr) bool {
	done, err := writeFrom(fd, x.wbuf, &x.wn)
	x.werr = err
	return done
}

// writeFrom writes buf[*off:] to fd, moving *off on: done is false when
// the socket would block, true once everything is written or err stopped it.
func writeFrom(fd uintptr, buf []byte, off *int) (done bool, err error) {
	for *off < len(buf) {
		chunk := buf[*off:]
		if len(chunk) > MaxChunk {
			chunk = chunk[:MaxChunk]
		}
		n, errno := send(fd, chunk)
		switch errno {
		case 0:
			*off += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false, nil
		default:
			return true, errno
		}
	}
	return true, nil
}

// recv and send are the socket's read and write, made as recvfrom and
// sendto with no address rather than read and write: the socket calls go
// straight to the socket layer, where read and write pass through the file
// layer first (its checks, accounting and notifications, nothing a socket
// needs). Profiled on a proxied GET (perf, the gateway pinned to one core),
// the kernel's layers between the system call and TCP went from 7.4% to
// 5.2% of the gateway's CPU. send asks for no SIGPIPE: a peer's close is
// the EPIPE error, without a signal for the runtime to handle.
func recv(fd uintptr, p []byte) (uintptr, syscall.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return n, errno
}

func send(fd uintptr, p []byte) (uintptr, syscall.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	return n, errno
}

// NotSentError is WriteThenRead's error when its probe found something to
// read before anything was written: nothing was.
type NotSentError struct {
	Unsolicited bool  // the peer had sent bytes; otherwise it had closed its side
	Err         error // the read's error, if it failed (io.EOF for a close)
}

func (e *NotSentError) Error() string {
	if e.Unsolicited {
		return "nothing sent: the peer had sent bytes nobody asked for"
	}
	return fmt.Sprintf("nothing sent: the connection was closed: %v", e.Err)
}

func (e *NotSentError) Unwrap() error { return e.Err }

// exchangeStep is where WriteThenRead's callback is.
type exchangeStep uint8

const (
	stepProbe   exchangeStep = iota // try a read before writing
	stepWrite                       // write out
	stepRead                        // out is written: read the answer
	stepPartial                     // the socket took part of out: WriteThenRead finishes it
	stepNotSent                     // the probe found something: nothing written
)

// WriteThenRead writes out and reads the answer into p (as Read does) with
// one wait for readiness and no read that fails with EAGAIN after the
// write, which usually finds nothing yet.
//
// It first tries a read, as a check that the connection is fit to carry a
// request: if that finds anything (bytes, the peer's close, an error),
// nothing is written and the error is a *NotSentError. On a fit
// connection the read fails with EAGAIN, out is written, and the wait
// begins at once. Waiting without another read is safe because the
// runtime's readiness was reset before that first read: whatever arrives
// after it is seen. (Without the first read it would not be: bytes that
// came before the reset, a peer that speaks first, would be waited for
// until the deadline.)
//
// When the socket does not take all of out at once, the rest is written
// as Write does, under the write deadline, and the answer read as Read
// does. An error other than a *NotSentError may come after out was
// written, in part or whole. It is a Read and a Write at once: it must not
// run beside either (WriteThenWait says when a Write may).
func (x *Conn) WriteThenRead(out, p []byte) (int, error) {
	n, _, err := x.writeThenRead(out, p, stepProbe, nil)
	return n, err
}

// WriteThenWait is WriteThenRead without the check: it writes out and
// waits for the answer at once, with no read first. It is for a peer that
// sends nothing until it has out, such as a client waiting for its
// response: bytes that arrived before the call may not be seen until the
// read deadline, since the runtime's readiness was reset after they came.
//
// sent, if not nil, is called once out is written whole, before the wait
// (inside the runtime's read callback: it must not block); a Write may run
// from then on. nsent is how much of out was written: less than all of it
// only with an error, which may come before anything was written (a
// deadline already past). out must not be empty.
func (x *Conn) WriteThenWait(out, p []byte, sent func()) (n, nsent int, err error) {
	if len(out) == 0 {
		return 0, 0, errors.New("rawio: WriteThenWait needs something to write")
	}
	return x.writeThenRead(out, p, stepWrite, sent)
}

// writeThenRead is WriteThenRead from first: stepProbe with the check,
// stepWrite without.
func (x *Conn) writeThenRead(out, p []byte, first exchangeStep, sent func()) (n, nsent int, err error) {
	if len(p) == 0 {
		return 0, 0, errors.New("rawio: WriteThenRead needs room to read into")
	}
	if len(p) > MaxChunk {
		p = p[:MaxChunk]
	}
	x.rbuf, x.rn, x.rerr, x.waited = p, 0, nil, false
	x.xout, x.xn, x.xerr, x.sent = out, 0, nil, sent
	x.step, x.probeN, x.probeErr = first, 0, nil
	err = x.raw.Read(x.exchangeFn)
	n, rerr, wn, werr, step := x.rn, x.rerr, x.xn, x.xerr, x.step
	x.rbuf, x.xout, x.sent = nil, nil, nil
	switch {
	case err != nil: // deadline, closed connection: already a *net.OpError
		return 0, wn, err
	case step == stepNotSent:
		if x.probeN > 0 {
			return 0, 0, &NotSentError{Unsolicited: true}
		}
		if x.probeErr != nil {
			return 0, 0, &NotSentError{Err: &net.OpError{Op: "read", Net: "tcp", Addr: x.addr, Err: x.probeErr}}
		}
		return 0, 0, &NotSentError{Err: io.EOF}
	case werr != nil:
		return 0, wn, &net.OpError{Op: "write", Net: "tcp", Addr: x.addr, Err: werr}
	case step == stepPartial:
		more, err := x.Write(out[wn:])
		if err != nil {
			return 0, wn + more, err
		}
		if sent != nil {
			sent()
		}
		n, err = x.Read(p)
		return n, len(out), err
	}
	n, err = x.readResult(n, rerr)
	return n, wn, err
}

// exchange is the callback of WriteThenRead: false means "wait for the
// socket to be readable".
func (x *Conn) exchange(fd uintptr) bool {
	switch x.step {
	case stepProbe:
		if x.read(fd) { // anything but EAGAIN: the connection is unfit
			x.step = stepNotSent
			x.probeN, x.probeErr = x.rn, x.rerr
			x.rn, x.rerr = 0, nil
			return true
		}
		x.step = stepWrite
		fallthrough
	case stepWrite:
		done, err := writeFrom(fd, x.xout, &x.xn)
		if !done {
			x.step = stepPartial // the rest waits for writability, not this wait
			return true
		}
		if err != nil {
			x.xerr = err
			return true
		}
		x.step = stepRead
		if x.sent != nil {
			x.sent()
		}
		return false
	default: // stepRead
		return x.read(fd)
	}
}
