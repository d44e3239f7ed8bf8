package gateway

import (
	"crypto/tls"
	"net"
)

// tlsListener terminates TLS on the gateway's client connections. A
// yieldConn below it carries the records; the plaintext above it is looked
// at as a plain connection's bytes are (tlsConn), so a TLS client gets the
// same framing checks: tls.NewListener would leave yieldConn looking at
// ciphertext, where it can judge nothing.
type tlsListener struct {
	yieldListener
	config *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	y, err := l.accept()
	if err != nil {
		return nil, err
	}
	y.sealed = true
	return &tlsConn{Conn: tls.Server(y, l.config), y: y}, nil
}

// tlsConn is a TLS client connection whose reads yield the plaintext after
// yieldConn has looked at it (yieldConn.look): its refusals, its body
// watch and its heads. Everything else is the tls.Conn's, which fasthttp
// finds by its methods (RequestCtx.IsTLS).
type tlsConn struct {
	*tls.Conn
	y *yieldConn
}

func (c *tlsConn) Read(p []byte) (int, error) {
	if err := c.y.refusal(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	return c.y.look(p, n), err
}
