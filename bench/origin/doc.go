// Package origin is the synthetic order backend (Start, `sluice origin`): an
// order service built on fasthttp, used as the backend in the gateway's
// tests, its demo and benchmarks. It imports nothing of the project.
//
// GET /orders/{id} is allocation-free: the JSON is built into the response's
// reused body buffer rather than with encoding/json, and each order depends
// only on its id, so every origin of a pool, and every cached copy, agrees
// byte for byte.
//
// Misbehaviour is chosen with a Fault mode that can be switched at run time
// through Server.SetFault or POST /_origin/fault. Faults that no correct HTTP
// server can produce (hangs, trickled or truncated bodies, garbage, and extra
// response bytes for RFC 9112 §9.3 response-mixing tests) take the
// connection over with fasthttp's Hijack and write the bytes themselves.
//
// GET /download and GET /events (stream.go) are large and long-lived
// answers for streaming through the gateway: a pattern of any size sent from
// one shared block, and a server-sent event stream.
//
// GET /ws is a WebSocket echo (ws.go) for the gateway's tunnels; /ws?fail=200
// answers its handshake with a plain 200.
//
// Every request except the control endpoint is counted, and the last 64 are
// kept with header names and order exactly as sent (Server.Received), so
// tests can assert what a gateway forwarded and whether anything reached the
// backend at all. The origin tracks its own connections so that Close can
// end hung ones at once, which fasthttp's Shutdown cannot do.
package origin
