// Package blobcache is a two-tier read-through cache for content-addressed
// blobs: file bodies stored under their sha256 hex in object storage. The
// memory tier holds small blobs, the disk tier (a folder) holds blobs up to
// an eighth of its cap; bigger blobs stream straight from the Source.
//
// Blobs are immutable, so nothing is ever invalidated, but everything the
// cache keeps is verified: a fill hashes the bytes and compares them with
// the blob's name and expected size, so a corrupt object in the bucket is
// never served from or kept in the cache. Files found in the folder at
// start-up are checked the same way the first time they are served, which
// also catches files torn by a crash (the cache does not fsync).
//
// The folder belongs to one Cache: New deletes every file in it that is not
// a blob.
package blobcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/sitehost/sitehost/internal/store"
)

// Source opens a blob from object storage on a miss.
type Source interface {
	OpenBlob(ctx context.Context, sha string) (store.Object, error)
}

// Options configure a Cache.
type Options struct {
	Source Source
	// MemoryBytes caps the memory tier (0 = default 64 MiB; negative = off).
	MemoryBytes int64
	// MemoryMaxEntry is the largest blob kept in memory (default 256 KiB).
	MemoryMaxEntry int64
	// Dir is the disk tier's folder ("" = no disk tier, e.g. when the store
	// is itself a local folder).
	Dir string
	// DiskBytes caps the disk tier (default 1 GiB). Blobs larger than
	// DiskBytes/8 are never cached on disk; unless they fit the memory tier
	// they stream straight from the Source (with ranged reads).
	DiskBytes int64
	Logger    *slog.Logger
}

// Defaults of Options.
const (
	DefaultMemoryBytes    = 64 << 20
	DefaultMemoryMaxEntry = 256 << 10
	DefaultDiskBytes      = 1 << 30
)

// fillTimeout bounds one fill. The fill runs detached from the callers'
// contexts, so that one caller going away does not fail the others.
const fillTimeout = 2 * time.Minute

// fillAttempts bounds how often Open fills a blob whose file then vanishes
// before it is opened; the last attempt keeps the bytes in memory instead.
const fillAttempts = 3

// ErrCorrupt is returned (wrapped) when a blob's bytes do not match its
// sha256 name or its expected size.
var ErrCorrupt = errors.New("blobcache: blob does not match its hash")

// Stats are counters for metrics and tests.
type Stats struct {
	// MemoryHits and DiskHits count Opens served by each tier. Misses count
	// Opens that found nothing cached and went to the Source, whatever the
	// outcome, including those of blobs too large to cache. Fills count
	// fills that asked the Source: one per shared fill, whether or not the
	// blob verified. Evictions count entries either tier dropped to make
	// room.
	MemoryHits, DiskHits, Misses, Fills, Evictions int64
	// MemoryBytes and DiskBytes are the bytes held by each tier.
	MemoryBytes, DiskBytes int64
	// MemoryEntries and DiskEntries are the blobs held by each tier.
	MemoryEntries, DiskEntries int
}

// Cache is a read-through blob cache. It is safe for concurrent use.
type Cache struct {
	src Source
	log *slog.Logger

	mem         *memTier // nil: off
	memMaxEntry int64
	disk        *diskTier // nil: off
	diskMax     int64     // largest blob kept on disk

	group singleflight.Group

	memHits, diskHits, misses, fills, evictions atomic.Int64

	// createTemp is os.CreateTemp and openFilled os.Open; tests replace
	// them to make the disk fail.
	createTemp func(dir, pattern string) (*os.File, error)
	openFilled func(name string) (*os.File, error)
}

