// Package bench is the engine of `sluice bench`, an HTTP load generator. The
// synthetic backend the gateway is tested and demonstrated against is package
// bench/origin.
//
// # Load models
//
// The open loop (Options.Rate > 0) sends at a constant rate, as wrk2 does.
// Each connection owns Rate/Connections of the schedule, offset so that the
// connections interleave, and sends each request when it is due. When the
// target slows down the schedule does not: a connection whose previous answer
// is late sends its next request as soon as it can, and the latency of every
// request is measured from the moment it was due, not from when it left. This
// corrects coordinated omission: a generator that waits for the target before
// sending again stops measuring exactly while the target is slow, and a
// one-second stall then shows in a handful of samples instead of in every
// request a real user would have sent during that second.
//
// The closed loop (Rate == 0) sends the next request on a connection as soon
// as the previous one is answered, to find the maximum throughput. Its
// latency is the service time only and every report labels it uncorrected.
//
// Three histograms (HdrHistogram, microseconds, three significant digits) are
// kept apart: corrected latency (due → response), service time (send →
// response) and generator lag, the time a connection that was free to send
// did not (a late timer, a starved CPU). Waiting for a slow target is not lag:
// that is the target's latency and the corrected histogram holds it.
//
// # Invalid runs
//
// Numbers from a generator that could not do what was asked are worse than
// none, so a run is marked invalid, in every output and by RunBench's error,
// when: an open-loop run sent less than 99% of its target rate (MinRateRatio);
// the generator lag's p99 exceeds Options.MaxLag; failed requests (connect
// errors, timeouts, other I/O errors, 4xx, 5xx) exceed Options.MaxErrorRate;
// nothing was measured; or the run was interrupted. The warm-up
// (Options.Warmup) is left out of every count, histogram and check.
//
// # Generator
//
// Connections are goroutines spread over GOMAXPROCS shards, each shard with
// one fasthttp.HostClient holding one connection per goroutine and one set of
// histograms behind a mutex that only its goroutines and a once-a-second
// ticker take. Requests are built once per connection; URL and body patterns
// ({seq}, {rand:LO-HI}, {zipf:S:N}, {key}, {key:zipf:S}) render into buffers
// the connection reuses, so the per-request step allocates nothing (a test
// with testing.AllocsPerRun guards it). A run always ends by itself: after
// Options.Duration, after Options.Requests, or when its context is done.
//
// A connection waits for its next slot on a Go timer. When the process is
// otherwise idle, Go wakes timers up to about a millisecond late (its poller
// sleeps in whole milliseconds); under load they fire within microseconds.
// That lateness is the generator lag, reported beside the latency, and at low
// rates it adds up to a millisecond to the corrected latency, as it does in
// wrk2. Spinning instead would burn the core the target may need.
//
// # Output
//
// WriteText prints the table a human reads, WriteJSON the object a script
// reads, WriteHgrm the percentile distribution file HdrHistogram's plotter
// reads, and WriteHTML one self-contained page with inline SVG charts of
// latency over time and by percentile. RunBench wires these to the command
// line, with a live line each second when stderr is a terminal.
package bench
