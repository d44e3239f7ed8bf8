package cache

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func newTestLocal(t testing.TB, memory int64) *Local {
	t.Helper()
	l, err := NewLocal(Options{Memory: memory, MaxEntry: min(memory, DefaultMaxEntry)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// entryFor builds a fresh entry for url with key parts making it one of
// several variants.
func entryFor(url, variant string, kv ...string) *Entry {
	h := fields(append([]string{"Cache-Control", "max-age=60"}, kv...)...)
	m := ParseMeta(200, h, t0, t0, t0)
	return newEntry([]byte(url+"#"+variant), []byte(url), 200, h, []byte("body of "+url),
		nil, surrogateKeys(h), &m, Lifetime(&m, Heuristic{}))
}

func TestLocalGetSetDel(t *testing.T) {
	l := newTestLocal(t, 1<<20)
	e := entryFor("h/a", "1")
	l.Set(e, time.Minute)
	l.Wait()
	if got := l.Get(e.Key); got != e {
		t.Fatalf("Get after Set = %v, want the entry", got)
	}
	if got := l.Get([]byte("other")); got != nil {
		t.Fatalf("Get of another key = %v", got)
	}
	l.Del(e)
	l.Wait()
	if got := l.Get(e.Key); got != nil {
		t.Fatalf("Get after Del = %v", got)
	}
}

func TestLocalHashCollisionIsAMiss(t *testing.T) {
	l := newTestLocal(t, 1<<20)
	l.hash = func([]byte) uint64 { return 42 } // every key collides
	a := entryFor("h/a", "1")
	l.Set(a, time.Minute)
	l.Wait()
	if got := l.Get([]byte("h/b#1")); got != nil {
		t.Fatalf("a lookup of another key with the same hash returned %q's entry", got.Key)
	}
	if l.mismatches.Load() != 1 {
		t.Errorf("mismatches = %d, want 1", l.mismatches.Load())
	}
	if got := l.Get(a.Key); got != a {
		t.Errorf("the entry's own key no longer finds it")
	}
}

func TestLocalPurges(t *testing.T) {
	l := newTestLocal(t, 1<<20)
	entries := []*Entry{
		entryFor("h/orders/1", "de", "Surrogate-Key", "orders order-1"),
		entryFor("h/orders/1", "fr", "Surrogate-Key", "orders order-1"),
		entryFor("h/orders/2", "de", "Surrogate-Key", "orders order-2"),
		entryFor("h/users/1", "de", "Surrogate-Key", "users"),
		entryFor("other/orders/1", "de"),
	}
	fill := func() {
		l.clear()
		for _, e := range entries {
			l.Set(e, time.Minute)
		}
		l.Wait()
	}
	present := func() (keys []string) {
		for _, e := range entries {
			if l.Get(e.Key) != nil {
				keys = append(keys, string(e.Key))
			}
		}
		return keys
	}
	tests := []struct {
		name  string
		purge func() int
		n     int
		left  []string
	}{
		{"by URL, every variant", func() int { return l.purgeURL([]byte("h/orders/1")) }, 2,
			[]string{"h/orders/2#de", "h/users/1#de", "other/orders/1#de"}},
		{"by prefix of host and path", func() int {
			return l.purgeMatching(func(e *Entry) bool { return bytes.HasPrefix(e.url, []byte("h/orders/")) })
		}, 3, []string{"h/users/1#de", "other/orders/1#de"}},
		{"by tag", func() int { return l.purgeMatching(func(e *Entry) bool { return e.hasTag([]byte("order-1")) }) }, 2,
			[]string{"h/orders/2#de", "h/users/1#de", "other/orders/1#de"}},
		{"by a URL nothing has", func() int { return l.purgeURL([]byte("h/none")) }, 0,
			[]string{"h/orders/1#de", "h/orders/1#fr", "h/orders/2#de", "h/users/1#de", "other/orders/1#de"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fill()
			if n := tt.purge(); n != tt.n {
				t.Errorf("purged %d, want %d", n, tt.n)
			}
			l.Wait()
			if got := present(); fmt.Sprint(got) != fmt.Sprint(tt.left) {
				t.Errorf("left %v, want %v", got, tt.left)
			}
		})
	}
}

func TestLocalURLIndexFollowsTheCache(t *testing.T) {
	l := newTestLocal(t, 1<<20)
	e := entryFor("h/a", "1")
	for range 3 { // replacing a key must not leave stale counts
		l.Set(e, time.Minute)
		l.Wait()
	}
	if n := indexed(l); n != 1 {
		t.Fatalf("index holds %d keys after three sets of one key, want 1", n)
	}
	l.Del(e)
	l.Wait()
	if n := indexed(l); n != 0 {
		t.Fatalf("index holds %d keys after Del, want 0", n)
	}
	for i := range 100 {
		l.Set(entryFor(fmt.Sprintf("h/%d", i), "1"), time.Minute)
	}
	l.Wait()
	l.clear()
	if n := indexed(l); n != 0 {
		t.Fatalf("index holds %d keys after clear, want 0", n)
	}
}

func indexed(l *Local) int {
	n := 0
	for i := range l.urls {
		s := &l.urls[i]
		s.mu.Lock()
		for _, refs := range s.m {
			n += len(refs)
		}
		s.mu.Unlock()
	}
	return n
}

func TestLocalEvictsToStayWithinMemory(t *testing.T) {
	const memory = 256 << 10
	l := newTestLocal(t, memory)
	body := bytes.Repeat([]byte("x"), 1000)
	for i := range 2000 {
		h := fields("Cache-Control", "max-age=60")
		m := ParseMeta(200, h, t0, t0, t0)
		e := newEntry([]byte(fmt.Sprint("k", i)), []byte(fmt.Sprint("h/", i)), 200, h, body, nil, nil, &m, time.Minute)
		l.Set(e, time.Minute)
		if i%100 == 0 {
			l.Wait()
		}
	}
	l.Wait()
	if got := l.StoredBytes(); got > memory {
		t.Errorf("stored %d bytes, over the bound of %d", got, memory)
	}
	if l.evictions.Load() == 0 {
		t.Errorf("no evictions counted after storing 8× the bound")
	}
	if n := indexed(l); n > memory/1000 {
		t.Errorf("the URL index holds %d keys, more than can be stored", n)
	}
}
