package build

// Hugo's caches, kept per site across builds (issue 16 item 4).
//
// Hugo caches processed images and transpiled assets under the site's
// resources/_gen, which lives in the exported tree and goes with it, and
// remote resources and the like under --cacheDir. A build gets private
// copies of both, seeded from the site's snapshot; a successful trusted
// build's copies become the new snapshot:
//
//	<Request.CacheDir>/                data_dir/cache/hugo/<site> (beside the blob cache, cache/blobs)
//	    lock                           flock: shared while seeding, exclusive while replacing
//	    hugo-<version>/current/gen/    resources/_gen as the last good build left it
//	    hugo-<version>/current/dir/    Hugo's --cacheDir as it left it
//	    work-<pid>-<random>/dir/       a running build's --cacheDir (tempdir: removed by the
//	    work-<pid>-<random>.lock       next build once its process is gone)
//
// Copies, never the snapshot itself nor hard links to it: Hugo's file cache
// writes in place (os.Create truncates, and ReadOrCreate rewrites an entry
// it cannot read), so a build killed mid-write would leave a half-written
// entry the next build trusts, two builds at once would write the same
// files, and an untrusted build could plant entries for production. A
// snapshot is only ever replaced whole, by rename, after a build succeeded.
//
// Files the repository commits under resources/_gen are not overwritten
// when seeding and not saved. Untrusted builds (forks) seed and never save.
// Hugo's --gc leaves only what the build used; a site keeps its two most
// recently used Hugo versions; over CacheLimit nothing is kept. Two builds
// of a site at once each work on their own copy; the last to finish wins.
//
// All of it is files and flags (seeded resources/_gen, --cacheDir, --gc),
// so it works the same for any Hugo binary that runs with childEnv.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sitehost/sitehost/internal/tempdir"
	"github.com/sitehost/sitehost/internal/units"
)

// CacheLimit bounds what is kept of a site's Hugo cache. Hugo's --gc leaves
// only what the last build used, so this is that build's working set; a
// site over it gets no cache rather than an arbitrary part of one.
const CacheLimit = 1 << 30

// genDir is where Hugo keeps processed images and assets by default
// (caches.images and caches.assets are ":resourceDir/_gen"). A site that
// moves resourceDir or those caches elsewhere builds without them.
const genDir = "resources/_gen"

// keptVersions is how many Hugo versions' caches a site keeps: the one in
// use and the one before it, for a rollback or a preview on the old one.
const keptVersions = 2

