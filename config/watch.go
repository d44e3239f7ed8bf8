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
// the file itself would stay on the old inode and go quiet. Only events
// that name the file, or a link on the way to it (Kubernetes' "..data"),
// or the file it finally resolves to, start the debounce timer: anything
// else in the directory is ignored, so an access log written beside
// gateway.yaml cannot keep restarting the timer and hold a reload back for
// as long as traffic lasts. When the timer fires Watch hashes the file and
// calls onChange only if the content differs from the last it saw. So a
// touch never triggers a reload, and a file that is briefly missing is
// ignored until it comes back. Each check also follows a swapped symlink
// to the directory it now points into.
//
// onChange runs on Watch's goroutine, one call at a time; a slow onChange
// delays the next check, it never overlaps.
func Watch(ctx context.Context, path string, onChange func()) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer w.Close()

	names := linksTo(path)
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	watchDirs(w, names)

	last, _ := hashFile(path)
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", path)
			}
			if names[filepath.Clean(ev.Name)] {
				timer.Reset(debounce)
			}
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
			// A swapped link may now lead elsewhere: follow it.
			names = linksTo(path)
			watchDirs(w, names)
			sum, err := hashFile(path)
			if err != nil || bytes.Equal(sum, last) {
				continue
			}
			last = sum
			onChange()
		}
	}
}

// linksTo returns the names whose change can change what path reads: path
// itself, each symlink met while resolving it (a link in the path's own
// chain, or a linked directory its target goes through, like Kubernetes'
// "..data"), and the file it resolves to. All are absolute and clean.
func linksTo(path string) map[string]bool {
	names := map[string]bool{path: true}
	p := path
	for range 32 { // a longer chain is a loop
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		target, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		// The target's directories may be links themselves ("..data" in
		// "..data/gateway.yaml"): swapping one of them changes the file.
		for d := filepath.Dir(target); d != filepath.Dir(d); d = filepath.Dir(d) {
			if fi, err := os.Lstat(d); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				names[d] = true
			}
		}
		names[target] = true
		p = target
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		names[real] = true
	}
	return names
}

// watchDirs adds the directory of each name to w. A directory that is gone
// is skipped: the next swap that matters shows up in a directory already
// watched, the one holding the link.
func watchDirs(w *fsnotify.Watcher, names map[string]bool) {
	for n := range names {
		_ = w.Add(filepath.Dir(n)) // adding a watched directory again is a no-op
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
