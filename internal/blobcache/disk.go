package blobcache

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// tempPrefix starts the names of fills in progress; it is not hex, so
	// New removes the ones a crash left behind.
	tempPrefix = ".tmp-"
	// touchEvery is how often a disk hit may update its file's mtime, which
	// is the LRU order New restores.
	touchEvery = time.Minute
	dirPerm    = 0o755
)

// diskTier is the disk tier: a folder of files named by their sha256, with
// an in-memory LRU index. used + reserved never exceeds cap: a fill reserves
// its size (evicting to make room) before it writes its temp file.
type diskTier struct {
	dir       string
	log       *slog.Logger
	evictions *atomic.Int64

	mu       sync.Mutex
	cap      int64
	used     int64      // bytes of the indexed files
	reserved int64      // bytes of the fills in progress
	ll       *list.List // of *diskEntry, most recently used first
	m        map[string]*list.Element
}

type diskEntry struct {
	sha, path string
	size      int64
	touched   time.Time // last mtime we set (or found)
	// verified: written by this process from hashed bytes. Files found at
	// start-up are hashed the first time they are served.
	verified bool
}

// diskSnapshot is a copy of an entry, taken under the lock.
type diskSnapshot struct {
	path     string
	size     int64
	verified bool
	elem     *list.Element // identifies the entry for drop and markVerified
}

// openDiskTier creates dir, removes what is not a blob and indexes the rest.
func openDiskTier(dir string, capBytes, maxEntry int64, evictions *atomic.Int64, log *slog.Logger) (*diskTier, error) {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("blobcache: creating %s: %w", dir, err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blobcache: reading %s: %w", dir, err)
	}
	d := &diskTier{
		dir:       dir,
		log:       log,
		evictions: evictions,
		cap:       capBytes,
		ll:        list.New(),
		m:         make(map[string]*list.Element),
	}
	var found []*diskEntry
	for _, de := range des {
		name := de.Name()
		p := filepath.Join(dir, name)
		if de.IsDir() {
			// Never delete a tree: Dir may have been set to the wrong folder.
			log.Warn("blobcache: unexpected folder in cache dir; leaving it", "path", p)
			continue
		}
		if !validSHA(name) || !de.Type().IsRegular() {
			d.remove(p, "not a blob")
			continue
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("blobcache: %w", err)
		}
		if fi.Size() > maxEntry {
			// DiskBytes shrank since it was cached; never served from here.
			d.remove(p, "larger than the disk tier's largest blob")
			continue
		}
		found = append(found, &diskEntry{sha: name, path: p, size: fi.Size(), touched: fi.ModTime()})
	}
	slices.SortFunc(found, func(a, b *diskEntry) int {
		if c := a.touched.Compare(b.touched); c != 0 {
			return c
		}
		return cmp.Compare(a.sha, b.sha)
	})
	for _, e := range found { // oldest first, so the newest ends up in front
		d.m[e.sha] = d.ll.PushFront(e)
		d.used += e.size
	}
	for d.used > d.cap {
		d.evictLocked()
	}
	log.Info("blobcache: disk tier ready", "dir", dir, "blobs", len(d.m), "bytes", d.used)
	return d, nil
}

func (d *diskTier) remove(p, why string) {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("blobcache: removing file", "path", p, "err", err)
		return
	}
	d.log.Info("blobcache: removed file", "path", p, "why", why)
}

// evictLocked drops the least recently used blob. d.mu is held (or d is
// not shared yet). The file is unlinked under the lock, so it cannot race
// with a commit of the same blob; readers that have it open keep reading.
func (d *diskTier) evictLocked() {
	el := d.ll.Back()
	e := el.Value.(*diskEntry)
	d.ll.Remove(el)
	delete(d.m, e.sha)
	d.used -= e.size
	d.evictions.Add(1)
	if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("blobcache: evicting blob", "sha256", e.sha, "err", err)
	}
}

// get returns the blob's entry and marks it used, updating the file's
// mtime at most once per touchEvery.
func (d *diskTier) get(sha string) (diskSnapshot, bool) {
	d.mu.Lock()
	el, ok := d.m[sha]
	if !ok {
		d.mu.Unlock()
		return diskSnapshot{}, false
	}
	d.ll.MoveToFront(el)
	e := el.Value.(*diskEntry)
	s := diskSnapshot{path: e.path, size: e.size, verified: e.verified, elem: el}
	var now time.Time
	if t := time.Now(); t.Sub(e.touched) >= touchEvery {
		now, e.touched = t, t
	}
	d.mu.Unlock()
	if !now.IsZero() {
		os.Chtimes(s.path, now, now) //nolint:errcheck // best effort: only the order after a restart
	}
	return s, true
}

// verifiedPath returns the file of a verified blob of this size, marking it
// used.
func (d *diskTier) verifiedPath(sha string, size int64) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	el, ok := d.m[sha]
	if !ok {
		return "", false
	}
	e := el.Value.(*diskEntry)
	if !e.verified || e.size != size {
		return "", false
	}
	d.ll.MoveToFront(el)
	return e.path, true
}

func (d *diskTier) has(sha string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.m[sha]
	return ok
}

func (d *diskTier) markVerified(sha string, el *list.Element) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m[sha] == el {
		el.Value.(*diskEntry).verified = true
	}
}

// drop forgets the entry el of sha, if it is still the current one, and
// with removeFile deletes its file.
func (d *diskTier) drop(sha string, el *list.Element, removeFile bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m[sha] != el {
		return
	}
	d.dropLocked(el)
	if removeFile {
		d.remove(el.Value.(*diskEntry).path, "does not match its blob")
	}
}

// dropIfMissing forgets sha if its file is gone.
func (d *diskTier) dropIfMissing(sha string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	el, ok := d.m[sha]
	if !ok {
		return
	}
	if _, err := os.Lstat(el.Value.(*diskEntry).path); errors.Is(err, fs.ErrNotExist) {
		d.dropLocked(el)
	}
}

func (d *diskTier) dropLocked(el *list.Element) {
	e := el.Value.(*diskEntry)
	d.ll.Remove(el)
	delete(d.m, e.sha)
	d.used -= e.size
}

// reserve makes room for a fill of size bytes, evicting the least recently
// used blobs. It fails only when fills in progress hold the room.
func (d *diskTier) reserve(size int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.used+d.reserved+size > d.cap && d.ll.Len() > 0 {
		d.evictLocked()
	}
	if d.used+d.reserved+size > d.cap {
		return false
	}
	d.reserved += size
	return true
}

// release gives back a reservation whose fill did not commit.
func (d *diskTier) release(size int64) {
	d.mu.Lock()
	d.reserved -= size
	d.mu.Unlock()
}

// commit renames the verified temp file into place and indexes it, turning
// its reservation into use. On error the reservation stays, for the caller
// to release.
func (d *diskTier) commit(sha string, size int64, tmp string) (string, error) {
	p := filepath.Join(d.dir, sha)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Rename(tmp, p); err != nil {
		return "", err
	}
	d.reserved -= size
	if el, ok := d.m[sha]; ok { // an unverified file found at start-up
		d.dropLocked(el)
	}
	d.m[sha] = d.ll.PushFront(&diskEntry{sha: sha, path: p, size: size, touched: time.Now(), verified: true})
	d.used += size
	return p, nil
}

func (d *diskTier) stats() (int64, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used, len(d.m)
}
