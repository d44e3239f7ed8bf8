package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testnet"
)

// startWatch runs Watch on path until the test ends and returns the channel
// its onChange signals on and the channel its result arrives on.
func startWatch(t *testing.T, ctx context.Context, path string) (changes <-chan struct{}, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan struct{}, 64)
	res := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		res <- Watch(ctx, path, func() {
			select {
			case ch <- struct{}{}:
			default: // never block Watch on a slow test
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return after its context was cancelled")
		}
	})
	return ch, res
}

// changeUntilSeen applies change with new content every 200ms until
// onChange fires, so the test does not depend on when the watch is set up.
func changeUntilSeen(t *testing.T, changes <-chan struct{}, change func(content string)) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		change(fmt.Sprintf("listen: 127.0.0.1:%d\n", 10000+i))
		select {
		case <-changes:
			return
		case <-deadline:
			t.Fatal("onChange was not called within 15s")
		case <-tick.C:
		}
	}
}

func TestWatchFiresWhenTheFileIsWritten(t *testing.T) {
	path := writeConfig(t, "listen: 127.0.0.1:8080\n")
	changes, _ := startWatch(t, t.Context(), path)
	changeUntilSeen(t, changes, func(c string) { testnet.WriteFile(t, path, c) })
}

func TestWatchFiresWhenTheFileIsReplacedByRename(t *testing.T) {
	path := writeConfig(t, "listen: 127.0.0.1:8080\n")
	changes, _ := startWatch(t, t.Context(), path)
	changeUntilSeen(t, changes, func(c string) {
		tmp := path + ".tmp"
		testnet.WriteFile(t, tmp, c)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	})
	// A second replacement is seen too: the watch is on the directory, not
	// on the inode that the first rename retired.
	changeUntilSeen(t, changes, func(c string) {
		tmp := path + ".tmp"
		testnet.WriteFile(t, tmp, c+"# again\n")
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWatchFiresWhenASymlinkIsSwapped(t *testing.T) {
	// The layout Kubernetes uses for a mounted ConfigMap:
	// sluice.yaml -> ..data/sluice.yaml, ..data -> ..<version>.
	dir := t.TempDir()
	version := func(n int, content string) string {
		name := fmt.Sprintf("..v%d", n)
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		testnet.WriteFile(t, filepath.Join(dir, name, "sluice.yaml"), content)
		return name
	}
	if err := os.Symlink(version(0, "listen: 127.0.0.1:8080\n"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.Symlink(filepath.Join("..data", "sluice.yaml"), path); err != nil {
		t.Fatal(err)
	}
	changes, _ := startWatch(t, t.Context(), path)
	n := 0
	swap := func(c string) {
		n++
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(version(n, c), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	changeUntilSeen(t, changes, swap)
	// The watch follows the link to its new target: a second swap is seen
	// too.
	changeUntilSeen(t, changes, func(c string) { swap(c + "# again\n") })
}

func TestWatchFiresWhileANeighbourFileIsWrittenContinuously(t *testing.T) {
	// An access log beside the configuration, written every few
	// milliseconds: its events must not hold the reload back.
	path := writeConfig(t, "listen: 127.0.0.1:8080\n")
	log, err := os.Create(filepath.Join(filepath.Dir(path), "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := log.WriteString(`{"status":200}` + "\n"); err != nil {
					t.Errorf("writing the neighbour: %v", err)
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-stopped
		log.Close()
	})

	changes, _ := startWatch(t, t.Context(), path)
	changeUntilSeen(t, changes, func(c string) { testnet.WriteFile(t, path, c) })
}

func TestWatchIgnoresChangesThatLeaveTheContentAlone(t *testing.T) {
	path := writeConfig(t, "listen: 127.0.0.1:8080\n")
	changes, _ := startWatch(t, t.Context(), path)
	last := ""
	changeUntilSeen(t, changes, func(c string) { last = c; testnet.WriteFile(t, path, c) })
	drain(changes)

	// An unrelated file in the same directory, and a rewrite with the same
	// bytes, must not call onChange; a real change afterwards must, once.
	testnet.WriteFile(t, filepath.Join(filepath.Dir(path), "other.yaml"), "x: 1\n")
	testnet.WriteFile(t, path, last)
	time.Sleep(500 * time.Millisecond)
	testnet.WriteFile(t, path, last+"# changed\n")
	select {
	case <-changes:
	case <-time.After(15 * time.Second):
		t.Fatal("onChange was not called for a real change")
	}
	time.Sleep(300 * time.Millisecond)
	if n := drain(changes); n != 0 {
		t.Errorf("onChange called %d extra times", n)
	}
}

func drain(ch <-chan struct{}) int {
	n := 0
	for {
		select {
		case <-ch:
			n++
		default:
			return n
		}
	}
}

func TestWatchStopsWhenTheContextIsDone(t *testing.T) {
	path := writeConfig(t, "listen: 127.0.0.1:8080\n")
	ctx, cancel := context.WithCancel(t.Context())
	changes, done := startWatch(t, ctx, path)
	changeUntilSeen(t, changes, func(c string) { testnet.WriteFile(t, path, c) })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}

func TestWatchFailsAtOnceOnAMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "sluice.yaml")
	if err := Watch(t.Context(), path, func() {}); err == nil {
		t.Fatal("Watch on a missing directory returned nil")
	}
}
