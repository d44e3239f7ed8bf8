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
	readFn  func(fd uintptr) bool
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
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
	x.rbuf, x.rn, x.rerr = p, 0, nil
	err := x.raw.Read(x.readFn)
	n, rerr := x.rn, x.rerr
	x.rbuf = nil
	switch {
	case err != nil: // deadline, closed connection: already a *net.OpError
		return 0, err
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
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&x.rbuf[0])), uintptr(len(x.rbuf)))
		switch errno {
		case 0:
			x.rn = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
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
	for x.wn < len(x.wbuf) {
		chunk := x.wbuf[x.wn:]
		if len(chunk) > MaxChunk {
			chunk = chunk[:MaxChunk]
		}
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&chunk[0])), uintptr(len(chunk)))
		switch errno {
		case 0:
			x.wn += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			x.werr = errno
			return true
		}
	}
	return true
}
