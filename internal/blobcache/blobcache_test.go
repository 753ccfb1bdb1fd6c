package blobcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/store"
)

var errOutage = errors.New("fake source: connection refused")

// fakeSource is a Source over a map of sha → bytes. It counts calls, can
// fail like an outage, can serve wrong bytes for a sha, and can block
// every OpenBlob until released.
type fakeSource struct {
	mu      sync.Mutex
	blobs   map[string][]byte
	corrupt map[string][]byte // served instead of blobs[sha]
	calls   map[string]int
	failing bool
	noSeek  bool          // objects fail to Seek
	gate    chan struct{} // non-nil: OpenBlob waits for it to close
	started chan struct{} // receives one value per blocked OpenBlob

	total atomic.Int64
	open  atomic.Int64 // objects not closed yet
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		blobs:   make(map[string][]byte),
		corrupt: make(map[string][]byte),
		calls:   make(map[string]int),
	}
}

// add stores data and returns its sha.
func (s *fakeSource) add(data []byte) string {
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	s.mu.Lock()
	s.blobs[sha] = data
	s.mu.Unlock()
	return sha
}

func (s *fakeSource) setFailing(v bool) {
	s.mu.Lock()
	s.failing = v
	s.mu.Unlock()
}

func (s *fakeSource) setCorrupt(sha string, data []byte) {
	s.mu.Lock()
	if data == nil {
		delete(s.corrupt, sha)
	} else {
		s.corrupt[sha] = data
	}
	s.mu.Unlock()
}

func (s *fakeSource) callsFor(sha string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[sha]
}

func (s *fakeSource) OpenBlob(ctx context.Context, sha string) (store.Object, error) {
	s.total.Add(1)
	s.mu.Lock()
	s.calls[sha]++
	gate, started := s.gate, s.started
	s.mu.Unlock()
	if gate != nil {
		started <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return nil, errOutage
	}
	data, ok := s.corrupt[sha]
	if !ok {
		data, ok = s.blobs[sha]
	}
	if !ok {
		return nil, fmt.Errorf("blobs/%s: %w", sha, store.ErrNotFound)
	}
	s.open.Add(1)
	return &fakeObject{Reader: bytes.NewReader(data), open: &s.open, noSeek: s.noSeek}, nil
}

type fakeObject struct {
	*bytes.Reader
	open   *atomic.Int64
	closed bool
	noSeek bool
}

func (o *fakeObject) Seek(offset int64, whence int) (int64, error) {
	if o.noSeek {
		return 0, errors.New("fake object: cannot seek")
	}
	return o.Reader.Seek(offset, whence)
}

func (o *fakeObject) Close() error {
	if !o.closed {
		o.closed = true
		o.open.Add(-1)
	}
	return nil
}

// blob returns n deterministic bytes that differ by seed.
func blob(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7 + i/251)
	}
	return b
}

// newCache returns a Cache on src and checks, when the test ends, that
// every Source object was closed.
func newCache(t testing.TB, src *fakeSource, opts Options) *Cache {
	t.Helper()
	opts.Source = src
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if n := src.open.Load(); n != 0 {
			t.Errorf("%d Source objects left open", n)
		}
	})
	return c
}

// readBlob opens sha and returns its bytes.
func readBlob(t *testing.T, c *Cache, sha string, size int) []byte {
	t.Helper()
	obj, err := c.Open(context.Background(), sha, int64(size))
	if err != nil {
		t.Fatalf("Open(%.8s): %v", sha, err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading %.8s: %v", sha, err)
	}
	return got
}

func mustRead(t *testing.T, c *Cache, sha string, want []byte) {
	t.Helper()
	if got := readBlob(t, c, sha, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("blob %.8s: got %d bytes, want %d (equal=%v)", sha, len(got), len(want), bytes.Equal(got, want))
	}
}

// dirFiles lists the names in dir and the sum of their sizes.
func dirFiles(t *testing.T, dir string) ([]string, int64) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var total int64
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, de.Name())
		total += fi.Size()
	}
	return names, total
}

