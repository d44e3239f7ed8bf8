package cache

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is an injected clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// origin is a backend as the cache sees it: a Filler that answers with
// respond, counting calls and optionally taking its time.
type origin struct {
	calls   atomic.Int32
	delay   time.Duration
	respond func(stale *Entry, call int32) *Response
	stales  chan *Entry // when not nil, receives the stale argument of each call
}

func (o *origin) Fill(stale *Entry) *Response {
	n := o.calls.Add(1)
	if o.stales != nil {
		o.stales <- stale
	}
	if o.delay > 0 {
		time.Sleep(o.delay)
	}
	return o.respond(stale, n)
}

// answer returns an origin that always gives status, body and header kv.
func answer(status int, body string, kv ...string) *origin {
	return &origin{respond: func(*Entry, int32) *Response {
		return &Response{Status: status, Header: fields(kv...), Body: []byte(body)}
	}}
}

// newTestTiered builds an L1-only cache on clock c.
func newTestTiered(t testing.TB, c *fakeClock, edit func(*Options)) *Tiered {
	t.Helper()
	o := Options{Memory: 8 << 20, Now: c.Now, LockTimeout: 2 * time.Second}
	if edit != nil {
		edit(&o)
	}
	l1, err := NewLocal(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l1.Close)
	tc, err := NewTiered(l1, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return tc
}

// get runs one lookup of r.
func get(tc *Tiered, r *Request, f Filler) Result {
	return tc.Get(r, AppendKey(nil, r), f)
}

// eventually polls cond every 10ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
