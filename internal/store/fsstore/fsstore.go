// Package fsstore is a store.Store on a local folder: key "a/b/c" is the file
// root/a/b/c. Writes go to a temp file under root/.tmp that is fsynced and
// renamed over the target, so readers see the old object or the new one.
// Each Store writes its temp files in a folder of its own under .tmp
// (tempdir), so the next Store opened on the folder removes at once what a
// killed process left, while the writes of live processes go on.
// Conditional puts hold an flock, which makes them atomic across goroutines
// and across processes that share the folder.
//
// Limits of a filesystem backend: a key cannot also be a directory of other
// keys ("a" and "a/b" cannot both exist), the first key elements ".tmp" and
// ".locks" are reserved, and ContentType is not stored. The package needs a
// Unix-like OS (flock, inode numbers).
package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/tempdir"
)

const (
	tmpDir   = ".tmp"   // in-flight writes; same filesystem as the targets, so rename is atomic
	locksDir = ".locks" // flock files for conditional puts

	// staleTemp is the age after which New treats a temp file outside
	// every Store's own folder (written by an older version) as left over
	// by a crashed writer. A live writer touches its file far more often.
	staleTemp = time.Hour
	// ownPrefix names each Store's own temp folder under .tmp.
	ownPrefix = "w-"

	dirPerm  = 0o755
	filePerm = 0o644
)

// Store is a store.Store on a local folder. It is safe for concurrent use,
// also by several processes (several Stores) on the same folder.
type Store struct {
	root  string
	tmp   string
	own   *tempdir.Dir // this Store's temp files, under tmp
	locks string
	// stripes serialise conditional puts within this process, one slot per
	// lock file, so that goroutines queue on a channel (which honours ctx)
	// instead of all polling the flock.
	stripes [lockStripes]chan struct{}
}

var _ store.Store = (*Store)(nil)

// New opens the store rooted at root, creating the folder if needed. It
// removes the temp files of writers that are gone (another process's
// that is still running stay), and loose ones more than an hour old.
func New(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("opening fs store: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("opening fs store %s: %w", root, err)
	}
	s := &Store{
		root:  abs,
		tmp:   filepath.Join(abs, tmpDir),
		locks: filepath.Join(abs, locksDir),
	}
	for _, dir := range []string{s.root, s.tmp, s.locks} {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return nil, fmt.Errorf("opening fs store: creating %s: %w", dir, err)
		}
	}
	for i := range s.stripes {
		s.stripes[i] = make(chan struct{}, 1)
	}
	if _, err := tempdir.Sweep(s.tmp, ownPrefix); err != nil {
		return nil, fmt.Errorf("opening fs store %s: %w", abs, err)
	}
	if err := s.removeStaleTemps(time.Now().Add(-staleTemp)); err != nil {
		return nil, fmt.Errorf("opening fs store %s: %w", abs, err)
	}
	if s.own, err = tempdir.Claim(s.tmp, ownPrefix); err != nil {
		return nil, fmt.Errorf("opening fs store %s: %w", abs, err)
	}
	return s, nil
}

// Close removes the Store's temp folder; writes after it fail. A Store
// never closed leaves its folder to the next Store opened on root.
func (s *Store) Close() error {
	return s.own.Release()
}

// removeStaleTemps deletes temp files last modified before cutoff. Younger
// ones may belong to a writer in another process and are left alone.
func (s *Store) removeStaleTemps(cutoff time.Time) error {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("cleaning temp files: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || tempdir.Owned(e.Name(), ownPrefix) {
			continue // a Store's own: Sweep's to judge
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue // gone already, or possibly in use
		}
		if err := os.Remove(filepath.Join(s.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cleaning temp files: %w", err)
		}
	}
	return nil
}