// safeVersion is what a Hugo version may look like in a directory name.
var safeVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._+-]*$`)

// stamp tells a seeded file from one Hugo wrote: Hugo never sets mtimes,
// and the copy keeps the snapshot's.
type stamp struct {
	size  int64
	mtime time.Time
}

// hugoCache is one build's view of its site's cache.
type hugoCache struct {
	root      string       // Request.CacheDir; "" keeps nothing
	version   string       // dir of this Hugo version under root
	gen       string       // the tree's resources/_gen
	work      string       // private: work/dir is Hugo's --cacheDir
	claim     *tempdir.Dir // holds work when it is under root
	trusted   bool
	limit     int64
	committed map[string]bool  // under gen, from the repository: never saved
	seeded    map[string]stamp // "gen/…" and "dir/…" copied in from the snapshot
	notes     []string         // for the build log
}

// openCache makes the build's private cache dirs and seeds them from the
// site's snapshot. It does not fail: a cache problem costs time, not the
// build, and the build log says what happened.
func (b *Builder) openCache(req Request, scratch string) *hugoCache {
	c := &hugoCache{
		gen: filepath.Join(req.Src, filepath.FromSlash(genDir)), trusted: !req.Untrusted, limit: b.opts.CacheLimit,
		work: filepath.Join(scratch, "hugo-cache"), seeded: map[string]stamp{},
	}
	v := req.Settings.Hugo()
	switch {
	case req.CacheDir == "":
	case !safeVersion.MatchString(v):
		c.notef("Hugo cache: not used (Hugo version %q is not a directory name)", v)
	default:
		c.root, c.version = req.CacheDir, filepath.Join(req.CacheDir, "hugo-"+v)
		// Next to the snapshot, so saving it is a rename; held by this
		// process, so the next build removes it if the process is killed.
		var err error
		if err = os.MkdirAll(req.CacheDir, 0o755); err == nil {
			if _, serr := tempdir.Sweep(req.CacheDir, workPrefix); serr != nil {
				c.notef("Hugo cache: removing the copies of killed builds: %v", serr)
			}
			c.claim, err = tempdir.Claim(req.CacheDir, workPrefix)
		}
		if err == nil {
			c.work = c.claim.Path()
		} else {
			c.notef("Hugo cache: not used: %v", err)
			c.root = ""
		}
	}
	if err := os.MkdirAll(c.dir(), 0o755); err != nil {
		c.notef("Hugo cache: making %s: %v", c.dir(), err)
	}
	if c.root == "" {
		return c
	}
	var err error
	if c.committed, err = listFiles(c.gen); err != nil {
		c.notef("Hugo cache: not used: reading %s: %v", genDir, err)
		c.root = ""
		return c
	}
	unlock, err := lockFile(filepath.Join(c.root, "lock"), syscall.LOCK_SH)
	if err != nil {
		c.notef("Hugo cache: not used: %v", err)
		c.root = ""
		return c
	}
	defer unlock()
	cur := filepath.Join(c.version, "current")
	if _, err := os.Stat(cur); errors.Is(err, fs.ErrNotExist) {
		c.notef("Hugo cache: none yet for Hugo v%s", v)
		return c
	}
	now := time.Now()
	_ = os.Chtimes(c.version, now, now) // most recently used: pruning keeps it
	var size int64
	for _, t := range []struct{ from, to, key string }{{"gen", c.gen, "gen/"}, {"dir", c.dir(), "dir/"}} {
		err := copyTree(filepath.Join(cur, t.from), t.to, func(rel string) bool { return t.key == "gen/" && c.committed[rel] },
			func(rel string, st stamp) { c.seeded[t.key+rel] = st; size += st.size })
		if err != nil {
			c.notef("Hugo cache: seeding stopped, building with part of it: %v", err)
			break
		}
	}
	untrusted := ""
	if !c.trusted {
		untrusted = " (untrusted build: a copy, never saved)"
	}
	c.notef("Hugo cache: reusing %d files (%s) from an earlier build with Hugo v%s, copied in %s%s",
		len(c.seeded), units.Bytes(size), v, time.Since(now).Round(time.Millisecond), untrusted)
	return c
}

// dir is Hugo's --cacheDir for this build.
func (c *hugoCache) dir() string { return filepath.Join(c.work, "dir") }

func (c *hugoCache) notef(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// log writes the notes so far to w (the build log) and forgets them.
func (c *hugoCache) log(w io.Writer) {
	for _, n := range c.notes {
		fmt.Fprintln(w, n)
	}
	c.notes = nil
}

// logAfter appends the notes to a finished build's log, past the cap (they
// are short), and gives them to tee, the log's followers.
func (c *hugoCache) logAfter(log []byte, tee io.Writer) []byte {
	n := len(log)
	for _, note := range c.notes {
		log = append(log, note+"\n"...)
	}
	if tee != nil {
		tee.Write(log[n:]) //nolint:errcheck // a follower's problem
	}
	c.notes = nil
	return log
}

// close removes the build's private copy, whatever became of the build.
func (c *hugoCache) close() {
	if c.claim != nil {
		_ = c.claim.Release()
		return
	}
	_ = os.RemoveAll(c.work)
}

// workPrefix names a build's private copy of the cache (tempdir).
const workPrefix = "work-"

// save makes a successful build's cache the site's snapshot; the notes say
// how much of it Hugo made this time. Only trusted builds save.
func (c *hugoCache) save() {
	if c.root == "" || !c.trusted {
		return
	}
	start := time.Now()
	// Committed files stay the repository's; the cache has what Hugo made.
	for rel := range c.committed {
		_ = os.Remove(filepath.Join(c.gen, filepath.FromSlash(rel)))
	}
	var files, made int
	var size int64
	for _, t := range []struct{ dir, key string }{{c.gen, "gen/"}, {c.dir(), "dir/"}} {
		err := walkFiles(t.dir, func(rel string, fi fs.FileInfo) {
			files++
			size += fi.Size()
			if st, ok := c.seeded[t.key+rel]; !ok || st.size != fi.Size() || !st.mtime.Equal(fi.ModTime()) {
				made++
			}
		})
		if err != nil {
			c.notef("Hugo cache: not saved: %v", err)
			return
		}
	}
	if size > c.limit {
		c.notef("Hugo cache: %s is over the %s limit per site: not kept, the next build processes everything again", units.Bytes(size), units.Bytes(c.limit))
		if err := c.replace(""); err != nil {
			c.notef("Hugo cache: removing the kept one: %v", err)
		}
		return
	}
	if err := moveDir(c.gen, filepath.Join(c.work, "gen")); err != nil {
		c.notef("Hugo cache: not saved: %v", err)
		return
	}
	if err := c.replace(c.work); err != nil {
		c.notef("Hugo cache: not saved: %v", err)
		return
	}
	c.notef("Hugo cache: saved %d files (%s), %d of them made by this build, in %s", files, units.Bytes(size), made, time.Since(start).Round(time.Millisecond))
}

// replace makes next (a dir holding gen and dir; "" for none) the current
// snapshot of this Hugo version, and prunes what no build can use any more.
func (c *hugoCache) replace(next string) error {
	unlock, err := lockFile(filepath.Join(c.root, "lock"), syscall.LOCK_EX)
	if err != nil {
		return err
	}
	cur := filepath.Join(c.version, "current")
	trash, err := mkdirUnique(c.root, "trash-")
	if err == nil {
		defer os.RemoveAll(trash) // after unlock: no reader can reach it any more
		err = os.Rename(cur, filepath.Join(trash, "old"))
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	if err == nil && next != "" {
		if err = os.MkdirAll(c.version, 0o755); err == nil {
			err = os.Rename(next, cur)
		}
	}
	old := c.oldVersions()
	unlock()
	for _, d := range old {
		_ = os.RemoveAll(d)
	}
	return err
}

// oldVersions are the version dirs beyond the keptVersions most recently
// used (this one counts as most recent), Hugo's dirs from the layout
// before this one, and trash or work dirs left by a server that died
// mid-build (a work dir is made when its build starts, and no build
// outlives a day). Nothing else is touched: the dir is data_dir/cache/hugo/<site>,
// next to other caches.
func (c *hugoCache) oldVersions() []string {
	ents, err := os.ReadDir(c.root)
	if err != nil {
		return nil
	}
	type dir struct {
		path string
		used time.Time
	}
	var versions []dir
	var old []string
	for _, e := range ents {
		p := filepath.Join(c.root, e.Name())
		fi, err := e.Info()
		if err != nil || !e.IsDir() || p == c.version || p == c.work {
			continue
		}
		switch name := e.Name(); {
		case strings.HasPrefix(name, "hugo-"):
			versions = append(versions, dir{p, fi.ModTime()})
		case name == "src" || name == "modules":
			// Hugo's own, from when --cacheDir was this dir itself.
			old = append(old, p)
		case (strings.HasPrefix(name, "work-") || strings.HasPrefix(name, "trash-")) && time.Since(fi.ModTime()) > 24*time.Hour:
			old = append(old, p)
		}
	}
	slices.SortFunc(versions, func(a, b dir) int { return b.used.Compare(a.used) })
	for i, d := range versions {
		if i >= keptVersions-1 {
			old = append(old, d.path)
		}
	}
	return old
}

// lockFile takes an flock on path (created if needed). Locks are per open
// file, so two builds in one process exclude each other too.
func lockFile(path string, how int) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

func mkdirUnique(parent, prefix string) (string, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	p := filepath.Join(parent, prefix+hex.EncodeToString(b))
	if err := os.Mkdir(p, 0o755); err != nil {
		return "", err
	}
	return p, nil
}

// listFiles is the set of regular files under dir, by slash path; a
// missing dir has none.
func listFiles(dir string) (map[string]bool, error) {
	set := map[string]bool{}
	err := walkFiles(dir, func(rel string, _ fs.FileInfo) { set[rel] = true })
	return set, err
}

// walkFiles calls fn for each regular file under dir (missing: none).
func walkFiles(dir string, fn func(rel string, fi fs.FileInfo)) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fn(filepath.ToSlash(rel), fi)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) && !exists(dir) {
		return nil
	}
	return err
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// copyTree copies the regular files under from into to, keeping mtimes
// (Hugo expires entries by them), except those skip names. A file is
// written under a temporary name and renamed, so Hugo never sees half of one.
func copyTree(from, to string, skip func(rel string) bool, copied func(rel string, st stamp)) error {
	return walkFiles(from, func(rel string, fi fs.FileInfo) {
		if skip(rel) {
			return
		}
		dst := filepath.Join(to, filepath.FromSlash(rel))
		if err := copyFile(filepath.Join(from, filepath.FromSlash(rel)), dst, fi.ModTime()); err != nil {
			return // that entry is made again
		}
		copied(rel, stamp{fi.Size(), fi.ModTime()})
	})
}

func copyFile(src, dst string, mtime time.Time) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".sitehost-partial"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	if err = os.Chtimes(tmp, mtime, mtime); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// moveDir moves from to to, copying when they are on different file
// systems. A missing from leaves an empty to.
func moveDir(from, to string) error {
	if !exists(from) {
		return os.MkdirAll(to, 0o755)
	}
	err := os.Rename(from, to)
	if err == nil || !errors.Is(err, syscall.EXDEV) {
		return err
	}
	var copyErr error
	err = walkFiles(from, func(rel string, fi fs.FileInfo) {
		if copyErr == nil {
			copyErr = copyFile(filepath.Join(from, filepath.FromSlash(rel)), filepath.Join(to, filepath.FromSlash(rel)), fi.ModTime())
		}
	})
	return errors.Join(err, copyErr)
}
