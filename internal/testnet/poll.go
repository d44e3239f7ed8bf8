package testnet

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Eventually calls cond every 10ms until it returns true, and fails the test
// if it has not within 15s; what names the awaited state in that failure
// ("the backend to be marked unhealthy").
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Buffer collects what a server or process under test writes (its log, its
// output) while the test reads it. It is safe for concurrent use; the zero
// value is empty and ready.
type Buffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the lines of s that contain sub, joined by newlines: the
// part of a long log worth quoting in a failure message.
func Lines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
