package gateway

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

func TestUpstreamFailuresAreLoggedAtWarnOncePerIntervalWithACount(t *testing.T) {
	var out testnet.Buffer
	f := newFailureLog(slog.New(slog.NewJSONHandler(&out, nil)))
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }
	boom := errors.New("backend 127.0.0.1:9001: connection refused")

	f.record("orders", "127.0.0.1:9001", "connect", boom) // logged at once
	for range 99 {
		f.record("orders", "127.0.0.1:9001", "connect", boom) // counted
	}
	f.record("orders", "127.0.0.1:9002", "timeout", boom) // another key: its own line
	now = now.Add(upstreamFailureInterval)
	f.record("orders", "127.0.0.1:9001", "connect", boom) // the interval passed: one line for 100

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), out.String())
	}
	for i, want := range []string{
		`"level":"WARN","msg":"upstream request failed","pool":"orders","backend":"127.0.0.1:9001","kind":"connect","count":1`,
		`"backend":"127.0.0.1:9002","kind":"timeout","count":1`,
		`"backend":"127.0.0.1:9001","kind":"connect","count":100`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %s, want it to contain %s", i, lines[i], want)
		}
	}
}
