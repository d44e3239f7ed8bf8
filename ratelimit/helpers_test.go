package ratelimit

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clock is a manual clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustLocal(t testing.TB, o Options, prev *Local) *Local {
	t.Helper()
	l, err := NewLocal(o, prev)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// redisClient is a client for a test Redis with short timeouts and no
// retries, so a stopped server shows quickly.
func redisClient(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        []string{addr},
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1,
		PoolSize:     8,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// transitions counts the degraded-mode lines a Global logs.
type transitions struct {
	mu            sync.Mutex
	entered, left int
}

func (tr *transitions) logger() *slog.Logger { return slog.New(tr) }

func (tr *transitions) counts() (entered, left int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.entered, tr.left
}

func (tr *transitions) Enabled(context.Context, slog.Level) bool { return true }
func (tr *transitions) WithAttrs([]slog.Attr) slog.Handler       { return tr }
func (tr *transitions) WithGroup(string) slog.Handler            { return tr }
func (tr *transitions) Handle(_ context.Context, r slog.Record) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch r.Level {
	case slog.LevelWarn:
		tr.entered++
	case slog.LevelInfo:
		tr.left++
	}
	return nil
}

func keyN(i int) []byte { return strconv.AppendInt([]byte("client-"), int64(i), 10) }

// bucketOf is g's state for key, nil if it has none.
func bucketOf(g *Global, key []byte) *bucket {
	s := &g.st.shards[g.st.shardIndex(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[string(key)]
}

// appendIPv4 writes the i-th address of 10.0.0.0/8, as a gateway keys a
// client by its peer address.
func appendIPv4(dst []byte, i int) []byte {
	dst = append(dst, "10."...)
	dst = strconv.AppendInt(dst, int64(i>>16&255), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(i>>8&255), 10)
	dst = append(dst, '.')
	return strconv.AppendInt(dst, int64(i&255), 10)
}
