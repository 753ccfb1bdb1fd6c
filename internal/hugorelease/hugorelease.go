// Package hugorelease fetches the Hugo releases sites ask for
// (build.hugo_version, HUGO_VERSION in netlify.toml): the extended
// tarball for this machine, verified against the release's checksums
// file, unpacked once per version per machine under a cache directory.
// Assets are named as on Hugo's GitHub releases, so a mirror is a folder
// laid out the same way.
package hugorelease

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/keylock"
)

// DefaultReleases is where Hugo publishes its release assets.
const DefaultReleases = "https://github.com/gohugoio/hugo/releases/download/v{version}/"

// MinVersion is the oldest release sitehost runs. The build sandbox is
// Hugo's own security policy, set through HUGO_SECURITY, which must win over
// the site's own [security] config. Before v0.115.4 Hugo skipped an
// environment value for a config map the site had set (metadecoders could
// not decode into maps.Params): v0.111.3 and v0.112.1 were seen building
// a site whose own getenv = ['.*'] read HOME despite the policy, and
// crashing when a theme set security. Older releases are refused.
const MinVersion = "0.115.4"

// Limits on what a release may be: Hugo's extended tarballs are ~25 MB and
// unpack to a ~100 MB binary.
const (
	maxTarball   = 256 << 20
	maxBinary    = 512 << 20
	maxChecksums = 1 << 20
)

// versionRE is what a Hugo version looks like: 0.152.2, without the v.
var versionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// Normalize turns "v0.152.2" or "0.152.2" into "0.152.2"; an error says
// what a version must look like.
func Normalize(v string) (string, error) {
	s := strings.TrimPrefix(strings.TrimSpace(v), "v")
	if !versionRE.MatchString(s) {
		return "", fmt.Errorf("hugo version %q: want a release number like 0.152.2", v)
	}
	return s, nil
}

