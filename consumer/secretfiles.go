package consumer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultSecretFilesPoll is how often WatchSecretFiles also compares the files without an
// event: inotify on a volume the kubelet swaps underneath can miss one.
const DefaultSecretFilesPoll = 30 * time.Second

// WatchSecretFiles blocks until ctx ends (returning "") or the content of one of files
// differs from what it was when the watch began (returning that file). The kubelet
// replaces a mounted Secret's files atomically (a symlink swap in the volume's root), so
// the watch is on the files' directories and their parents, and every event or poll
// compares content digests, never the values themselves. A missing file counts as a
// content of its own.
func WatchSecretFiles(ctx context.Context, files []string, poll time.Duration) (string, error) {
	if len(files) == 0 {
		<-ctx.Done()
		return "", nil
	}
	if poll <= 0 {
		poll = DefaultSecretFilesPoll
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return "", fmt.Errorf("watch secret files: %w", err)
	}
	defer func() { _ = w.Close() }()

	dirs := map[string]bool{}
	for _, f := range files {
		d := filepath.Dir(f)
		dirs[d] = true
		dirs[filepath.Dir(d)] = true
	}
	// (Re)adding keeps watching a directory the kubelet replaced by a new one of the same name.
	watchDirs := func() {
		for d := range dirs {
			_ = w.Add(d) // a directory that is not there yet is seen by the next poll
		}
	}
	watchDirs()
	initial := make(map[string][sha256.Size]byte, len(files))
	for _, f := range files {
		initial[f] = digest(f)
	}
	changed := func() string {
		for _, f := range files {
			if digest(f) != initial[f] {
				return f
			}
		}
		return ""
	}

	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", nil
		case <-w.Events:
		case err := <-w.Errors:
			if err != nil && !errors.Is(err, fsnotify.ErrEventOverflow) {
				return "", fmt.Errorf("watch secret files: %w", err)
			}
		case <-tick.C:
		}
		if f := changed(); f != "" {
			return f, nil
		}
		watchDirs()
	}
}

// digest is the SHA-256 of a file's content; a file that cannot be read has the digest of
// its error kind, so that it appearing or disappearing is a change.
func digest(path string) [sha256.Size]byte {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return sha256.Sum256([]byte("\x00missing"))
	case err != nil:
		return sha256.Sum256([]byte("\x00unreadable"))
	}
	return sha256.Sum256(b)
}