func TestHitMiss(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options // Dir is filled in when disk is true
		disk       bool
		size       int
		wantTier   string // "memory", "disk" or "none"
		wantOnDisk bool
	}{
		{name: "small blob, both tiers", opts: Options{MemoryMaxEntry: 1024, DiskBytes: 1 << 20}, disk: true, size: 1000, wantTier: "memory", wantOnDisk: true},
		{name: "medium blob, both tiers", opts: Options{MemoryMaxEntry: 1024, DiskBytes: 1 << 20}, disk: true, size: 5000, wantTier: "disk", wantOnDisk: true},
		{name: "empty blob", opts: Options{DiskBytes: 1 << 20}, disk: true, size: 0, wantTier: "memory", wantOnDisk: true},
		{name: "memory only", opts: Options{MemoryMaxEntry: 1024}, size: 1000, wantTier: "memory"},
		{name: "disk only", opts: Options{MemoryBytes: -1, DiskBytes: 1 << 20}, disk: true, size: 1000, wantTier: "disk", wantOnDisk: true},
		{name: "memory only, blob too big for memory", opts: Options{MemoryMaxEntry: 1024}, size: 5000, wantTier: "none"},
		{name: "blob too big for disk, fits memory", opts: Options{MemoryMaxEntry: 4096, DiskBytes: 8 << 10}, disk: true, size: 2000, wantTier: "memory"},
		{name: "no tiers", opts: Options{MemoryBytes: -1}, size: 10, wantTier: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			data := blob(1, tt.size)
			sha := src.add(data)
			opts := tt.opts
			if tt.disk {
				opts.Dir = t.TempDir()
			}
			c := newCache(t, src, opts)

			mustRead(t, c, sha, data)
			if n := src.callsFor(sha); n != 1 {
				t.Fatalf("first Open: %d Source calls, want 1", n)
			}
			s := c.Stats()
			if s.Misses != 1 || s.MemoryHits != 0 || s.DiskHits != 0 {
				t.Fatalf("after first Open: %+v", s)
			}
			if tt.disk {
				_, err := os.Stat(filepath.Join(opts.Dir, sha))
				if onDisk := err == nil; onDisk != tt.wantOnDisk {
					t.Fatalf("on disk = %v, want %v", onDisk, tt.wantOnDisk)
				}
			}

			mustRead(t, c, sha, data)
			s = c.Stats()
			wantCalls := 1
			switch tt.wantTier {
			case "memory":
				if s.MemoryHits != 1 || s.Fills != 1 || s.MemoryEntries != 1 || s.MemoryBytes != int64(tt.size) {
					t.Fatalf("want a memory hit: %+v", s)
				}
			case "disk":
				if s.DiskHits != 1 || s.Fills != 1 || s.MemoryEntries != 0 || s.DiskEntries != 1 || s.DiskBytes != int64(tt.size) {
					t.Fatalf("want a disk hit: %+v", s)
				}
			case "none":
				wantCalls = 2
				if s.Misses != 2 || s.Fills != 0 || s.MemoryEntries != 0 || s.DiskEntries != 0 {
					t.Fatalf("want two uncached Opens: %+v", s)
				}
			}
			if n := src.callsFor(sha); n != wantCalls {
				t.Fatalf("after second Open: %d Source calls, want %d", n, wantCalls)
			}
		})
	}
}

func TestOutage(t *testing.T) {
	src := newFakeSource()
	small, medium, uncached := blob(1, 100), blob(2, 3000), blob(3, 100)
	smallSHA, mediumSHA, uncachedSHA := src.add(small), src.add(medium), src.add(uncached)
	c := newCache(t, src, Options{MemoryMaxEntry: 1024, Dir: t.TempDir(), DiskBytes: 1 << 20})
	mustRead(t, c, smallSHA, small)
	mustRead(t, c, mediumSHA, medium)

	src.setFailing(true)
	before := src.total.Load()
	for range 3 {
		mustRead(t, c, smallSHA, small)
		mustRead(t, c, mediumSHA, medium)
	}
	if n := src.total.Load() - before; n != 0 {
		t.Fatalf("cached blobs asked the Source %d times", n)
	}
	_, err := c.Open(context.Background(), uncachedSHA, int64(len(uncached)))
	if !errors.Is(err, errOutage) {
		t.Fatalf("uncached blob during outage: err = %v, want the Source's error", err)
	}
	if !strings.Contains(err.Error(), "opening blob "+uncachedSHA) {
		t.Fatalf("err = %q, want it to name the blob", err)
	}

	src.setFailing(false)
	mustRead(t, c, uncachedSHA, uncached)
}