// Compare orders two normalized versions like strings.Compare.
func Compare(a, b string) int {
	pa, pb := parts(a), parts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func parts(v string) [3]int {
	var out [3]int
	for i, p := range strings.SplitN(v, ".", 3) {
		out[i], _ = strconv.Atoi(p)
	}
	return out
}

// Check says whether sitehost runs version v: a well-formed release no
// older than MinVersion. Its error is the site's to fix.
func Check(v string) (string, error) {
	n, err := Normalize(v)
	if err != nil {
		return "", err
	}
	if Compare(n, MinVersion) < 0 {
		return "", fmt.Errorf("hugo version %s is older than v%s, the oldest sitehost runs: its build sandbox (Hugo's security policy, set by sitehost) is not applied reliably by older releases; pin v%s or newer", n, MinVersion, MinVersion)
	}
	return n, nil
}

// UnknownVersionError is a version that has no release: the site's to fix.
type UnknownVersionError struct {
	Version string
	Known   []string // releases that exist, newest first (may be empty)
	URL     string   // the checksums file looked for
}

func (e *UnknownVersionError) Error() string {
	msg := fmt.Sprintf("hugo v%s does not exist (no checksums file in its release)", e.Version)
	if e.URL != "" {
		msg = fmt.Sprintf("hugo v%s does not exist (no checksums file at %s)", e.Version, e.URL)
	}
	if len(e.Known) > 0 {
		msg += "; releases that do: " + strings.Join(e.Known, ", ")
	}
	return msg
}

// FaultKind: asking again gives the same answer; wait for a new commit.
func (e *UnknownVersionError) FaultKind() fault.Kind { return fault.KindStalled }

// Options configure a Store.
type Options struct {
	// Releases is the base URL of a release's assets with {version} in it
	// (https, file://, or http to a loopback host: see CheckURL). Default
	// DefaultReleases.
	Releases string
	// Dir holds the unpacked releases, one folder per version.
	Dir string
	// Client fetches; nil means http.DefaultClient.
	Client *http.Client
	// Versions lists the releases that exist: a version the mirror lacks
	// but the list has is the mirror's fault, not the site's, and the
	// message for one that does not exist names its neighbours (nil: every
	// version the mirror lacks does not exist).
	Versions func(ctx context.Context) ([]string, error)
	// GOOS and GOARCH choose the asset; empty means this machine's.
	GOOS, GOARCH string
	Logger       *slog.Logger
}

// Store fetches and caches Hugo releases. Safe for concurrent use, also
// by several processes sharing Dir: two builds asking for the same version
// fetch it once.
type Store struct {
	opts  Options
	locks keylock.Locks // one check or fetch per version at a time
}

// New returns a Store; it checks the options and sweeps what crashed
// fetches left in Dir, but fetches nothing.
func New(opts Options) (*Store, error) {
	if opts.Releases == "" {
		opts.Releases = DefaultReleases
	}
	if err := CheckURL(opts.Releases); err != nil {
		return nil, fmt.Errorf("hugo releases URL: %w", err)
	}
	if opts.Dir == "" {
		return nil, errors.New("hugo releases: no cache directory")
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	opts.Client = guardRedirects(opts.Client)
	if opts.GOOS == "" {
		opts.GOOS = runtime.GOOS
	}
	if opts.GOARCH == "" {
		opts.GOARCH = runtime.GOARCH
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{opts: opts}
	s.sweep()
	return s, nil
}

// Binary is an unpacked, verified Hugo release.
type Binary struct {
	Version string
	Path    string // the hugo executable
	SHA256  string // of the tarball it came from
	Fetched bool   // fetched by this call (false: from the cache)
	URL     string // where the tarball came from
	Took    time.Duration
}

// Asset is the extended tarball's name for version v on this machine, as
// Hugo's releases name it.
func (s *Store) Asset(v string) (string, error) {
	var platform string
	switch s.opts.GOOS {
	case "linux", "windows", "freebsd", "openbsd", "netbsd":
		platform = s.opts.GOOS + "-" + s.opts.GOARCH
	case "darwin":
		platform = "darwin-universal"
	default:
		return "", fmt.Errorf("hugo releases have no build for %s/%s", s.opts.GOOS, s.opts.GOARCH)
	}
	return fmt.Sprintf("hugo_extended_%s_%s.tar.gz", v, platform), nil
}

// Hugo returns the hugo executable of release v, fetching and verifying it
// the first time. Errors: *UnknownVersionError when the release does not
// exist; a stalled error when the release has no extended build for this
// machine; anything else (network, a tarball that does not match its
// checksum) is transient.
func (s *Store) Hugo(ctx context.Context, version string) (Binary, error) {
	v, err := Check(version)
	if err != nil {
		return Binary{}, fault.Stalled(err)
	}
	asset, err := s.Asset(v)
	if err != nil {
		return Binary{}, fault.Stalled(err)
	}
	unlock, err := s.lock(ctx, v)
	if err != nil {
		return Binary{}, fault.Transient(fmt.Errorf("hugo v%s: %w", v, err))
	}
	defer unlock()
	// Checked under the lock: another process may have fetched it while
	// this one waited.
	if m, ok := s.cached(v); ok {
		s.touch(v)
		return s.binary(v, asset, m, false), nil
	}
	start := time.Now()
	b, err := s.fetch(ctx, v, asset)
	if err != nil {
		return Binary{}, err
	}
	b.Took = time.Since(start)
	s.touch(v)
	if b.Fetched {
		s.opts.Logger.Info("fetched hugo release", "version", v, "url", b.URL, "sha256", b.SHA256, "took", b.Took.Round(time.Millisecond).String())
		s.evict(v)
	}
	return b, nil
}

func (s *Store) binary(v, asset string, m meta, fetched bool) Binary {
	return Binary{Version: v, Path: filepath.Join(s.opts.Dir, v, "hugo"), SHA256: m.Tarball, Fetched: fetched, URL: s.url(v, asset)}
}

func (s *Store) url(v, name string) string {
	base := strings.ReplaceAll(s.opts.Releases, "{version}", v)
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + name
}

// fetch downloads the checksums file and the tarball, verifies one against
// the other and unpacks the hugo executable into Dir/v, which appears whole
// or not at all. The caller holds v's lock.
func (s *Store) fetch(ctx context.Context, v, asset string) (Binary, error) {
	sumsName := fmt.Sprintf("hugo_%s_checksums.txt", v)
	sumsURL := s.url(v, sumsName)
	var sums bytes.Buffer
	if err := s.get(ctx, sumsURL, &sums, maxChecksums); err != nil {
		if errors.Is(err, errNotFound) {
			return Binary{}, s.missing(ctx, v, sumsURL)
		}
		return Binary{}, fault.Transient(fmt.Errorf("fetching hugo v%s: %w", v, err))
	}
	want, err := checksumOf(sums.Bytes(), asset)
	if err != nil {
		// The mirror's to fix (or someone between it and here).
		return Binary{}, fault.Transient(fmt.Errorf("refusing hugo v%s: %s: %w", v, sumsURL, err))
	}
	if want == "" {
		return Binary{}, fault.Stalled(fmt.Errorf("hugo v%s has no %s (its checksums file does not list it): no extended build for %s/%s in this release", v, asset, s.opts.GOOS, s.opts.GOARCH))
	}
	tmp, err := os.MkdirTemp(s.opts.Dir, fetchGlob+v+"-")
	if err != nil {
		return Binary{}, err
	}
	defer os.RemoveAll(tmp)
	tgz, err := os.Create(filepath.Join(tmp, asset))
	if err != nil {
		return Binary{}, err
	}
	defer tgz.Close()
	h := sha256.New()
	u := s.url(v, asset)
	if err := s.get(ctx, u, io.MultiWriter(tgz, h), maxTarball); err != nil {
		if errors.Is(err, errNotFound) {
			return Binary{}, fault.Stalled(fmt.Errorf("hugo v%s: %s is listed in its checksums file but not published: %w", v, asset, err))
		}
		return Binary{}, fault.Transient(fmt.Errorf("fetching hugo v%s: %w", v, err))
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		// Not the site's fault: a mirror or a network path is tampering.
		return Binary{}, fault.Transient(fmt.Errorf("refusing hugo v%s: %s has sha256 %s, but %s says %s", v, u, got, sumsName, want))
	}
	if _, err := tgz.Seek(0, io.SeekStart); err != nil {
		return Binary{}, err
	}
	m := meta{Tarball: got}
	if m.Binary, m.Size, err = unpackHugo(tgz, filepath.Join(tmp, "hugo")); err != nil {
		return Binary{}, fault.Transient(fmt.Errorf("unpacking %s: %w", u, err))
	}
	if err := os.Remove(filepath.Join(tmp, asset)); err != nil {
		return Binary{}, err
	}
	// The record last and synced, like the binary: after a crash, a
	// folder with a record has the whole binary.
	if err := writeSynced(filepath.Join(tmp, metaName), m.encode()); err != nil {
		return Binary{}, err
	}
	if err := syncDir(tmp); err != nil {
		return Binary{}, err
	}
	if err := s.install(v, tmp); err != nil {
		if m, err := s.readCache(v); err == nil {
			// Another process finished it meanwhile (a Dir where flock does
			// not work, such as some network filesystems): as good.
			return s.binary(v, asset, m, false), nil
		}
		return Binary{}, err
	}
	return s.binary(v, asset, m, true), nil
}

var errInstalled = errors.New("installed meanwhile")

// install renames the fetched folder tmp to Dir/v. What is at Dir/v, if
// not a whole release, is moved aside and removed; a whole one is never
// removed (errInstalled).
func (s *Store) install(v, tmp string) error {
	dir := filepath.Join(s.opts.Dir, v)
	if _, err := s.readCache(v); err == nil {
		return errInstalled
	}
	if _, err := os.Lstat(dir); err == nil {
		aside, err := os.MkdirTemp(s.opts.Dir, fetchGlob+v+"-broken-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(aside)
		if err := renameOnto(dir, aside); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	// The rename itself survives a crash once the parent is synced; if
	// it does not, the release is fetched again.
	_ = syncDir(s.opts.Dir)
	return nil
}

func syncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// missing is the error for a release whose checksums file the mirror does
// not have: the site's to fix if the version does not exist, the mirror's
// if it does (a new release the mirror has not copied yet).
func (s *Store) missing(ctx context.Context, v, sumsURL string) error {
	all := s.versions(ctx)
	if slices.Contains(all, v) {
		return fault.Transient(fmt.Errorf("hugo v%s is not on the mirror %s (it is a release: the mirror has not copied it yet, or server.build.hugo_releases points at the wrong place)", v, sumsURL))
	}
	return &UnknownVersionError{Version: v, Known: known(all, v), URL: sumsURL}
}

// writeSynced writes a file and syncs it to disk.
func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checksumOf finds name's sha256 in a `sha256sum` listing: "" if it is not
// listed. A listing that gives name two different sums, or a sum that is
// not 64 hex digits, is refused. Lines may end in CRLF and names may have
// sha256sum's binary-mode "*".
func checksumOf(sums []byte, name string) (string, error) {
	var found string
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		f := strings.Fields(sc.Text()) // also drops a trailing \r
		if len(f) != 2 || strings.TrimPrefix(f[1], "*") != name {
			continue
		}
		sum := strings.ToLower(f[0])
		if !isSHA256(sum) {
			return "", fmt.Errorf("%s has sha256 %q, not 64 hex digits", name, f[0])
		}
		if found != "" && found != sum {
			return "", fmt.Errorf("%s is listed twice, with sha256 %s and %s", name, found, sum)
		}
		found = sum
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return found, nil
}

func isSHA256(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// unpackHugo writes the tarball's top-level "hugo" file to dst, executable
// and synced, and returns its sha256 and size.
func unpackHugo(r io.Reader, dst string) (string, int64, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return "", 0, err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", 0, errors.New("no hugo executable in the tarball")
		}
		if err != nil {
			return "", 0, err
		}
		if hdr.Typeflag != tar.TypeReg || strings.TrimPrefix(hdr.Name, "./") != "hugo" {
			continue
		}
		if hdr.Size > maxBinary {
			return "", 0, fmt.Errorf("hugo executable is %d bytes, more than %d", hdr.Size, maxBinary)
		}
		if hdr.Size == 0 {
			return "", 0, errors.New("hugo executable is empty")
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
		if err != nil {
			return "", 0, err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(tr, maxBinary))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", 0, err
		}
		return hex.EncodeToString(h.Sum(nil)), n, nil
	}
}

// versions lists the releases that exist (normalized, newest first), nil
// when there is no list or it cannot be had.
func (s *Store) versions(ctx context.Context) []string {
	if s.opts.Versions == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	all, err := s.opts.Versions(ctx)
	if err != nil {
		s.opts.Logger.Warn("listing hugo releases", "err", err)
		return nil
	}
	var out []string
	for _, a := range all {
		if n, err := Normalize(a); err == nil {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return Compare(b, a) })
	return slices.Compact(out)
}

// known picks, for the message, the releases near v that exist and
// sitehost runs: the same minor series and the newest few.
func known(all []string, v string) []string {
	var ok []string
	for _, a := range all {
		if n, err := Check(a); err == nil {
			ok = append(ok, n)
		}
	}
	minor := v[:strings.LastIndex(v, ".")+1]
	var out []string
	for _, a := range ok {
		if strings.HasPrefix(a, minor) {
			out = append(out, a)
		}
	}
	for _, a := range ok[:min(3, len(ok))] {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// ProxyVersions lists Hugo's releases from the first http(s) Go module
// proxy of a GOPROXY-style list: every Hugo release is a module version of
// github.com/gohugoio/hugo.
func ProxyVersions(client *http.Client, proxies string) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		for _, p := range strings.FieldsFunc(proxies, func(r rune) bool { return r == ',' || r == '|' }) {
			p = strings.TrimSpace(p)
			if !strings.HasPrefix(p, "http://") && !strings.HasPrefix(p, "https://") {
				continue
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p, "/")+"/github.com/gohugoio/hugo/@v/list", nil)
			if err != nil {
				return nil, err
			}
			if client == nil {
				client = http.DefaultClient
			}
			resp, err := client.Do(req)
			if err != nil {
				return nil, err
			}
			data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("%s: %s", req.URL, resp.Status)
			}
			return strings.Fields(string(data)), nil
		}
		return nil, errors.New("no http module proxy to list hugo releases from")
	}
}
