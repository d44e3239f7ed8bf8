package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long Watch waits after the last file system event before
// it looks at the file. Editors and `kubectl` produce bursts of events
// (write, chmod, rename, remove) for one logical change; 100ms folds a burst
// into one call without making a reload feel slow.
const debounce = 100 * time.Millisecond

// Watch calls onChange each time the content of the file at path changes,
// until ctx is done; then it returns nil. It returns an error at once if
// the watch cannot be set up, and later only if the watcher itself fails.
//
// It watches the file's directory rather than the file, because editors
// save by writing a new file and renaming it over the old one, and
// Kubernetes updates a mounted ConfigMap by swapping a symlink; a watch on
// the file itself would stay on the old inode and go quiet. Any event in the
// directory (or, when path is a symlink, in its target's directory) starts
// a debounce timer; when it fires Watch hashes the file and calls onChange
// only if the content differs from the last it saw. So a touch or an
// unrelated file never triggers a reload, and a file that is briefly
// missing is ignored until it comes back.
//
// onChange runs on Watch's goroutine, one call at a time; a slow onChange
// delays the next check, it never overlaps.
func Watch(ctx context.Context, path string, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer w.Close()

	dirs := []string{filepath.Dir(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			return fmt.Errorf("watch %s: %w", path, err)
		}
	}

	last, _ := hashFile(path)
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", path)
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", path)
			}
			// An overflow means events were lost; the file may have changed,
			// so look. Other errors are transient by fsnotify's contract.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(debounce)
			}
		case <-timer.C:
			sum, err := hashFile(path)
			if err != nil || bytes.Equal(sum, last) {
				continue
			}
			last = sum
			onChange()
		}
	}
}

func hashFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}