func TestSourceErrorWrapped(t *testing.T) {
	src := newFakeSource()
	c := newCache(t, src, Options{Dir: t.TempDir()})
	sha := strings.Repeat("ab", 32)
	for _, size := range []int64{10, 1 << 30} { // cached, and streamed
		_, err := c.Open(context.Background(), sha, size)
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "opening blob "+sha) {
			t.Fatalf("size %d: err = %v, want a wrapped store.ErrNotFound", size, err)
		}
	}
}

func TestInvalidSHA(t *testing.T) {
	src := newFakeSource()
	c := newCache(t, src, Options{Dir: t.TempDir()})
	for _, sha := range []string{
		"",
		strings.Repeat("A", 64),
		strings.Repeat("a", 63),
		strings.Repeat("a", 65),
		"../" + strings.Repeat("a", 61),
		strings.Repeat("g", 64),
	} {
		if _, err := c.Open(context.Background(), sha, 1); err == nil {
			t.Errorf("Open(%q) succeeded", sha)
		}
	}
	if _, err := c.Open(context.Background(), strings.Repeat("a", 64), -1); err == nil {
		t.Errorf("Open with a negative size succeeded")
	}
	if n := src.total.Load(); n != 0 {
		t.Fatalf("invalid Opens made %d Source calls", n)
	}
}

func TestCorrupt(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		wrong func(good []byte) []byte
	}{
		{"memory, flipped byte", 100, func(b []byte) []byte { b = bytes.Clone(b); b[50] ^= 1; return b }},
		{"memory, short", 100, func(b []byte) []byte { return b[:99] }},
		{"memory, long", 100, func(b []byte) []byte { return append(bytes.Clone(b), 0) }},
		{"memory, empty", 100, func(b []byte) []byte { return []byte{} }},
		{"disk, flipped byte", 5000, func(b []byte) []byte { b = bytes.Clone(b); b[4999] ^= 1; return b }},
		{"disk, short", 5000, func(b []byte) []byte { return b[:4000] }},
		{"disk, long", 5000, func(b []byte) []byte { return append(bytes.Clone(b), blob(9, 10000)...) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			good := blob(1, tt.size)
			sha := src.add(good)
			src.setCorrupt(sha, tt.wrong(good))
			dir := t.TempDir()
			c := newCache(t, src, Options{MemoryMaxEntry: 1024, Dir: dir, DiskBytes: 1 << 20})

			for i := 1; i <= 2; i++ {
				_, err := c.Open(context.Background(), sha, int64(tt.size))
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open #%d: err = %v, want ErrCorrupt", i, err)
				}
				if n := src.callsFor(sha); n != i {
					t.Fatalf("Open #%d: %d Source calls, want %d (nothing may be cached)", i, n, i)
				}
			}
			if s := c.Stats(); s.MemoryEntries != 0 || s.DiskEntries != 0 || s.MemoryBytes != 0 || s.DiskBytes != 0 {
				t.Fatalf("corrupt blob was cached: %+v", s)
			}
			if names, _ := dirFiles(t, dir); len(names) != 0 {
				t.Fatalf("files left in the cache dir: %v", names)
			}

			// Once the bucket is repaired, the blob is served and cached.
			src.setCorrupt(sha, nil)
			mustRead(t, c, sha, good)
			mustRead(t, c, sha, good)
			if n := src.callsFor(sha); n != 3 {
				t.Fatalf("after repair: %d Source calls, want 3", n)
			}
		})
	}
}

// TestSizeMismatch: a manifest size that disagrees with the blob is
// ErrCorrupt whether the blob is cached or not.
func TestSizeMismatch(t *testing.T) {
	src := newFakeSource()
	small, medium := blob(1, 100), blob(2, 5000)
	smallSHA, mediumSHA := src.add(small), src.add(medium)
	c := newCache(t, src, Options{MemoryMaxEntry: 1024, Dir: t.TempDir(), DiskBytes: 1 << 20})
	for _, b := range []struct {
		sha  string
		size int
	}{{smallSHA, 100}, {mediumSHA, 5000}} {
		if _, err := c.Open(context.Background(), b.sha, int64(b.size-1)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("uncached, wrong size: err = %v, want ErrCorrupt", err)
		}
		readBlob(t, c, b.sha, b.size)
		if _, err := c.Open(context.Background(), b.sha, int64(b.size+1)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cached, wrong size: err = %v, want ErrCorrupt", err)
		}
	}
}