// New returns a Cache. With a Dir it creates the folder, removes whatever in
// it is not a blob (leftover temp files and other junk; sub-folders are left
// alone), indexes the blobs in least-recently-used order by file mtime and
// evicts down to DiskBytes.
func New(opts Options) (*Cache, error) {
	if opts.Source == nil {
		return nil, errors.New("blobcache: no Source")
	}
	if opts.MemoryMaxEntry < 0 {
		return nil, fmt.Errorf("blobcache: negative MemoryMaxEntry %d", opts.MemoryMaxEntry)
	}
	if opts.DiskBytes < 0 {
		return nil, fmt.Errorf("blobcache: negative DiskBytes %d", opts.DiskBytes)
	}
	c := &Cache{
		src:        opts.Source,
		log:        opts.Logger,
		createTemp: os.CreateTemp,
		openFilled: os.Open,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.MemoryBytes >= 0 {
		capBytes := opts.MemoryBytes
		if capBytes == 0 {
			capBytes = DefaultMemoryBytes
		}
		c.memMaxEntry = opts.MemoryMaxEntry
		if c.memMaxEntry == 0 {
			c.memMaxEntry = DefaultMemoryMaxEntry
		}
		c.memMaxEntry = min(c.memMaxEntry, capBytes)
		c.mem = newMemTier(capBytes, &c.evictions)
	}
	if opts.Dir != "" {
		capBytes := opts.DiskBytes
		if capBytes == 0 {
			capBytes = DefaultDiskBytes
		}
		c.diskMax = capBytes / 8
		d, err := openDiskTier(opts.Dir, capBytes, c.diskMax, &c.evictions, c.log)
		if err != nil {
			return nil, err
		}
		c.disk = d
	}
	return c, nil
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		MemoryHits: c.memHits.Load(),
		DiskHits:   c.diskHits.Load(),
		Misses:     c.misses.Load(),
		Fills:      c.fills.Load(),
		Evictions:  c.evictions.Load(),
	}
	if c.mem != nil {
		s.MemoryBytes, s.MemoryEntries = c.mem.stats()
	}
	if c.disk != nil {
		s.DiskBytes, s.DiskEntries = c.disk.stats()
	}
	return s
}

// Open returns the blob sha of the given size (from the manifest).
//
// A memory hit is a reader over the cached bytes (Close is a no-op), a disk
// hit the opened file. A miss reads the whole blob from the Source once,
// however many callers ask for it at the same time, verifies it and keeps
// it; a caller whose ctx ends stops waiting, but the fill goes on for the
// others. A blob too large to cache is the Source's object itself, streamed
// and not verified. Source errors are wrapped, so errors.Is sees them; a
// blob that does not match sha or size is ErrCorrupt.
func (c *Cache) Open(ctx context.Context, sha string, size int64) (store.Object, error) {
	if !validSHA(sha) {
		return nil, fmt.Errorf("blobcache: invalid blob name %q", sha)
	}
	if size < 0 {
		return nil, fmt.Errorf("blobcache: blob %s: negative size %d", sha, size)
	}
	if obj, ok, err := c.lookup(ctx, sha, size); ok {
		return obj, err
	}
	c.misses.Add(1)
	if !c.cacheable(size) {
		obj, err := c.src.OpenBlob(ctx, sha)
		if err != nil {
			return nil, fmt.Errorf("opening blob %s: %w", sha, err)
		}
		return obj, nil
	}
	for attempt := 1; ; attempt++ {
		inMemory := attempt == fillAttempts
		res, err := c.fillShared(ctx, sha, size, inMemory)
		if err != nil {
			return nil, err
		}
		if res.inMemory {
			return newMemObject(res.data), nil
		}
		f, err := c.openFilled(res.path)
		if err == nil {
			return f, nil
		}
		// Evicted or deleted between the fill and now: fill again (the
		// last attempt keeps the bytes in memory).
		c.log.Warn("blobcache: opening freshly cached blob", "sha256", sha, "err", err)
		if errors.Is(err, fs.ErrNotExist) {
			c.disk.dropIfMissing(sha)
		}
	}
}

// cacheable reports whether a blob of this size fits a tier.
func (c *Cache) cacheable(size int64) bool {
	return c.mem != nil && size <= c.memMaxEntry || c.disk != nil && size <= c.diskMax
}

