package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestRedisClientMessagesGoToTheDebugLevel(t *testing.T) {
	for _, tt := range []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelInfo, ""},
		{slog.LevelDebug, `"level":"DEBUG","msg":"redis client: redis: connection pool: failed to dial after 5 attempts: refused"`},
	} {
		var out bytes.Buffer
		l := redisLog{slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: tt.level}))}
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "refused")
		if got := out.String(); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("at level %s the log got %q, want %q", tt.level, got, tt.want)
		}
	}
}
