package router

import (
	"net"
	"syscall"
)

// heldWriteConn is an upstream connection that can hold a request back
// and send it in the read that waits for its answer: the write and then
// the wait on the poller, with no read before it. A plain Write then Read
// costs a read that finds nothing yet (the server has not answered), as
// Go's poller reads once before it waits; that read was one syscall of
// five per proxied request. It is safe on an upstream because an HTTP/1.1
// server sends nothing unasked: whatever it sends (an answer, or a reset
// for a connection it had closed) arrives after the request is written,
// so the poller's readiness, reset when the read starts, sees it.
type heldWriteConn struct {
	net.Conn
	rc   syscall.RawConn // nil: no descriptor to use (TLS, or not a socket)
	hold bool            // the next Write is held back for the next Read
	held []byte
}

func newHeldWriteConn(c net.Conn) *heldWriteConn {
	hc := &heldWriteConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok && rawWriteThenRead {
		hc.rc, _ = sc.SyscallConn()
	}
	return hc
}

func (c *heldWriteConn) Write(p []byte) (int, error) {
	if c.hold && c.rc != nil && len(c.held) == 0 {
		c.hold = false
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if err := c.sendHeld(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *heldWriteConn) Read(p []byte) (int, error) {
	if len(c.held) == 0 || len(p) == 0 {
		return c.Conn.Read(p)
	}
	n, done, err := writeThenRead(c.rc, &c.held, p)
	if done {
		return n, err
	}
	// The socket took only part of the request (its buffer is full) or
	// the raw read failed before writing: finish as usual.
	if err := c.sendHeld(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// sendHeld writes what is held back, if anything.
func (c *heldWriteConn) sendHeld() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	return err
}