func TestMemoryEviction(t *testing.T) {
	src := newFakeSource()
	const size = 1000
	var shas []string
	var datas [][]byte
	for i := range 5 {
		d := blob(i, size)
		datas = append(datas, d)
		shas = append(shas, src.add(d))
	}
	c := newCache(t, src, Options{MemoryBytes: 3 * size, MemoryMaxEntry: size})

	mustRead(t, c, shas[0], datas[0])
	mustRead(t, c, shas[1], datas[1])
	mustRead(t, c, shas[2], datas[2])
	mustRead(t, c, shas[0], datas[0]) // 0 is now the most recently used; 1 the least
	mustRead(t, c, shas[3], datas[3]) // evicts 1
	s := c.Stats()
	if s.MemoryEntries != 3 || s.MemoryBytes != 3*size || s.Evictions != 1 {
		t.Fatalf("after 4 blobs in a 3-blob memory tier: %+v", s)
	}
	before := src.total.Load()
	for _, i := range []int{0, 2, 3} {
		mustRead(t, c, shas[i], datas[i])
	}
	if n := src.total.Load() - before; n != 0 {
		t.Fatalf("recently used blobs asked the Source %d times", n)
	}
	mustRead(t, c, shas[1], datas[1])
	if n := src.callsFor(shas[1]); n != 2 {
		t.Fatalf("evicted blob: %d Source calls, want 2", n)
	}
	if s := c.Stats(); s.MemoryBytes > 3*size {
		t.Fatalf("memory tier over its cap: %+v", s)
	}
}

func TestDiskEviction(t *testing.T) {
	const size = 1000
	const diskBytes = 8 * size // the largest cacheable blob is exactly size
	src := newFakeSource()
	dir := t.TempDir()
	c := newCache(t, src, Options{MemoryBytes: -1, Dir: dir, DiskBytes: diskBytes})

	var shas []string
	var datas [][]byte
	for i := range 20 {
		n := size - i*37 // mixed sizes, all cacheable
		d := blob(i, n)
		datas = append(datas, d)
		shas = append(shas, src.add(d))
	}
	check := func(when string) {
		t.Helper()
		s := c.Stats()
		names, total := dirFiles(t, dir)
		if s.DiskBytes > diskBytes || total > diskBytes {
			t.Fatalf("%s: disk tier over its cap %d: stats %+v, files total %d", when, diskBytes, s, total)
		}
		if len(names) != s.DiskEntries || total != s.DiskBytes {
			t.Fatalf("%s: index (%d blobs, %d bytes) disagrees with the folder (%d files, %d bytes)", when, s.DiskEntries, s.DiskBytes, len(names), total)
		}
	}
	for i := range 8 {
		mustRead(t, c, shas[i], datas[i])
		check(fmt.Sprintf("blob %d", i))
	}
	mustRead(t, c, shas[0], datas[0]) // 0 becomes the most recently used
	for i := 8; i < 20; i++ {
		mustRead(t, c, shas[i], datas[i])
		check(fmt.Sprintf("blob %d", i))
		mustRead(t, c, shas[0], datas[0]) // keep 0 hot
	}
	if s := c.Stats(); s.Evictions == 0 {
		t.Fatalf("no evictions: %+v", s)
	}
	if n := src.callsFor(shas[0]); n != 1 {
		t.Fatalf("the hot blob was evicted: %d Source calls", n)
	}
	if _, err := os.Stat(filepath.Join(dir, shas[1])); err == nil {
		t.Fatalf("least recently used blob 1 is still on disk")
	}
	mustRead(t, c, shas[1], datas[1])
	if n := src.callsFor(shas[1]); n != 2 {
		t.Fatalf("evicted blob: %d Source calls, want 2", n)
	}
	check("end")
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	small, medium := blob(1, 100), blob(2, 5000)
	smallSHA, mediumSHA := src.add(small), src.add(medium)
	opts := Options{MemoryMaxEntry: 1024, Dir: dir, DiskBytes: 1 << 20}
	c := newCache(t, src, opts)
	mustRead(t, c, smallSHA, small)
	mustRead(t, c, mediumSHA, medium)

	junk := []string{
		".tmp-0123abcd-999", // a fill a crash interrupted
		"README",
		strings.Repeat("A", 64),
		strings.Repeat("b", 63),
		strings.Repeat("c", 65),
		strings.Repeat("d", 64) + ".tmp",
	}
	for _, name := range junk {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, strings.Repeat("e", 64))); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	src2 := newFakeSource()
	src2.setFailing(true)
	c2 := newCache(t, src2, opts)
	if s := c2.Stats(); s.DiskEntries != 2 || s.DiskBytes != 5100 || s.MemoryEntries != 0 {
		t.Fatalf("after restart: %+v", s)
	}
	names, _ := dirFiles(t, dir)
	want := map[string]bool{smallSHA: true, mediumSHA: true, "sub": true} // folders are left alone
	if len(names) != len(want) {
		t.Fatalf("after restart the folder holds %q, want only the blobs and the sub-folder", names)
	}
	for _, n := range names {
		if !want[n] {
			t.Fatalf("after restart the folder holds %q, want only the blobs and the sub-folder", names)
		}
	}
	for range 2 {
		mustRead(t, c2, smallSHA, small)
		mustRead(t, c2, mediumSHA, medium)
	}
	if n := src2.total.Load(); n != 0 {
		t.Fatalf("after restart the Source was asked %d times", n)
	}
	// The small blob's disk hit promoted it to memory.
	if s := c2.Stats(); s.DiskHits != 3 || s.MemoryHits != 1 || s.Misses != 0 || s.MemoryEntries != 1 {
		t.Fatalf("after restart: %+v", s)
	}
}

