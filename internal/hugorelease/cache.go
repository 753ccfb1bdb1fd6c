package hugorelease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxVersions is how many releases the cache keeps: a fetched Hugo is
// ~100 MB unpacked, and sites move between a handful of releases.
const MaxVersions = 8

// The cache directory, Dir:
//
//	<version>/hugo       the executable
//	<version>/sha256     its record (meta), written last; without it the folder is not a release
//	<version>/used       touched on each use; its mtime orders eviction
//	.lock-<version>      flocked around checking and fetching <version>, removed after
//	.fetch-<version>-*   a fetch in progress, or a release being removed
//
// Several processes (a server, `sitehost build` runs) may share Dir.
const (
	metaName   = "sha256"
	usedName   = "used"
	fetchGlob  = ".fetch-"
	lockPrefix = ".lock-"
	staleFetch = time.Hour
)

// meta is what a version folder records about its release.
type meta struct {
	Tarball string // sha256 of the tarball it came from
	Binary  string // sha256 of hugo, computed once when unpacked
	Size    int64  // of hugo: checked on every use, which is cheap
}

func (m meta) encode() []byte {
	return fmt.Appendf(nil, "tarball %s\nbinary %s\nsize %d\n", m.Tarball, m.Binary, m.Size)
}

func parseMeta(data []byte) (meta, error) {
	var m meta
	for line := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch k {
		case "tarball":
			m.Tarball = v
		case "binary":
			m.Binary = v
		case "size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return meta{}, err
			}
			m.Size = n
		}
	}
	if !isSHA256(m.Tarball) || !isSHA256(m.Binary) || m.Size <= 0 {
		// Also what a folder written before sizes were recorded looks
		// like: it is fetched again, once.
		return meta{}, errors.New("incomplete record")
	}
	return m, nil
}

// cached is version v's release if its folder is whole: the record and an
// executable of the recorded size. A missing or truncated binary (a disk
// filled up, someone cleaning by hand) is a miss, fetched again.
func (s *Store) cached(v string) (meta, bool) {
	m, err := s.readCache(v)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.opts.Logger.Warn("cached hugo release is incomplete; fetching it again", "version", v, "err", err)
	}
	return m, err == nil
}

