// Package watch follows a config file on disk and reports each new content.
//
// It has to survive the ways real tools replace a file: in-place writes
// that land in several steps, editors that write a temporary file and
// rename it over the original, tools that delete and recreate, and
// Kubernetes ConfigMap volumes, where the file is a symlink into a
// timestamped directory and an update swaps the "..data" link without any
// event naming the file. So it watches the file's directory rather than
// the file (a watch on the file dies with its inode on the first rename),
// re-reads the path through its symlinks after a burst of events has
// settled, and reports only when the sha256 of the content differs from
// the last content it reported. A periodic re-read covers what inotify
// can't see: network filesystems, dropped events, a directory that was
// removed and recreated.
//
// Whether the content is a valid config is the caller's business: it
// parses what it's handed and keeps its running config when that fails.
package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	defaultDebounce = 250 * time.Millisecond
	defaultPoll     = 30 * time.Second
	defaultMaxSize  = 1 << 20

	// maxWaitFactor caps how long a stream of events can put a read off,
	// as a multiple of Debounce. Without it a file rewritten more often
	// than Debounce would never be read at all.
	maxWaitFactor = 4
)

// errTooLarge is why a file over MaxSize isn't read.
var errTooLarge = errors.New("file is larger than MaxSize")

// Options configure Run.
type Options struct {
	// Path is the config file. It may be a symlink, followed on every read.
	Path string
	// Debounce is how long events must have stopped before the file is
	// read, because editors and tools write in several steps. 0 means
	// 250ms. A steady stream of events delays a read by at most four
	// times Debounce.
	Debounce time.Duration
	// Poll is how often the file is re-read anyway, as a fallback for
	// filesystems without events (NFS, SMB, FUSE), dropped events and a
	// watched directory that was removed and recreated (its watch is set
	// up again at each poll). 0 means 30s; negative turns polling off.
	Poll time.Duration
	// MaxSize is the largest file read, in bytes; a bigger one is a read
	// error, so a runaway file can't exhaust memory. 0 means 1 MiB.
	MaxSize int64
	// Logger receives read errors and changes. nil discards them.
	Logger *slog.Logger
	// OnError, if set, hears of each new read error (a missing, oversized
	// or unreadable file), once until the file reads again.
	OnError func(error)

	// noEvents turns fsnotify off, so a test can show the poll alone
	// catches a change.
	noEvents bool
	// ready is called once the watch is in place, so a test's first write
	// can't race the setup.
	ready func()
}

func (o Options) withDefaults() Options {
	if o.Debounce <= 0 {
		o.Debounce = defaultDebounce
	}
	if o.Poll == 0 {
		o.Poll = defaultPoll
	}
	if o.MaxSize <= 0 {
		o.MaxSize = defaultMaxSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Run watches until ctx ends, calling onChange with the file's bytes each
// time its content changes (by sha256; not on every event, not for
// identical rewrites, not at start). onChange runs on Run's goroutine, one
// call at a time, and owns the slice it gets. Read errors (file missing
// mid-swap, too large) are logged and retried at the next event or poll;
// the last good content stays the one changes are measured against.
//
// initial is the content the caller already loaded, so the first change
// is measured against it.
//
// Run returns nil when ctx ends, and an error only when it can't start:
// bad options, or no directory watch while polling is off. With polling
// on, a watch that can't be set up is logged and retried at each poll.
func Run(ctx context.Context, opts Options, initial []byte, onChange func([]byte)) error {
	if opts.Path == "" {
		return errors.New("watch: no path to watch")
	}
	if onChange == nil {
		return errors.New("watch: no onChange callback")
	}
	opts = opts.withDefaults()
	// Absolute, so a later chdir can't move the file under us and log
	// lines name the file unambiguously.
	path, err := filepath.Abs(opts.Path)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", opts.Path, err)
	}
	w := &watcher{
		path:     path,
		dir:      filepath.Dir(path),
		base:     filepath.Base(path),
		maxSize:  opts.MaxSize,
		log:      opts.Logger.With("component", "watch", "path", path),
		onChange: onChange,
		onError:  opts.OnError,
		last:     sha256.Sum256(initial),
		isLink:   isSymlink(path, false),
	}
	defer w.close()

	if !opts.noEvents {
		if err := w.ensureWatch(); err != nil {
			if opts.Poll < 0 {
				return err
			}
			w.watchErr = err.Error()
			w.log.Warn("watching config directory; relying on polling until it works", "poll", opts.Poll, "err", err)
		}
	}

	var poll <-chan time.Time
	if opts.Poll > 0 {
		t := time.NewTicker(opts.Poll)
		defer t.Stop()
		poll = t.C
	}
	// The debounce timer only runs while events are pending; pendingSince
	// is when the first of them arrived.
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var pendingSince time.Time
	schedule := func() {
		now := time.Now()
		if pendingSince.IsZero() {
			pendingSince = now
		}
		wait := min(opts.Debounce, pendingSince.Add(maxWaitFactor*opts.Debounce).Sub(now))
		debounce.Reset(max(wait, 0))
	}

	w.log.Debug("watching config file", "dir", w.dir, "events", w.fw != nil, "debounce", opts.Debounce, "poll", opts.Poll)
	if opts.ready != nil {
		opts.ready()
	}
	for {
		var events <-chan fsnotify.Event
		var errs <-chan error
		if w.fw != nil {
			events, errs = w.fw.Events, w.fw.Errors
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				w.lostWatcher()
				continue
			}
			if w.relevant(ev) {
				w.log.Debug("config event", "event", ev.String())
				schedule()
			}
		case err, ok := <-errs:
			if !ok {
				w.lostWatcher()
				continue
			}
			// Typically an overflow: events were dropped, so one of them
			// may have been ours. Reading again is cheaper than guessing.
			w.log.Warn("watching config directory; re-reading the file", "err", err)
			schedule()
		case <-debounce.C:
			pendingSince = time.Time{}
			w.check(ctx)
		case <-poll:
			if !opts.noEvents {
				w.rewatch()
			}
			w.check(ctx)
		}
	}
}