// TestRestartCorruptFile: a file found at start-up is hashed before it is
// served; one that does not match (e.g. torn by a crash) is removed and
// filled again.
func TestRestartCorruptFile(t *testing.T) {
	for _, size := range []int{100, 5000} { // promoted to memory, served from disk
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			src := newFakeSource()
			data := blob(1, size)
			sha := src.add(data)
			bad := bytes.Clone(data)
			bad[size/2] ^= 0xff
			if err := os.WriteFile(filepath.Join(dir, sha), bad, 0o644); err != nil {
				t.Fatal(err)
			}
			c := newCache(t, src, Options{MemoryMaxEntry: 1024, Dir: dir, DiskBytes: 1 << 20})
			mustRead(t, c, sha, data)
			if n := src.callsFor(sha); n != 1 {
				t.Fatalf("%d Source calls, want 1 (the corrupt file must not be served)", n)
			}
			got, err := os.ReadFile(filepath.Join(dir, sha))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("file not replaced by the good blob (err %v)", err)
			}
			mustRead(t, c, sha, data)
			if n := src.callsFor(sha); n != 1 {
				t.Fatalf("%d Source calls, want 1", n)
			}
		})
	}
}

// TestRestartLRUOrder: the LRU order survives a restart through file
// mtimes, and New evicts down to the cap, oldest first.
func TestRestartLRUOrder(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	const n, size = 10, 1000
	var shas []string
	for i := range n {
		shas = append(shas, src.add(blob(i, size)))
	}
	c := newCache(t, src, Options{MemoryBytes: -1, Dir: dir, DiskBytes: 1 << 20})
	for _, sha := range shas {
		readBlob(t, c, sha, size)
	}
	// Blob i is i minutes old, except blob 0 (the newest) and blob 7 (the
	// oldest): the two oldest are 7 and 9.
	now := time.Now()
	for i, sha := range shas {
		age := time.Duration(i) * time.Minute
		switch i {
		case 0:
			age = 0
		case 7:
			age = time.Hour
		}
		if err := os.Chtimes(filepath.Join(dir, sha), now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	c2 := newCache(t, src, Options{MemoryBytes: -1, Dir: dir, DiskBytes: 8 * size})
	if s := c2.Stats(); s.DiskEntries != 8 || s.DiskBytes != 8*size || s.Evictions != 2 {
		t.Fatalf("after restart with room for 8: %+v", s)
	}
	for i, sha := range shas {
		_, err := os.Stat(filepath.Join(dir, sha))
		if gone := err != nil; gone != (i == 7 || i == 9) {
			t.Errorf("blob %d: gone = %v", i, gone)
		}
	}

	// DiskBytes/8 below the blobs' size: none of them can be served from
	// the disk tier any more, so none is kept.
	c3 := newCache(t, src, Options{MemoryBytes: -1, Dir: dir, DiskBytes: 4 * size})
	if s := c3.Stats(); s.DiskEntries != 0 {
		t.Fatalf("after restart with a smaller largest blob: %+v", s)
	}
	if names, _ := dirFiles(t, dir); len(names) != 0 {
		t.Fatalf("blobs larger than DiskBytes/8 kept: %v", names)
	}
}

// TestDiskHitTouchesFile: a disk hit moves the file's mtime forward (at
// most once a minute), so the order survives restarts.
func TestDiskHitTouchesFile(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	data := blob(1, 1000)
	sha := src.add(data)
	c := newCache(t, src, Options{MemoryBytes: -1, Dir: dir, DiskBytes: 1 << 20})
	mustRead(t, c, sha, data)
	p := filepath.Join(dir, sha)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	// Right after the fill the entry counts as touched: no update yet.
	mustRead(t, c, sha, data)
	if fi, _ := os.Stat(p); !fi.ModTime().Equal(old) {
		t.Fatalf("mtime updated within a minute of the last touch")
	}
	c.disk.mu.Lock()
	c.disk.m[sha].Value.(*diskEntry).touched = old
	c.disk.mu.Unlock()
	mustRead(t, c, sha, data)
	if fi, _ := os.Stat(p); time.Since(fi.ModTime()) > time.Minute {
		t.Fatalf("disk hit did not update the mtime: %v", fi.ModTime())
	}
}

func TestConcurrentMiss(t *testing.T) {
	for _, size := range []int{100, 5000} { // memory and disk fills
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			src := newFakeSource()
			data := blob(1, size)
			sha := src.add(data)
			gate := make(chan struct{})
			src.gate, src.started = gate, make(chan struct{}, 100)
			c := newCache(t, src, Options{MemoryMaxEntry: 1024, Dir: t.TempDir(), DiskBytes: 1 << 20})

			const n = 50
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					obj, err := c.Open(context.Background(), sha, int64(size))
					if err != nil {
						errs <- err
						return
					}
					defer obj.Close()
					got, err := io.ReadAll(obj)
					if err == nil && !bytes.Equal(got, data) {
						err = errors.New("wrong bytes")
					}
					if err != nil {
						errs <- err
					}
				})
			}
			<-src.started
			// Let the others pile up on the fill before releasing it.
			deadline := time.Now().Add(5 * time.Second)
			for c.Stats().Misses < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if got := src.total.Load(); got != 1 {
				t.Fatalf("%d Source calls, want 1", got)
			}
			if s := c.Stats(); s.Fills != 1 {
				t.Fatalf("stats: %+v", s)
			}
		})
	}
}

