package gateway

import (
	"flag"
	"os"
	"testing"
)

// testParallel is how many of this package's parallel tests run at once
// unless -test.parallel says otherwise. Most of them spend their time
// waiting on loopback sockets, timers and redis-server processes, not on
// the CPU (under -race a run of the package uses about a third of a core),
// so the default of GOMAXPROCS would leave the machine idle. Tests that
// hold something to a tight time bound (latencies, admissions or shares
// against elapsed time), or count the process's goroutines or heap, stay
// serial: they run before the parallel ones start.
const testParallel = "4"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", testParallel); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
