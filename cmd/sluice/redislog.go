package main

import (
	"context"
	"fmt"
	"log/slog"
)

// redisLog hands the Redis client's own messages to the gateway's log, at
// the debug level. go-redis prints them unstructured, past log.format and
// log.level, several a second while Redis is down ("failed to dial after 5
// attempts"); the gateway logs each outage and its end once (cache and rate
// limits), which is what an operator needs at the default level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
	}
}
