package gateway

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// upstreamFailureInterval is how often one pool, backend and kind of failure
// may write a log line. The first failure is logged at once; the ones that
// follow within the interval are counted and reported with the next line, so
// an outage at 100k requests/s writes a line per backend every few seconds,
// not 100k.
const upstreamFailureInterval = 5 * time.Second

// failureLog writes upstream failures (the causes of 502, 503 and 504) to the
// process log at warn, rate-limited per pool, backend and kind. Only failing
// requests reach it; it takes no lock once a key has been seen.
type failureLog struct {
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	keys sync.Map // failureKey → *failureCount
}

type failureKey struct{ pool, backend, kind string }

type failureCount struct {
	next  atomic.Int64  // unix nanoseconds before which no line is written
	count atomic.Uint64 // failures since the last line
}

func newFailureLog(log *slog.Logger) *failureLog {
	return &failureLog{log: log, now: time.Now, every: upstreamFailureInterval}
}

// record counts one failure and logs it when the key's interval has passed,
// with the number of failures the line stands for. The error logged is this
// one's: the others counted share its kind, not its text.
func (f *failureLog) record(pool, backend, kind string, err error) {
	k := failureKey{pool, backend, kind}
	v, ok := f.keys.Load(k)
	if !ok {
		v, _ = f.keys.LoadOrStore(k, &failureCount{})
	}
	c := v.(*failureCount)
	c.count.Add(1)
	now := f.now().UnixNano()
	next := c.next.Load()
	if now < next || !c.next.CompareAndSwap(next, now+int64(f.every)) {
		return
	}
	n := c.count.Swap(0)
	f.log.Warn("upstream request failed", "pool", pool, "backend", backend, "kind", kind,
		"count", n, "interval", f.every.String(), "error", errString(err))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ejectionLogger logs passive outlier detection taking a backend of pool
// out or letting it back: rare events an operator wants to see each of.
func ejectionLogger(log *slog.Logger, pool string) func(addr string, ejected bool, period time.Duration) {
	return func(addr string, ejected bool, period time.Duration) {
		if ejected {
			log.Warn("backend ejected", "pool", pool, "backend", addr, "for", period.String(), "reason", "consecutive failures")
		} else {
			log.Info("backend ejection ended", "pool", pool, "backend", addr)
		}
	}
}