// TestStress: many goroutines over many blobs with small tiers, so fills,
// hits and evictions interleave. Run with -race.
func TestStress(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	const diskBytes = 8 * 1000
	var shas []string
	var datas [][]byte
	for i := range 30 {
		d := blob(i, 200+i*27) // 200…983 bytes: some fit memory, all fit disk
		datas = append(datas, d)
		shas = append(shas, src.add(d))
	}
	c := newCache(t, src, Options{MemoryBytes: 2000, MemoryMaxEntry: 500, Dir: dir, DiskBytes: diskBytes})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g*7 + i*13 + i*i) % len(shas)
				obj, err := c.Open(context.Background(), shas[k], int64(len(datas[k])))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(obj)
				obj.Close()
				if err != nil || !bytes.Equal(got, datas[k]) {
					t.Errorf("blob %d: err %v, equal %v", k, err, bytes.Equal(got, datas[k]))
					return
				}
				if s := c.Stats(); s.DiskBytes > diskBytes || s.MemoryBytes > 2000 {
					t.Errorf("over a cap: %+v", s)
					return
				}
			}
		})
	}
	wg.Wait()
	s := c.Stats()
	names, total := dirFiles(t, dir)
	if len(names) != s.DiskEntries || total != s.DiskBytes || total > diskBytes {
		t.Fatalf("index %+v disagrees with the folder (%d files, %d bytes)", s, len(names), total)
	}
	t.Logf("stats: %+v", s)
}

// TestCallerGivesUp: a caller whose ctx ends stops waiting, but the fill
// goes on and caches the blob.
func TestCallerGivesUp(t *testing.T) {
	src := newFakeSource()
	data := blob(1, 100)
	sha := src.add(data)
	gate := make(chan struct{})
	src.gate, src.started = gate, make(chan struct{}, 10)
	c := newCache(t, src, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Open(ctx, sha, int64(len(data)))
		done <- err
	}()
	<-src.started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open did not return after its ctx was cancelled")
	}
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().MemoryEntries == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fill did not finish after its caller left")
		}
		time.Sleep(time.Millisecond)
	}
	src.mu.Lock()
	src.gate = nil
	src.mu.Unlock()
	mustRead(t, c, sha, data)
	if n := src.total.Load(); n != 1 {
		t.Fatalf("%d Source calls, want 1", n)
	}
}

