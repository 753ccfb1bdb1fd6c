// Package hugomod makes a site's Hugo Modules available offline: it reads
// the site's go.mod and go.sum, downloads each required module version
// through the Go module proxy protocol, verifies it against go.sum, and
// lays the modules out as Hugo's _vendor directory, which Hugo reads
// before it would ever run the go command. No Go toolchain and no network
// access are needed in the build itself.
package hugomod

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/sitehost/sitehost/internal/download"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/keylock"
	"github.com/sitehost/sitehost/internal/tempdir"
)

// DefaultProxy is the public Go module proxy.
const DefaultProxy = "https://proxy.golang.org"

// DefaultMaxZipBytes bounds one module zip download. x/mod/zip bounds
// the extracted size on its own (500 MiB).
const DefaultMaxZipBytes = 500 << 20

// vendorDir and modulesFile are the names Hugo reads
// (hugo/modules/collect.go: vendord, vendorModulesFilename).
const (
	vendorDir   = "_vendor"
	modulesFile = "modules.txt"
)

// fetchPrefix names the folder a fetch downloads and extracts a module in
// (tempdir); no module path element starts with a dot.
const fetchPrefix = ".fetch-"

// Options configure Vendor.
type Options struct {
	// Proxies is a GOPROXY-style list: URLs separated by "," (try the
	// next one only when a module is not found) or "|" (try the next one
	// on any error). "off" allows no downloads. Empty means DefaultProxy.
	Proxies string
	// Private are GOPRIVATE-style glob patterns of module paths that are
	// never asked of a proxy.
	Private []string
	// CacheDir holds verified, extracted modules shared by every site.
	CacheDir string
	// Cache guards CacheDir between concurrent Vendor calls. Nil means a
	// cache private to this call.
	Cache *Cache
	// Client is the HTTP client for proxies; nil means
	// http.DefaultClient.
	Client *http.Client
	// MaxZipBytes bounds one zip download; 0 means DefaultMaxZipBytes.
	MaxZipBytes int64
}

// Module is one module version laid out in _vendor.
type Module struct {
	Path    string
	Version string
	// Downloaded is true when this call fetched it from a proxy, false
	// when it came from the cache or a committed _vendor.
	Downloaded bool
}

// String is path@version.
func (m Module) String() string { return m.Path + "@" + m.Version }

// Result says what Vendor did.
type Result struct {
	// Committed is true when the repository has its own _vendor, used
	// as it is.
	Committed bool
	// Modules are the module versions in _vendor, sorted by path.
	Modules []Module
}

// Cache serialises work on one module version across concurrent Vendor
// calls, so sites sharing a theme download it once. Create one per
// CacheDir and share it.
type Cache struct {
	locks     keylock.Locks
	downloads atomic.Int64
}

// NewCache returns an empty Cache.
func NewCache() *Cache { return &Cache{} }

// Downloads counts zips fetched from proxies since the Cache was made.
func (c *Cache) Downloads() int64 { return c.downloads.Load() }

// errNotFound is a proxy's 404 or 410 (or a missing file:// entry).
var errNotFound = download.ErrNotFound

// errPrivate is a proxy's 401 or 403.
var errPrivate = errors.New("private modules are not supported yet")

// Vendor prepares dir, an exported site tree, so Hugo resolves its
// modules offline. See the package comment.
func Vendor(ctx context.Context, dir string, opts Options) (Result, error) {
	// Hugo takes _vendor as vendored when it has modules.txt
	// (collect.go: isVendored); so do we.
	if _, err := os.Stat(filepath.Join(dir, vendorDir, modulesFile)); err == nil {
		mods, err := readModulesTxt(filepath.Join(dir, vendorDir, modulesFile))
		if err != nil {
			return Result{}, err
		}
		return Result{Committed: true, Modules: mods}, nil
	}
	gomodPath := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(gomodPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("reading go.mod: %w", err)
	}
	mf, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		return Result{}, fault.Stalled(fmt.Errorf("go.mod: %w", err))
	}
	sums, err := readGoSum(filepath.Join(dir, "go.sum"))
	if err != nil {
		return Result{}, err
	}
	if opts.Cache == nil {
		opts.Cache = NewCache()
	}
	if opts.Proxies == "" {
		opts.Proxies = DefaultProxy
	}
	if opts.MaxZipBytes == 0 {
		opts.MaxZipBytes = DefaultMaxZipBytes
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.CacheDir == "" {
		return Result{}, errors.New("hugomod: no cache directory")
	}
	v := &vendorer{opts: opts, sums: sums, replace: map[string]module.Version{}, local: map[string]bool{}}
	for _, r := range mf.Replace {
		if modfile.IsDirectoryPath(r.New.Path) {
			// A module replaced by a directory of the repository is not
			// fetched; Hugo reads that directory itself.
			v.local[r.Old.Path] = true
			continue
		}
		v.replace[r.Old.Path] = r.New
	}
	selected, fetched, err := v.resolve(ctx, mf)
	if err != nil {
		return Result{}, err
	}
	return v.layout(dir, selected, fetched)
}

