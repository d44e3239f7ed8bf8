package origin

import (
	"net"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// GET /ws is a WebSocket echo endpoint, for the gateway's Upgrade tunnels:
// every text or binary message comes back as it was sent, pings are
// answered with pongs and a close with a close (the library's defaults). A
// text message "!close" makes the origin start the close handshake itself
// (status 1000, reason "bye"), so that a test can see a close coming from
// the backend's side.
//
// /ws?fail=200 answers the handshake with a plain 200 instead of switching
// protocols, as a backend that does not speak WebSocket on that path would.
//
// fasthttp/websocket (the fasthttp organisation's maintained port of
// gorilla/websocket) is used because it upgrades a fasthttp RequestCtx
// directly; gorilla's Upgrader wants a net/http ResponseWriter.

// wsMaxMessage bounds one message read by the echo: the tests' largest is
// a few MiB.
const wsMaxMessage = 16 << 20

// wsCloseCommand is the text message that makes the origin close.
const wsCloseCommand = "!close"

var wsUpgrader = websocket.FastHTTPUpgrader{
	ReadBufferSize:  4 << 10,
	WriteBufferSize: 4 << 10,
	// A test backend: any Origin may connect.
	CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
}

func (o *Server) serveWebSocket(ctx *fasthttp.RequestCtx) {
	if string(ctx.QueryArgs().Peek("fail")) == "200" {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"websocket":false}` + "\n")
		return
	}
	// The upgrader answers a request that is not a valid handshake itself
	// (400, 405); there is nothing more to do then.
	_ = wsUpgrader.Upgrade(ctx, o.echoWebSocket)
}

// echoWebSocket runs on the hijacked connection until either side closes
// or the origin does.
func (o *Server) echoWebSocket(c *websocket.Conn) {
	raw := c.NetConn()
	if u, ok := raw.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	// The connection stays tracked until the echo is done with it, so that
	// Close closes it and waits for this goroutine.
	defer o.conns.remove(raw)
	c.SetReadLimit(wsMaxMessage)
	for {
		kind, msg, err := c.ReadMessage()
		if err != nil {
			return // closed by the client (the close was answered), or broken
		}
		if kind == websocket.TextMessage && string(msg) == wsCloseCommand {
			bye := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
			_ = c.WriteControl(websocket.CloseMessage, bye, time.Now().Add(time.Second))
			// Wait for the client's answering close, briefly.
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}
		if err := c.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}