func TestLargeBlobStreams(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	const diskBytes = 8 << 10
	data := blob(1, diskBytes/8+1)
	sha := src.add(data)
	c := newCache(t, src, Options{MemoryMaxEntry: 512, Dir: dir, DiskBytes: diskBytes})
	for i := 1; i <= 2; i++ {
		obj, err := c.Open(context.Background(), sha, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := obj.(*fakeObject); !ok {
			t.Fatalf("got a %T, want the Source's object", obj)
		}
		// Ranged read.
		if _, err := obj.Seek(100, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, data[100:]) {
			t.Fatalf("ranged read: err %v, equal %v", err, bytes.Equal(got, data[100:]))
		}
		if n := src.callsFor(sha); n != i {
			t.Fatalf("Open #%d: %d Source calls", i, n)
		}
	}
	if s := c.Stats(); s.Fills != 0 || s.DiskEntries != 0 || s.MemoryEntries != 0 || s.Misses != 2 {
		t.Fatalf("large blob was cached: %+v", s)
	}
	if names, _ := dirFiles(t, dir); len(names) != 0 {
		t.Fatalf("files in the cache dir: %v", names)
	}
}

func TestVanishedDiskFile(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	data := blob(1, 1000)
	sha := src.add(data)
	c := newCache(t, src, Options{MemoryBytes: -1, Dir: dir, DiskBytes: 1 << 20})
	mustRead(t, c, sha, data)
	if err := os.Remove(filepath.Join(dir, sha)); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, sha, data)
	if n := src.callsFor(sha); n != 2 {
		t.Fatalf("%d Source calls, want 2", n)
	}
	if _, err := os.Stat(filepath.Join(dir, sha)); err != nil {
		t.Fatalf("blob not cached again: %v", err)
	}
	mustRead(t, c, sha, data)
	if s := c.Stats(); s.DiskHits != 1 || s.Fills != 2 || s.DiskEntries != 1 || s.DiskBytes != 1000 {
		t.Fatalf("stats: %+v", s)
	}
	// Truncated behind our back: refilled too.
	if err := os.Truncate(filepath.Join(dir, sha), 10); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, sha, data)
	if n := src.callsFor(sha); n != 3 {
		t.Fatalf("%d Source calls, want 3", n)
	}
}

// TestFilledFileVanishes: a blob evicted or deleted between its fill and
// its caller opening the file is filled again, and in the end served from
// memory.
func TestFilledFileVanishes(t *testing.T) {
	for _, times := range []int{1, 100} { // once, and every time
		t.Run(fmt.Sprint(times), func(t *testing.T) {
			dir := t.TempDir()
			src := newFakeSource()
			data := blob(1, 1000)
			sha := src.add(data)
			c := newCache(t, src, Options{MemoryBytes: -1, Dir: dir, DiskBytes: 1 << 20})
			removed := 0
			c.openFilled = func(name string) (*os.File, error) {
				if removed < times {
					removed++
					if err := os.Remove(name); err != nil {
						t.Error(err)
					}
				}
				return os.Open(name)
			}
			mustRead(t, c, sha, data)
			wantCalls := min(times+1, fillAttempts)
			if n := src.callsFor(sha); n != wantCalls {
				t.Fatalf("%d Source calls, want %d", n, wantCalls)
			}
			s := c.Stats()
			if times == 1 && (s.DiskEntries != 1 || s.DiskBytes != 1000) {
				t.Fatalf("refilled blob not on disk: %+v", s)
			}
			if times > 1 && (s.DiskEntries != 0 || s.DiskBytes != 0) {
				t.Fatalf("index keeps a vanished file: %+v", s)
			}
		})
	}
}

// readOnlyTemp makes disk writes fail like a full disk: it creates the
// temp file, but hands back a read-only handle.
func readOnlyTemp(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	name := f.Name()
	f.Close()
	return os.Open(name)
}

