package origin

import (
	"errors"
	"fmt"
	"time"
)

// Options configures a synthetic order backend. The zero value is a
// fast, well-behaved origin on a free loopback port.
type Options struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:0", a free
	// loopback port; Server.Addr reports the one chosen.
	Addr string
	// Latency is the delay added before each /orders and /echo answer.
	// Default none. The delay waits on a timer, never on a shared lock, so a
	// slow request does not hold up other connections.
	Latency Latency
	// PayloadBytes is the approximate size of a GET /orders/{id} body: the
	// order is padded with a "padding" field up to this many bytes. Default
	// 300, the size of a small JSON API object. A value below the unpadded
	// order (about 200 bytes) gives the unpadded order.
	PayloadBytes int
	// CacheControl, when set, is sent as Cache-Control on 200 answers to
	// GET /orders/{id}, e.g. "max-age=5". Default: no Cache-Control.
	CacheControl string
	// ErrorRate is the fraction, in [0,1], of /orders requests answered 500
	// at random. Default 0.
	ErrorRate float64
	// Fault is the fault mode the origin starts in (see Fault). Default
	// FaultNone. Change it later with Server.SetFault or the control endpoint.
	Fault Fault
	// Name is sent as X-Origin on every response so a test can tell which
	// backend of a pool answered. Default: the listening host:port.
	Name string
	// SlowBodyInterval is the pause between body bytes under FaultSlowBody.
	// Default 100ms, which turns a 300-byte body into a 30s trickle: far
	// beyond any sane gateway read timeout.
	SlowBodyInterval time.Duration
	// ReadTimeout bounds reading one request. Default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response. It starts after the handler
	// returns, so it does not count the added latency. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Default 60s, longer than the gateway's pool keeps idle
	// connections, so the gateway, not the origin, decides when they close.
	IdleTimeout time.Duration
}

// Defaults of Options.
const (
	defaultAddr         = "127.0.0.1:0"
	defaultPayloadBytes = 300
	defaultSlowBody     = 100 * time.Millisecond
	defaultReadTimeout  = 10 * time.Second
	defaultWriteTimeout = 10 * time.Second
	defaultIdleTimeout  = 60 * time.Second
)

// withDefaults returns o with zero fields replaced by their defaults, or an
// error naming the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = defaultAddr
	}
	if o.PayloadBytes == 0 {
		o.PayloadBytes = defaultPayloadBytes
	}
	if o.SlowBodyInterval == 0 {
		o.SlowBodyInterval = defaultSlowBody
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = defaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	switch {
	case o.PayloadBytes < 0:
		return o, fmt.Errorf("payload bytes: negative value %d", o.PayloadBytes)
	case !(o.ErrorRate >= 0 && o.ErrorRate <= 1):
		return o, fmt.Errorf("error rate: %v is outside [0,1]", o.ErrorRate)
	case !o.Fault.Valid():
		return o, fmt.Errorf("fault: unknown mode %q (want one of %s)", string(o.Fault), faultModeNames)
	case o.SlowBodyInterval < 0 || o.ReadTimeout < 0 || o.WriteTimeout < 0 || o.IdleTimeout < 0:
		return o, errors.New("timeouts and intervals must not be negative")
	}
	if err := o.Latency.Validate(); err != nil {
		return o, err
	}
	return o, nil
}
