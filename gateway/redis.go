package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/config"
)

// redisCallCeiling bounds any one Redis call the client makes, whatever the
// caller's context says. Calls on behalf of a request carry their own, much
// shorter deadline (redis.timeout); background work (cache writes, limit
// syncs, purges) uses this ceiling so that a stalled server cannot hold a
// goroutine for long.
const redisCallCeiling = time.Second

// newRedisClient builds the one Redis client the gateway shares between the
// cache, the rate limits and the purge channel: a single server for one
// address, a Redis Cluster client for several. It returns nil when no
// address is configured. It does not wait for Redis to answer: a gateway
// starts, and serves, with Redis down.
func newRedisClient(c config.Redis, log *slog.Logger) redis.UniversalClient {
	if len(c.Addrs) == 0 {
		log.Info("no redis configured: cache is in-process only (L1), rate limits are local to this instance")
		return nil
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:    c.Addrs,
		Username: c.Username,
		Password: c.Password,
		DB:       c.DB,
		// Deadlines come from the caller's context; retries would only
		// stretch a request's wait past redis.timeout.
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           c.Timeout,
		ReadTimeout:           redisCallCeiling,
		WriteTimeout:          redisCallCeiling,
		PoolTimeout:           c.Timeout,
	})
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		log.Warn("redis does not answer yet; serving without it until it does", "addrs", c.Addrs, "error", err)
	} else {
		log.Info("redis connected", "addrs", c.Addrs)
	}
	return rdb
}