type vendorer struct {
	opts    Options
	sums    map[string]string
	replace map[string]module.Version
	local   map[string]bool
}

// fetched is a module version in the cache.
type fetched struct {
	dir        string
	downloaded bool
}

// resolve walks the requirement graph breadth first from the site's
// go.mod, keeping the highest version of each path (minimal version
// selection), and fetches every version it needs to read.
func (v *vendorer) resolve(ctx context.Context, mf *modfile.File) (map[string]string, map[module.Version]fetched, error) {
	selected := map[string]string{}
	var queue []module.Version
	add := func(m module.Version) {
		if v.local[m.Path] {
			return
		}
		if cur, ok := selected[m.Path]; ok && semver.Compare(cur, m.Version) >= 0 {
			return
		}
		selected[m.Path] = m.Version
		queue = append(queue, m)
	}
	for _, r := range mf.Require {
		add(r.Mod)
	}
	got := map[module.Version]fetched{}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		if selected[m.Path] != m.Version {
			continue // superseded by a higher version before we got to it
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		f, err := v.fetch(ctx, m)
		if err != nil {
			return nil, nil, err
		}
		got[m] = f
		reqs, err := requirements(f.dir)
		if err != nil {
			return nil, nil, fault.Stalled(fmt.Errorf("module %s: %w", m, err))
		}
		for _, r := range reqs {
			add(r)
		}
	}
	return selected, got, nil
}

// requirements reads the require list of a module's own go.mod.
func requirements(dir string) ([]module.Version, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	mf, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		return nil, err
	}
	out := make([]module.Version, 0, len(mf.Require))
	for _, r := range mf.Require {
		out = append(out, r.Mod)
	}
	return out, nil
}

// fetch returns m extracted in the cache, downloading and verifying it
// if needed.
func (v *vendorer) fetch(ctx context.Context, m module.Version) (fetched, error) {
	src := m
	if r, ok := v.replace[m.Path]; ok {
		src = r
		if src.Version == "" {
			src.Version = m.Version
		}
	}
	name := fmt.Sprintf("module %s", src)
	want, ok := v.sums[src.Path+" "+src.Version]
	if !ok {
		return fetched{}, fault.Stalled(fmt.Errorf("%s: not in go.sum", name))
	}
	if module.MatchPrefixPatterns(strings.Join(v.opts.Private, ","), src.Path) {
		return fetched{}, fault.Stalled(fmt.Errorf("%s: %w (it matches the private module patterns)", name, errPrivate))
	}
	escPath, err := module.EscapePath(src.Path)
	if err != nil {
		return fetched{}, fault.Stalled(fmt.Errorf("%s: %w", name, err))
	}
	escVer, err := module.EscapeVersion(src.Version)
	if err != nil {
		return fetched{}, fault.Stalled(fmt.Errorf("%s: %w", name, err))
	}
	final := filepath.Join(v.opts.CacheDir, filepath.FromSlash(escPath)+"@"+escVer)
	hashFile := final + ".ziphash"

	unlock, err := v.opts.Cache.locks.Lock(ctx, final)
	if err != nil {
		return fetched{}, err
	}
	defer unlock()

	if h, err := os.ReadFile(hashFile); err == nil {
		if _, err := os.Stat(final); err == nil {
			if got := strings.TrimSpace(string(h)); got != want {
				return fetched{}, fault.Stalled(fmt.Errorf("%s: checksum mismatch: go.sum has %s, the module is %s", name, want, got))
			}
			return fetched{dir: final}, nil
		}
	}

	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return fetched{}, err
	}
	// The zip and its extraction go in a folder of this process's own
	// next to final (a rename away); one a killed process left is removed
	// by the next fetch beside it (tempdir).
	tempdir.Sweep(filepath.Dir(final), fetchPrefix) //nolint:errcheck // what stays, a later fetch tries again
	scratch, err := tempdir.Claim(filepath.Dir(final), fetchPrefix)
	if err != nil {
		return fetched{}, err
	}
	defer scratch.Release() //nolint:errcheck // what stays, a later fetch removes
	zipFile, err := os.Create(filepath.Join(scratch.Path(), "zip"))
	if err != nil {
		return fetched{}, err
	}
	err = v.download(ctx, escPath+"/@v/"+escVer+".zip", zipFile)
	if cerr := zipFile.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, errPrivate) {
			return fetched{}, fault.Stalled(fmt.Errorf("%s: %w", name, err))
		}
		return fetched{}, fmt.Errorf("%s: %w", name, err)
	}
	v.opts.Cache.downloads.Add(1)
	got, err := dirhash.HashZip(zipFile.Name(), dirhash.Hash1)
	if err != nil {
		return fetched{}, fault.Stalled(fmt.Errorf("%s: reading zip: %w", name, err))
	}
	if got != want {
		return fetched{}, fault.Stalled(fmt.Errorf("%s: checksum mismatch: go.sum has %s, downloaded %s", name, want, got))
	}
	extracted := filepath.Join(scratch.Path(), "m")
	if err := modzip.Unzip(extracted, src, zipFile.Name()); err != nil {
		return fetched{}, fault.Stalled(fmt.Errorf("%s: %w", name, err))
	}
	// The hash first, then the directory: a crash in between leaves a
	// hash without a directory, which is a miss.
	if err := os.WriteFile(hashFile, []byte(got+"\n"), 0o644); err != nil {
		return fetched{}, err
	}
	_ = os.RemoveAll(final) // a leftover without its hash file
	if err := os.Rename(extracted, final); err != nil {
		return fetched{}, err
	}
	return fetched{dir: final, downloaded: true}, nil
}

