package ratelimit

import (
	"sync"
	"testing"
	"time"
)

func TestLocalTokenBucket(t *testing.T) {
	c := newClock()
	l := mustLocal(t, Options{Name: "per_client", Rate: "10/s", Burst: 3, Now: c.Now}, nil)
	key := []byte("10.0.0.1")

	steps := []struct {
		name    string
		advance time.Duration
		want    Decision
	}{
		{"a new client starts with a full burst", 0,
			Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAfter: 100 * time.Millisecond}},
		{"the burst is spent request by request", 0,
			Decision{Allowed: true, Limit: 3, Remaining: 1, ResetAfter: 200 * time.Millisecond}},
		{"the last token of the burst passes", 0,
			Decision{Allowed: true, Limit: 3, Remaining: 0, ResetAfter: 300 * time.Millisecond}},
		{"an empty bucket refuses and says when to retry", 0,
			Decision{Allowed: false, Limit: 3, Remaining: 0, ResetAfter: 300 * time.Millisecond, RetryAfter: 100 * time.Millisecond}},
		{"a refused request takes nothing", 50 * time.Millisecond,
			Decision{Allowed: false, Limit: 3, Remaining: 0, ResetAfter: 250 * time.Millisecond, RetryAfter: 50 * time.Millisecond}},
		{"one token refills at the rate", 50 * time.Millisecond,
			Decision{Allowed: true, Limit: 3, Remaining: 0, ResetAfter: 300 * time.Millisecond}},
		{"a bucket never fills beyond its burst", time.Hour,
			Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAfter: 100 * time.Millisecond}},
	}
	for _, s := range steps {
		c.Advance(s.advance)
		got := l.Allow(key)
		if !closeDecision(got, s.want) {
			t.Fatalf("%s: Allow = %+v, want %+v", s.name, got, s.want)
		}
	}
	if st := l.Stats(); st.Allowed != 5 || st.Denied != 2 || st.Keys != 1 {
		t.Errorf("Stats = %+v, want 5 allowed, 2 denied, 1 key", st)
	}
}

// closeDecision compares decisions, durations to within a microsecond
// (float rounding).
func closeDecision(a, b Decision) bool {
	near := func(x, y time.Duration) bool { return (x - y).Abs() <= time.Microsecond }
	return a.Allowed == b.Allowed && a.Limit == b.Limit && a.Remaining == b.Remaining &&
		near(a.ResetAfter, b.ResetAfter) && near(a.RetryAfter, b.RetryAfter)
}

func TestLocalKeysAreIndependent(t *testing.T) {
	c := newClock()
	l := mustLocal(t, Options{Name: "per_client", Rate: "1/m", Burst: 1, Now: c.Now}, nil)
	if !l.Allow([]byte("a")).Allowed || l.Allow([]byte("a")).Allowed {
		t.Fatal("client a: want one request allowed, then refused")
	}
	if !l.Allow([]byte("b")).Allowed {
		t.Error("client b is refused because of client a")
	}
}

func TestLocalState(t *testing.T) {
	c := newClock()
	l := mustLocal(t, Options{Name: "per_client", Rate: "1/s", Burst: 2, Now: c.Now}, nil)
	t.Run("an unknown client is shown with a full allowance and not created", func(t *testing.T) {
		got := l.State([]byte("nobody"))
		if !got.Allowed || got.Remaining != 2 || got.Limit != 2 {
			t.Errorf("State = %+v, want allowed with 2 remaining", got)
		}
		if n := l.Stats().Keys; n != 0 {
			t.Errorf("State created a key: %d keys", n)
		}
	})
	t.Run("a known client's state is read without taking a token", func(t *testing.T) {
		l.Allow([]byte("c"))
		l.Allow([]byte("c"))
		for range 2 {
			got := l.State([]byte("c"))
			if got.Allowed || got.Remaining != 0 || got.RetryAfter != time.Second {
				t.Errorf("State = %+v, want refused, 0 remaining, retry after 1s", got)
			}
		}
		c.Advance(time.Second)
		if !l.Allow([]byte("c")).Allowed {
			t.Error("State took the token that refilled")
		}
	})
}

func TestLocalEviction(t *testing.T) {
	t.Run("idle clients are evicted once their bucket is full again", func(t *testing.T) {
		c := newClock()
		l := mustLocal(t, Options{Name: "idle", Rate: "10/s", Burst: 10, Now: c.Now}, nil)
		for i := range 10_000 {
			l.Allow(keyN(i))
		}
		c.Advance(time.Second) // every bucket is full: evicting them grants nothing
		for i := range 10_000 {
			l.Allow(keyN(100_000 + i))
		}
		if n := l.Stats().Keys; n > 12_000 {
			t.Errorf("%d keys after 10,000 idle and 10,000 new ones, want the idle ones mostly gone", n)
		}
		if ev := l.Stats().Evictions; ev < 8_000 {
			t.Errorf("%d evictions, want most of the 10,000 idle clients", ev)
		}
	})
	t.Run("MaxKeys bounds the clients tracked", func(t *testing.T) {
		c := newClock()
		l := mustLocal(t, Options{Name: "busy", Rate: "1/h", Burst: 5, MaxKeys: 2560, Now: c.Now}, nil)
		for i := range 20_000 {
			l.Allow(keyN(i))
			c.Advance(time.Millisecond)
		}
		if n := l.Stats().Keys; n > 2560 {
			t.Errorf("%d keys, want at most MaxKeys 2560", n)
		}
	})
	t.Run("an evicted client gets back at most one burst", func(t *testing.T) {
		c := newClock()
		l := mustLocal(t, Options{Name: "churn", Rate: "1/h", Burst: 3, MaxKeys: 256, Now: c.Now}, nil)
		victim := []byte("victim")
		admitted := 0
		for round := range 50 {
			for range 5 {
				if l.Allow(victim).Allowed {
					admitted++
				}
			}
			for i := range 2000 { // push the victim out
				l.Allow(keyN(round*2000 + i))
			}
		}
		// Without eviction the victim would get its burst of 3 once; each
		// eviction may grant one burst more, never more than that.
		if admitted <= 3 || admitted > 3*50 {
			t.Errorf("victim admitted %d times over 50 rounds of eviction, want more than 3 and at most %d", admitted, 3*50)
		}
	})
}

func TestLocalConcurrentClients(t *testing.T) {
	c := newClock()
	l := mustLocal(t, Options{Name: "shared", Rate: "1/h", Burst: 100, Now: c.Now}, nil)
	var wg sync.WaitGroup
	allowed := make([]int, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if l.Allow([]byte("one client")).Allowed {
					allowed[g]++
				}
				l.Allow(keyN(g))
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range allowed {
		total += n
	}
	if total != 100 {
		t.Errorf("8 goroutines sharing one client got %d requests through a burst of 100", total)
	}
	if st := l.Stats(); st.Allowed != 100+8*100 || st.Denied != 700 {
		t.Errorf("Stats = %+v, want 900 allowed, 700 denied", st)
	}
}