// Put writes the object atomically. See store.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	if opts.IfMatch != "" && opts.IfNoneMatch {
		return store.Info{}, fmt.Errorf("putting %s: both IfMatch and IfNoneMatch set", key)
	}

	// The body is written before the lock is taken, so a slow reader never
	// holds up other writers.
	tmp, fi, err := s.writeTemp(ctx, r, size)
	if err != nil {
		return store.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmp)
		}
	}()

	target := s.path(key)
	if opts.IfMatch != "" || opts.IfNoneMatch {
		unlock, err := s.lock(ctx, key)
		if err != nil {
			return store.Info{}, fmt.Errorf("putting %s: %w", key, err)
		}
		defer unlock()
		if err := checkCondition(target, key, opts); err != nil {
			return store.Info{}, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(target), dirPerm); err != nil {
		return store.Info{}, fmt.Errorf("putting %s: creating parent: %w", key, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return store.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	renamed = true
	if err := syncDir(filepath.Dir(target)); err != nil {
		return store.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	// Rename keeps the inode and mtime, so the temp file's stat is the
	// object's, even if another writer has replaced it since.
	return info(key, fi), nil
}

// checkCondition reports a *store.PreconditionError when the object at
// target does not satisfy opts. The caller holds the key's lock.
func checkCondition(target, key string, opts store.PutOptions) error {
	fi, err := statFile(target)
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return fmt.Errorf("putting %s: checking condition: %w", key, err)
	}
	switch {
	case opts.IfNoneMatch && !missing:
		return &store.PreconditionError{Key: key}
	case opts.IfMatch != "" && (missing || etag(fi) != opts.IfMatch):
		// A missing key fails If-Match with a precondition error (HTTP 412)
		// rather than ErrNotFound: the caller's view is stale either way.
		return &store.PreconditionError{Key: key, Want: opts.IfMatch}
	}
	return nil
}

// writeTemp copies the body into a new, fsynced temp file and returns its
// path and stat.
func (s *Store) writeTemp(ctx context.Context, r io.Reader, size int64) (path string, fi fs.FileInfo, err error) {
	f, err := os.CreateTemp(s.own.Path(), "put-*")
	if err != nil {
		return "", nil, fmt.Errorf("creating temp file: %w", err)
	}
	path = f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	if err := f.Chmod(filePerm); err != nil { // CreateTemp makes 0o600
		return "", nil, fmt.Errorf("writing %s: %w", path, err)
	}
	body := ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		n, err := io.CopyN(f, body, size)
		if errors.Is(err, io.EOF) {
			return "", nil, fmt.Errorf("writing %s: body has %d of %d bytes: %w", path, n, size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return "", nil, fmt.Errorf("writing %s: %w", path, err)
		}
	} else if _, err := io.Copy(f, body); err != nil {
		return "", nil, fmt.Errorf("writing %s: %w", path, err)
	}
	// Stamp the mtime from the nanosecond wall clock: kernels update mtime
	// from a coarse clock, and with inode reuse two rewrites of equal size
	// could otherwise get the same ETag.
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		return "", nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", nil, fmt.Errorf("syncing %s: %w", path, err)
	}
	if fi, err = f.Stat(); err != nil {
		return "", nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return path, fi, nil
}

// Get opens the object; the returned Object is an *os.File. See store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Object, store.Info, error) {
	if err := checkKey(key); err != nil {
		return nil, store.Info{}, fmt.Errorf("getting %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, store.Info{}, fmt.Errorf("getting %s: %w", key, err)
	}
	f, err := os.Open(s.path(key))
	if isNotExist(err) {
		return nil, store.Info{}, fmt.Errorf("getting %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, store.Info{}, fmt.Errorf("getting %s: %w", key, err)
	}
	// Stat the open file, not the path, so Info matches the bytes returned
	// even if the object is replaced meanwhile.
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = store.ErrNotFound // a directory of other keys
	}
	if err != nil {
		_ = f.Close()
		return nil, store.Info{}, fmt.Errorf("getting %s: %w", key, err)
	}
	return f, info(key, fi), nil
}

// Stat describes the object. See store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, fmt.Errorf("stating %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("stating %s: %w", key, err)
	}
	fi, err := statFile(s.path(key))
	if err != nil {
		return store.Info{}, fmt.Errorf("stating %s: %w", key, err)
	}
	return info(key, fi), nil
}

// Delete removes the object; a missing key is not an error. Delete does not
// take the conditional-put lock: keys that are written conditionally (such
// as channel pointers) should not also be deleted concurrently.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if isNotExist(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	// Empty parent folders are left in place: removing them would race
	// with a concurrent Put creating a sibling.
	return nil
}

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// checkKey applies store.ValidKey and keeps keys out of the folders the
// store uses for itself.
func checkKey(key string) error {
	if !store.ValidKey(key) {
		return fmt.Errorf("invalid key %q", key)
	}
	if reserved(key) {
		return fmt.Errorf("invalid key %q: %s and %s are reserved", key, tmpDir, locksDir)
	}
	return nil
}

// reserved reports whether key (or key prefix) lies in a store folder.
func reserved(key string) bool {
	first, _, _ := strings.Cut(key, "/")
	return first == tmpDir || first == locksDir
}

// statFile stats an object file, mapping "no such file", "a parent is a
// file" and "it is a directory" to store.ErrNotFound.
func statFile(path string) (fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if isNotExist(err) || (err == nil && !fi.Mode().IsRegular()) {
		return nil, store.ErrNotFound
	}
	return fi, err
}

// isNotExist also treats ENOTDIR as absent: for key "a/b" with "a" an
// object, "a/b" simply does not exist.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func info(key string, fi fs.FileInfo) store.Info {
	return store.Info{Key: key, Size: fi.Size(), ETag: etag(fi), ModTime: fi.ModTime()}
}

// etag is "<inode>-<size>-<mtime ns>" in hex. It costs one stat, never a
// read of the content, and changes on every rewrite: the new file is created
// while the old one still exists, so its inode differs from the current
// object's, and the nanosecond mtime set in writeTemp rules out a match
// with an older version whose inode was reused.
func etag(fi fs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino) //nolint:unconvert // Ino is not uint64 on every OS
	}
	return strconv.FormatUint(ino, 16) + "-" +
		strconv.FormatInt(fi.Size(), 16) + "-" +
		strconv.FormatInt(fi.ModTime().UnixNano(), 16)
}

// syncDir fsyncs a folder so that a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