// download copies the proxy's file at rel (escaped) into w, trying the
// proxies in order.
func (v *vendorer) download(ctx context.Context, rel string, w *os.File) error {
	list := v.opts.Proxies
	var lastErr error
	for list != "" {
		var entry string
		fallAny := false
		if i := strings.IndexAny(list, ",|"); i >= 0 {
			entry, fallAny, list = list[:i], list[i] == '|', list[i+1:]
		} else {
			entry, list = list, ""
		}
		entry = strings.TrimSpace(entry)
		switch entry {
		case "":
			continue
		case "off":
			return errors.New("downloads are off (goproxy \"off\") and the repository does not vendor it in _vendor/")
		case "direct":
			return errors.New("goproxy \"direct\" is not supported: use a module proxy")
		case "noproxy":
			continue
		}
		if err := w.Truncate(0); err != nil {
			return err
		}
		if _, err := w.Seek(0, io.SeekStart); err != nil {
			return err
		}
		err := v.get(ctx, strings.TrimSuffix(entry, "/")+"/"+rel, w)
		if err == nil {
			return nil
		}
		lastErr = err
		if errors.Is(err, errPrivate) || ctx.Err() != nil {
			return err
		}
		if !fallAny && !errors.Is(err, errNotFound) {
			return err
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no module proxy configured")
	}
	return lastErr
}

func (v *vendorer) get(ctx context.Context, url string, w io.Writer) error {
	err := download.Get(ctx, v.opts.Client, url, w, v.opts.MaxZipBytes)
	switch {
	case errors.Is(err, download.ErrForbidden):
		return fmt.Errorf("%w: %w", errPrivate, err)
	case errors.Is(err, download.ErrTooLarge):
		return fault.Stalled(fmt.Errorf("module zip: %w", err))
	}
	return err
}

// layout copies the selected modules from the cache to dir/_vendor and
// writes modules.txt as `hugo mod vendor` does: "# path version" lines.
func (v *vendorer) layout(dir string, selected map[string]string, got map[module.Version]fetched) (Result, error) {
	var res Result
	if len(selected) == 0 {
		return res, nil
	}
	paths := make([]string, 0, len(selected))
	for p := range selected {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	vdir := filepath.Join(dir, vendorDir)
	// A _vendor without modules.txt is one Hugo ignores; ours replaces it.
	if err := os.RemoveAll(vdir); err != nil {
		return Result{}, err
	}
	var txt strings.Builder
	for _, p := range paths {
		m := module.Version{Path: p, Version: selected[p]}
		f := got[m]
		// Copies, not hard links: the build must not be able to change
		// the cache other sites read.
		if err := os.CopyFS(filepath.Join(vdir, filepath.FromSlash(p)), os.DirFS(f.dir)); err != nil {
			return Result{}, fmt.Errorf("module %s: laying out _vendor: %w", m, err)
		}
		fmt.Fprintf(&txt, "# %s %s\n", p, m.Version)
		res.Modules = append(res.Modules, Module{Path: p, Version: m.Version, Downloaded: f.downloaded})
	}
	if err := os.WriteFile(filepath.Join(vdir, modulesFile), []byte(txt.String()), 0o644); err != nil {
		return Result{}, err
	}
	return res, nil
}

// readGoSum maps "path version" to its h1: hash. A missing go.sum is
// empty: every module is then "not in go.sum".
func readGoSum(name string) (map[string]string, error) {
	sums := map[string]string{}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return sums, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || strings.HasSuffix(fields[1], "/go.mod") {
			continue
		}
		sums[fields[0]+" "+fields[1]] = fields[2]
	}
	return sums, sc.Err()
}

// readModulesTxt lists a committed _vendor's modules.
func readModulesTxt(name string) ([]Module, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mods []Module
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "# ")
		if !ok {
			continue
		}
		if fields := strings.Fields(line); len(fields) == 2 {
			mods = append(mods, Module{Path: fields[0], Version: fields[1]})
		}
	}
	return mods, sc.Err()
}