func (s *Store) readCache(v string) (meta, error) {
	dir := filepath.Join(s.opts.Dir, v)
	data, err := os.ReadFile(filepath.Join(dir, metaName))
	if err != nil {
		if _, derr := os.Stat(dir); derr == nil {
			return meta{}, errors.New("no record")
		}
		return meta{}, err
	}
	m, err := parseMeta(data)
	if err != nil {
		return meta{}, err
	}
	fi, err := os.Stat(filepath.Join(dir, "hugo"))
	if err != nil {
		return meta{}, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != m.Size {
		return meta{}, fmt.Errorf("hugo is %d bytes, its record says %d", fi.Size(), m.Size)
	}
	return m, nil
}

// lock serializes checking and fetching version v: between goroutines
// with a channel (so a waiting build still sees its context end), between
// processes sharing Dir with an flock on Dir/.lock-<v>.
func (s *Store) lock(ctx context.Context, v string) (func(), error) {
	unlock, err := s.locks.Lock(ctx, v)
	if err != nil {
		return nil, err
	}
	f, err := s.flock(ctx, v)
	if err != nil {
		unlock()
		return nil, err
	}
	return func() {
		f.release()
		unlock()
	}, nil
}

// flock takes the cross-process lock of version v, polling so that ctx
// still ends the wait (flock(2) cannot be interrupted).
func (s *Store) flock(ctx context.Context, v string) (*flocked, error) {
	if err := os.MkdirAll(s.opts.Dir, 0o755); err != nil {
		return nil, err
	}
	logged := false
	for {
		l, err := s.tryFlock(v)
		if l != nil || err != nil {
			return l, err
		}
		if !logged {
			s.opts.Logger.Info("waiting for another process fetching hugo", "version", v)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// flocked is a held lock file. Its holder removes it on release, so Dir
// keeps no lock files (a refused version leaves nothing behind); whoever
// then gets the flock of the removed file sees that its name is gone or
// names another file, and tries again.
type flocked struct{ f *os.File }

func (l *flocked) release() {
	_ = os.Remove(l.f.Name())
	l.f.Close() // releases the flock
}

// tryFlock takes version v's lock if nobody holds it; nil, nil if
// somebody does.
func (s *Store) tryFlock(v string) (*flocked, error) {
	name := filepath.Join(s.opts.Dir, lockPrefix+v)
	for {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, nil
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", name, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(name)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return &flocked{f}, nil
		}
		f.Close() // locked a file its holder has just removed
	}
}

// touch marks version v used now, for eviction.
func (s *Store) touch(v string) {
	name := filepath.Join(s.opts.Dir, v, usedName)
	now := time.Now()
	err := os.Chtimes(name, now, now)
	if errors.Is(err, os.ErrNotExist) {
		err = os.WriteFile(name, nil, 0o644)
	}
	if err != nil {
		s.opts.Logger.Warn("marking hugo release used", "version", v, "err", err)
	}
}

// evict removes the least recently used releases beyond MaxVersions,
// never keep (the one just fetched) nor one another process or goroutine
// is checking or fetching right now (its lock is held).
//
// A release removed while a build runs it is fine on Linux: the running
// process holds the executable's inode, which outlives its name (a
// directory entry is unlinked, the inode freed only with its last user).
// Only a build that got the path just before and starts it just after
// fails to start; with MaxVersions kept and each use touching the marker,
// that needs more than MaxVersions versions in use at once.
func (s *Store) evict(keep string) {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return
	}
	type use struct {
		v  string
		at time.Time
	}
	var all []use
	for _, e := range entries {
		if !e.IsDir() || !versionRE.MatchString(e.Name()) || e.Name() == keep {
			continue
		}
		fi, err := os.Stat(filepath.Join(s.opts.Dir, e.Name(), usedName))
		if err != nil {
			if fi, err = e.Info(); err != nil {
				continue
			}
		}
		all = append(all, use{e.Name(), fi.ModTime()})
	}
	if len(all) < MaxVersions { // keep counts as one
		return
	}
	slices.SortFunc(all, func(a, b use) int { return b.at.Compare(a.at) })
	for _, u := range all[MaxVersions-1:] {
		s.remove(u.v)
	}
}

// remove moves version v's folder out of the way, then deletes it, so
// nobody sees half a release; a crash in between leaves a .fetch- folder
// that New sweeps.
func (s *Store) remove(v string) {
	l, _ := s.tryFlock(v)
	if l == nil {
		return
	}
	defer l.release()
	aside, err := os.MkdirTemp(s.opts.Dir, fetchGlob+v+"-old-")
	if err != nil {
		return
	}
	if err := renameOnto(filepath.Join(s.opts.Dir, v), aside); err != nil {
		_ = os.Remove(aside)
		return
	}
	if err := os.RemoveAll(aside); err != nil {
		s.opts.Logger.Warn("removing old hugo release", "version", v, "err", err)
		return
	}
	s.opts.Logger.Info("removed least recently used hugo release", "version", v, "keep", MaxVersions)
}

// sweep deletes .fetch- folders older than staleFetch that no fetch is
// using: what a crashed or killed process left.
func (s *Store) sweep() {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), fetchGlob)
		if !ok || !e.IsDir() {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < staleFetch {
			continue
		}
		s.removeStale(e.Name(), rest)
	}
}

func (s *Store) removeStale(name, rest string) {
	// A slow fetch still holds its version's lock.
	if v, _, _ := strings.Cut(rest, "-"); versionRE.MatchString(v) {
		l, _ := s.tryFlock(v)
		if l == nil {
			return
		}
		defer l.release()
	}
	if err := os.RemoveAll(filepath.Join(s.opts.Dir, name)); err != nil {
		s.opts.Logger.Warn("removing a leftover hugo fetch", "dir", name, "err", err)
	}
}

// renameOnto renames folder from onto to, an empty folder (made with
// os.MkdirTemp for a unique name). rename(2) replaces an empty folder;
// os.Rename refuses to.
func renameOnto(from, to string) error {
	if err := syscall.Rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
