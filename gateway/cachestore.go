package gateway

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/cache"
	"github.com/sluice-gw/sluice/config"
)

// cacheStore is the process's cache: L1 in memory, L2 on the shared Redis
// when there is one, and the tiered lookup over both. It is built once, at
// New, whether or not a route caches yet, so that a reload can turn caching
// on; cache.memory and the other cache settings take a restart.
type cacheStore struct {
	*cache.Tiered
	l1 *cache.Local
	l2 *cache.Redis // nil without Redis

	dates sync.Pool // *dateParser, for keepStoredDate
}

func newCacheStore(c *config.Config, rdb redis.UniversalClient, log *slog.Logger) (*cacheStore, error) {
	o := c.Cache
	if o.RedisTimeout == 0 {
		o.RedisTimeout = c.Redis.Timeout
	}
	// One line when the cache gives Redis up and one when it is back: the
	// Redis client's own messages (a failed dial, several a second while it
	// is down) go to the debug level (cmd/sluice).
	cooldown := o.WithDefaults().BreakerCooldown
	o.OnBreaker = func(open bool) {
		if open {
			log.Warn("cache: redis unreachable: serving from memory and the backends, trying redis again every breaker_cooldown",
				"addrs", c.Redis.Addrs, "breaker_cooldown", cooldown)
			return
		}
		log.Info("cache: redis answers again", "addrs", c.Redis.Addrs)
	}
	st := &cacheStore{}
	var err error
	if st.l1, err = cache.NewLocal(o); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if rdb != nil {
		if st.l2, err = cache.NewRedis(rdb, o); err != nil {
			st.l1.Close()
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	if st.Tiered, err = cache.NewTiered(st.l1, st.l2, o); err != nil {
		if st.l2 != nil {
			st.l2.Close()
		}
		st.l1.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	return st, nil
}

// close stops the cache's goroutines in the order it was built.
func (st *cacheStore) close() {
	st.Tiered.Close()
	if st.l2 != nil {
		st.l2.Close()
	}
	st.l1.Close()
}
