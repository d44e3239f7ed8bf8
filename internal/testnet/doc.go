// Package testnet is what the project's tests share to exercise code over
// real loopback networking: fasthttp servers on free ports, a hand-written
// HTTP/1.1 backend for answers no well-behaved server gives, a raw client
// connection for requests no well-behaved client sends, polling helpers,
// a redis-server started per test, and a corpus of malformed requests.
//
// Only tests import it (DESIGN.md); a test in this package checks that no
// other package does, so none of it is compiled into the sluice binary.
//
// Everything started here is stopped by t.Cleanup. Every wait has a
// deadline that is generous (the machine may be shared and slow under
// -race) and is only ever reached when the test fails.
package testnet