// lookup serves a hit. ok is false on a miss.
func (c *Cache) lookup(ctx context.Context, sha string, size int64) (obj store.Object, ok bool, err error) {
	if c.mem != nil {
		if data, ok := c.mem.get(sha); ok {
			if int64(len(data)) != size {
				return nil, true, sizeMismatch(sha, int64(len(data)), size)
			}
			c.memHits.Add(1)
			return newMemObject(data), true, nil
		}
	}
	if c.disk == nil || size > c.diskMax {
		return nil, false, nil
	}
	e, ok := c.disk.get(sha)
	if !ok {
		return nil, false, nil
	}
	if !e.verified {
		verified, err := c.verifyDisk(ctx, sha, e)
		if err != nil {
			return nil, true, err
		}
		if !verified {
			return nil, false, nil
		}
	}
	if e.size != size {
		return nil, true, sizeMismatch(sha, e.size, size)
	}
	f, err := os.Open(e.path)
	if err != nil {
		// Deleted behind our back (or unreadable, e.g. out of file
		// descriptors): fill again.
		c.log.Warn("blobcache: opening cached blob; refilling", "sha256", sha, "err", err)
		if errors.Is(err, fs.ErrNotExist) {
			c.disk.drop(sha, e.elem, false)
		}
		return nil, false, nil
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != e.size {
		f.Close()
		c.log.Warn("blobcache: cached blob changed size; refilling", "sha256", sha, "err", err)
		c.disk.drop(sha, e.elem, true)
		return nil, false, nil
	}
	if c.mem != nil && size <= c.memMaxEntry {
		// Small enough for memory (found at start-up, or evicted from
		// memory before): promote it, so the next hits skip the disk.
		data := make([]byte, size)
		_, err := io.ReadFull(f, data)
		f.Close()
		if err != nil {
			c.log.Warn("blobcache: reading cached blob; refilling", "sha256", sha, "err", err)
			c.disk.drop(sha, e.elem, true)
			return nil, false, nil
		}
		c.mem.add(sha, data)
		c.diskHits.Add(1)
		return newMemObject(data), true, nil
	}
	c.diskHits.Add(1)
	return f, true, nil
}

// verifyDisk hashes a file found at start-up the first time it is served.
// A file that does not match is removed and false returned; err is only
// the caller's ctx ending.
func (c *Cache) verifyDisk(ctx context.Context, sha string, e diskSnapshot) (bool, error) {
	ch := c.group.DoChan("verify\x00"+sha, func() (any, error) {
		f, err := os.Open(e.path)
		if err != nil {
			c.log.Warn("blobcache: opening cached blob; refilling", "sha256", sha, "err", err)
			if errors.Is(err, fs.ErrNotExist) {
				c.disk.drop(sha, e.elem, false)
			}
			return false, nil
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			c.log.Warn("blobcache: reading cached blob; refilling", "sha256", sha, "err", err)
			c.disk.drop(sha, e.elem, true)
			return false, nil
		}
		if n != e.size || hex.EncodeToString(h.Sum(nil)) != sha {
			c.log.Warn("blobcache: cached blob is corrupt; refilling", "sha256", sha, "size", n)
			c.disk.drop(sha, e.elem, true)
			return false, nil
		}
		c.disk.markVerified(sha, e.elem)
		return true, nil
	})
	select {
	case r := <-ch:
		return r.Val.(bool), nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// fillResult is a fill's outcome, shared by every caller of the fill: the
// verified bytes, or the path of the verified file they were written to.
type fillResult struct {
	inMemory bool
	data     []byte
	path     string
}

// fillShared runs one fill per blob at a time and waits for it, or for ctx.
// inMemory asks for the bytes rather than a file.
func (c *Cache) fillShared(ctx context.Context, sha string, size int64, inMemory bool) (*fillResult, error) {
	key := sha + "/" + strconv.FormatInt(size, 10)
	if inMemory {
		key += "/mem"
	}
	ch := c.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fillTimeout)
		defer cancel()
		return c.fill(fctx, sha, size, inMemory)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*fillResult), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fill reads the blob from the Source, verifies it and keeps it in the
// tiers it fits.
func (c *Cache) fill(ctx context.Context, sha string, size int64, inMemory bool) (*fillResult, error) {
	// A caller that missed just before the previous fill finished lands
	// here after it: look again before asking the Source.
	if c.mem != nil {
		if data, ok := c.mem.get(sha); ok && int64(len(data)) == size {
			return &fillResult{inMemory: true, data: data}, nil
		}
	}
	toMemory := c.mem != nil && size <= c.memMaxEntry
	toDisk := c.disk != nil && size <= c.diskMax && !inMemory
	if toDisk && !toMemory {
		if path, ok := c.disk.verifiedPath(sha, size); ok {
			return &fillResult{path: path}, nil
		}
	}

	c.fills.Add(1)
	obj, err := c.src.OpenBlob(ctx, sha)
	if err != nil {
		return nil, fmt.Errorf("opening blob %s: %w", sha, err)
	}
	defer func() {
		if obj != nil { // nil if reopening below failed
			obj.Close()
		}
	}()

	if toDisk && !toMemory {
		path, diskErr, err := c.streamToDisk(obj, sha, size)
		if err != nil || diskErr == nil {
			if err != nil {
				return nil, err
			}
			return &fillResult{path: path}, nil
		}
		// The disk failed (full?): serve the bytes from memory instead,
		// reading the object again from its start.
		c.log.Warn("blobcache: caching blob on disk", "sha256", sha, "err", diskErr)
		if _, err := obj.Seek(0, io.SeekStart); err != nil {
			obj.Close()
			obj = nil
			o, err := c.src.OpenBlob(ctx, sha)
			if err != nil {
				return nil, fmt.Errorf("opening blob %s: %w", sha, err)
			}
			obj = o
		}
	}

	data, err := readVerified(obj, sha, size)
	if err != nil {
		return nil, err
	}
	if toMemory {
		c.mem.add(sha, data)
	}
	if toDisk && toMemory {
		if err := c.writeDisk(sha, data); err != nil {
			c.log.Warn("blobcache: caching blob on disk", "sha256", sha, "err", err)
		}
	}
	return &fillResult{inMemory: true, data: data}, nil
}

// readVerified reads exactly size bytes of blob sha from r and checks them.
func readVerified(r io.Reader, sha string, size int64) ([]byte, error) {
	data := make([]byte, size)
	n, err := io.ReadFull(r, data)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return nil, fmt.Errorf("blob %s: %d bytes, want %d: %w", sha, n, size, ErrCorrupt)
	case err != nil:
		return nil, fmt.Errorf("reading blob %s: %w", sha, err)
	}
	// One byte more tells a longer object from a complete one.
	var extra [1]byte
	if m, err := io.ReadFull(r, extra[:]); m > 0 {
		return nil, fmt.Errorf("blob %s: more than %d bytes: %w", sha, size, ErrCorrupt)
	} else if err != io.EOF {
		return nil, fmt.Errorf("reading blob %s: %w", sha, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("blob %s: sha256 is %x: %w", sha, sum, ErrCorrupt)
	}
	return data, nil
}

// streamToDisk copies the blob from r into a temp file while hashing it,
// and renames the verified file into place. diskErr reports a failure of
// the disk (the blob may still be fine), err one of the Source or the blob.
func (c *Cache) streamToDisk(r io.Reader, sha string, size int64) (path string, diskErr, err error) {
	if !c.disk.reserve(size) {
		return "", errors.New("no room: the disk tier is taken by fills in progress"), nil
	}
	committed := false
	defer func() {
		if !committed {
			c.disk.release(size)
		}
	}()
	tmp, err := c.createTemp(c.disk.dir, tempPrefix+sha[:8]+"-*")
	if err != nil {
		return "", err, nil
	}
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	fw := &errWriter{w: tmp}
	n, err := io.Copy(io.MultiWriter(h, fw), io.LimitReader(r, size+1))
	switch {
	case fw.err != nil:
		return "", fw.err, nil
	case err != nil:
		return "", nil, fmt.Errorf("reading blob %s: %w", sha, err)
	case n != size:
		return "", nil, fmt.Errorf("blob %s: %d bytes, want %d: %w", sha, n, size, ErrCorrupt)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return "", nil, fmt.Errorf("blob %s: sha256 is %s: %w", sha, got, ErrCorrupt)
	}
	if err := tmp.Close(); err != nil {
		return "", err, nil
	}
	path, err = c.disk.commit(sha, size, tmp.Name())
	if err != nil {
		return "", err, nil
	}
	committed = true
	return path, nil, nil
}

// writeDisk keeps verified bytes on disk too.
func (c *Cache) writeDisk(sha string, data []byte) error {
	size := int64(len(data))
	if c.disk.has(sha) {
		return nil
	}
	if !c.disk.reserve(size) {
		return errors.New("no room: the disk tier is taken by fills in progress")
	}
	tmp, err := c.createTemp(c.disk.dir, tempPrefix+sha[:8]+"-*")
	if err != nil {
		c.disk.release(size)
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		_, err = c.disk.commit(sha, size, tmp.Name())
	}
	if err != nil {
		os.Remove(tmp.Name())
		c.disk.release(size)
	}
	return err
}

// errWriter remembers its writer's error, to tell it from the reader's
// after io.Copy.
type errWriter struct {
	w   io.Writer
	err error
}

func (w *errWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

func sizeMismatch(sha string, have, want int64) error {
	return fmt.Errorf("blob %s: %d bytes, want %d: %w", sha, have, want, ErrCorrupt)
}

// memObject is a memory hit: a reader over shared, read-only bytes.
type memObject struct {
	bytes.Reader
}

func newMemObject(data []byte) *memObject {
	o := new(memObject)
	o.Reset(data)
	return o
}

// Close is a no-op.
func (*memObject) Close() error { return nil }

// validSHA reports whether s is 64 lowercase hex digits, and so safe as a
// file name.
func validSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if ch := s[i]; (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') {
			return false
		}
	}
	return true
}