// watcher is Run's state; it lives on Run's goroutine only.
type watcher struct {
	path, dir, base string
	maxSize         int64
	log             *slog.Logger
	onChange        func([]byte)
	onError         func(error)

	fw       *fsnotify.Watcher // nil while events are off or unavailable
	last     [sha256.Size]byte // hash of the last content reported (or initial)
	isLink   bool              // path was a symlink at the last look
	readErr  string            // last read error logged, so a lasting one logs once
	watchErr string            // same for setting up the directory watch
}

// ensureWatch sets up the directory watch where it's missing: at start,
// and after the directory was removed or renamed, which drops its inotify
// watch (a recreated directory is a new inode that nothing watches).
func (w *watcher) ensureWatch() error {
	if w.fw == nil {
		fw, err := fsnotify.NewWatcher()
		if err != nil {
			return fmt.Errorf("creating watcher: %w", err)
		}
		w.fw = fw
	}
	if slices.Contains(w.fw.WatchList(), w.dir) {
		return nil
	}
	if err := w.fw.Add(w.dir); err != nil {
		return fmt.Errorf("watching directory %s: %w", w.dir, err)
	}
	return nil
}

// rewatch is ensureWatch at a poll tick, logging only what changed.
func (w *watcher) rewatch() {
	err := w.ensureWatch()
	switch {
	case err != nil && err.Error() != w.watchErr:
		w.watchErr = err.Error()
		w.log.Warn("watching config directory; relying on polling until it works", "err", err)
	case err == nil && w.watchErr != "":
		w.watchErr = ""
		w.log.Info("watching config directory again")
	}
}

// lostWatcher handles fsnotify closing its channels, which only Close
// should do; dropping the watcher avoids spinning on a closed channel and
// lets the next poll start a new one.
func (w *watcher) lostWatcher() {
	w.close()
	w.watchErr = "watcher closed"
	w.log.Warn("config watcher closed unexpectedly; relying on polling")
}

func (w *watcher) close() {
	if w.fw == nil {
		return
	}
	if err := w.fw.Close(); err != nil {
		w.log.Warn("closing config watcher", "err", err)
	}
	w.fw = nil
}

// relevant says whether ev can have changed what the path reads as.
// Events naming the file cover in-place writes, rename-over saves and
// delete-and-recreate; events on the directory itself cover its removal.
// When the path is a symlink, though, what it points at can change with no
// event naming it (a ConfigMap update only swaps "..data"), so then every
// event in the directory counts and the hash weeds out false alarms.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	return w.isLink || ev.Name == w.dir || filepath.Base(ev.Name) == w.base
}

// check reads the file and reports it if its content changed.
func (w *watcher) check(ctx context.Context) {
	w.isLink = isSymlink(w.path, w.isLink)
	data, err := readFile(w.path, w.maxSize)
	if err != nil {
		if err.Error() != w.readErr {
			w.readErr = err.Error()
			msg := "reading config file; keeping the last good content"
			if errors.Is(err, fs.ErrNotExist) {
				msg = "config file is missing; keeping the last good content"
			}
			if w.onError != nil {
				w.onError(err)
			}
			w.log.Warn(msg, "err", err)
		}
		return
	}
	if w.readErr != "" {
		w.readErr = ""
		w.log.Info("config file readable again")
	}
	sum := sha256.Sum256(data)
	if sum == w.last {
		w.log.Debug("config file unchanged")
		return
	}
	if ctx.Err() != nil {
		return // shutting down: nobody wants a reload now
	}
	w.last = sum
	w.log.Info("config file changed", "bytes", len(data), "sha256", hex.EncodeToString(sum[:]))
	w.onChange(data)
}

// readFile reads path through its symlinks, refusing anything over
// maxSize bytes and anything but a regular file.
func readFile(path string, maxSize int64) ([]byte, error) {
	// Stat before opening: a FIFO put in the file's place would block
	// the open, and a device might never end.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > maxSize {
		return nil, fmt.Errorf("reading %s: %w: %d bytes, limit %d", path, errTooLarge, fi.Size(), maxSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file can grow between Stat and here, so the read is bounded too.
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > maxSize {
		return nil, fmt.Errorf("reading %s: %w: over %d bytes", path, errTooLarge, maxSize)
	}
	return data, nil
}

// isSymlink reports whether path is a symlink, or prev when it can't
// tell: mid-swap the name may briefly not exist, and guessing "not a
// link" then would start ignoring the events that matter.
func isSymlink(path string, prev bool) bool {
	fi, err := os.Lstat(path)
	if err != nil {
		return prev
	}
	return fi.Mode()&fs.ModeSymlink != 0
}