func TestDiskWriteFails(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		createTemp func(dir, pattern string) (*os.File, error)
		noSeek     bool // the Source's objects cannot seek back: open again
	}{
		{"memory blob, write fails", 100, readOnlyTemp, false},
		{"disk blob, write fails", 5000, readOnlyTemp, false},
		{"disk blob, write fails, no seek", 5000, readOnlyTemp, true},
		{"disk blob, create fails", 5000, func(string, string) (*os.File, error) { return nil, errors.New("no space left on device") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := newFakeSource()
			data := blob(1, tt.size)
			sha := src.add(data)
			c := newCache(t, src, Options{MemoryMaxEntry: 1024, Dir: dir, DiskBytes: 1 << 20})
			c.createTemp = tt.createTemp
			src.noSeek = tt.noSeek
			perOpen := int64(1)
			if tt.noSeek {
				perOpen = 2
			}
			mustRead(t, c, sha, data)
			if names, _ := dirFiles(t, dir); len(names) != 0 {
				t.Fatalf("files left in the cache dir: %v", names)
			}
			s := c.Stats()
			if s.DiskEntries != 0 || s.DiskBytes != 0 {
				t.Fatalf("stats: %+v", s)
			}
			if n := src.total.Load(); n != perOpen {
				t.Fatalf("%d Source calls, want %d", n, perOpen)
			}
			// Memory-sized blobs are still cached in memory.
			mustRead(t, c, sha, data)
			want := 2 * perOpen
			if tt.size <= 1024 {
				want = perOpen
			}
			if n := src.total.Load(); n != want {
				t.Fatalf("%d Source calls, want %d", n, want)
			}
			// Once the disk works again, it caches.
			c.createTemp = os.CreateTemp
			if tt.size > 1024 {
				mustRead(t, c, sha, data)
				if s := c.Stats(); s.DiskEntries != 1 {
					t.Fatalf("stats: %+v", s)
				}
			}
		})
	}
}

// TestServeContent: the objects Open returns work with http.ServeContent,
// ranges included.
func TestServeContent(t *testing.T) {
	src := newFakeSource()
	small, medium := blob(1, 100), blob(2, 5000)
	smallSHA, mediumSHA := src.add(small), src.add(medium)
	c := newCache(t, src, Options{MemoryMaxEntry: 1024, Dir: t.TempDir(), DiskBytes: 1 << 20})
	for _, b := range []struct {
		sha  string
		data []byte
	}{{smallSHA, small}, {mediumSHA, medium}} {
		for i := range 2 { // fill, then hit
			obj, err := c.Open(context.Background(), b.sha, int64(len(b.data)))
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/x", nil)
			req.Header.Set("Range", "bytes=10-19")
			rec := httptest.NewRecorder()
			http.ServeContent(rec, req, "x", time.Time{}, obj)
			obj.Close()
			if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), b.data[10:20]) {
				t.Fatalf("blob %.8s #%d: status %d, body %q", b.sha, i, rec.Code, rec.Body.Bytes())
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a Source succeeded")
	}
	src := newFakeSource()
	if _, err := New(Options{Source: src, DiskBytes: -1, Dir: t.TempDir()}); err == nil {
		t.Error("New with negative DiskBytes succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Source: src, Dir: f}); err == nil {
		t.Error("New with a file as Dir succeeded")
	}
}

func benchCache(b *testing.B, opts Options) (*Cache, string, int64) {
	src := newFakeSource()
	data := blob(1, 4096)
	sha := src.add(data)
	c := newCache(b, src, opts)
	obj, err := c.Open(context.Background(), sha, int64(len(data)))
	if err != nil {
		b.Fatal(err)
	}
	obj.Close()
	return c, sha, int64(len(data))
}

func benchOpen(b *testing.B, c *Cache, sha string, size int64) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		obj, err := c.Open(ctx, sha, size)
		if err != nil {
			b.Fatal(err)
		}
		obj.Close()
	}
}

func BenchmarkOpenMemoryHit(b *testing.B) {
	c, sha, size := benchCache(b, Options{})
	benchOpen(b, c, sha, size)
	if s := c.Stats(); s.MemoryHits == 0 || s.DiskHits != 0 {
		b.Fatalf("stats: %+v", s)
	}
}

func BenchmarkOpenDiskHit(b *testing.B) {
	c, sha, size := benchCache(b, Options{MemoryBytes: -1, Dir: b.TempDir()})
	benchOpen(b, c, sha, size)
	if s := c.Stats(); s.DiskHits == 0 || s.MemoryHits != 0 {
		b.Fatalf("stats: %+v", s)
	}
}
