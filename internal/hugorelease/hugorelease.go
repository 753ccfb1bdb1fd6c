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
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
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
}

func (e *UnknownVersionError) Error() string {
	msg := fmt.Sprintf("hugo v%s does not exist (no checksums file in its release)", e.Version)
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
	// (http, https or file://). Default DefaultReleases.
	Releases string
	// Dir holds the unpacked releases, one folder per version.
	Dir string
	// Client fetches; nil means http.DefaultClient.
	Client *http.Client
	// Versions lists the releases that exist, for the message when a
	// version does not (nil: the message names none).
	Versions func(ctx context.Context) ([]string, error)
	// GOOS and GOARCH choose the asset; empty means this machine's.
	GOOS, GOARCH string
	Logger       *slog.Logger
}

// Store fetches and caches Hugo releases. Safe for concurrent use: two
// builds asking for the same version fetch it once.
type Store struct {
	opts  Options
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// New returns a Store; it checks the options but fetches nothing.
func New(opts Options) (*Store, error) {
	if opts.Releases == "" {
		opts.Releases = DefaultReleases
	}
	if !strings.Contains(opts.Releases, "{version}") {
		return nil, fmt.Errorf("hugo releases URL %q has no {version}", opts.Releases)
	}
	if opts.Dir == "" {
		return nil, errors.New("hugo releases: no cache directory")
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.GOOS == "" {
		opts.GOOS = runtime.GOOS
	}
	if opts.GOARCH == "" {
		opts.GOARCH = runtime.GOARCH
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{opts: opts, locks: map[string]*sync.Mutex{}}, nil
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
	unlock := s.lock(v)
	defer unlock()
	dir := filepath.Join(s.opts.Dir, v)
	exe := filepath.Join(dir, "hugo")
	if sum, err := os.ReadFile(filepath.Join(dir, "sha256")); err == nil {
		if fi, err := os.Stat(exe); err == nil && fi.Mode().IsRegular() {
			return Binary{Version: v, Path: exe, SHA256: string(sum), URL: s.url(v, asset)}, nil
		}
	}
	start := time.Now()
	b, err := s.fetch(ctx, v, asset, dir)
	if err != nil {
		return Binary{}, err
	}
	b.Took = time.Since(start)
	s.opts.Logger.Info("fetched hugo release", "version", v, "url", b.URL, "sha256", b.SHA256, "took", b.Took.Round(time.Millisecond).String())
	return b, nil
}

func (s *Store) lock(v string) func() {
	s.mu.Lock()
	l, ok := s.locks[v]
	if !ok {
		l = &sync.Mutex{}
		s.locks[v] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (s *Store) url(v, name string) string {
	base := strings.ReplaceAll(s.opts.Releases, "{version}", v)
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + name
}

// fetch downloads the checksums file and the tarball, verifies one against
// the other and unpacks the hugo executable into dir, which appears whole
// or not at all.
func (s *Store) fetch(ctx context.Context, v, asset, dir string) (Binary, error) {
	sumsName := fmt.Sprintf("hugo_%s_checksums.txt", v)
	var sums bytes.Buffer
	if err := s.get(ctx, s.url(v, sumsName), &sums, maxChecksums); err != nil {
		if errors.Is(err, errNotFound) {
			return Binary{}, &UnknownVersionError{Version: v, Known: s.known(ctx, v)}
		}
		return Binary{}, fault.Transient(fmt.Errorf("fetching hugo v%s: %w", v, err))
	}
	want, ok := checksumOf(sums.Bytes(), asset)
	if !ok {
		return Binary{}, fault.Stalled(fmt.Errorf("hugo v%s has no %s (its checksums file does not list it): no extended build for %s/%s in this release", v, asset, s.opts.GOOS, s.opts.GOARCH))
	}
	if err := os.MkdirAll(s.opts.Dir, 0o755); err != nil {
		return Binary{}, err
	}
	tmp, err := os.MkdirTemp(s.opts.Dir, ".fetch-"+v+"-")
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
	if err := unpackHugo(tgz, filepath.Join(tmp, "hugo")); err != nil {
		return Binary{}, fault.Transient(fmt.Errorf("unpacking %s: %w", u, err))
	}
	if err := os.WriteFile(filepath.Join(tmp, "sha256"), []byte(got), 0o644); err != nil {
		return Binary{}, err
	}
	if err := os.Remove(filepath.Join(tmp, asset)); err != nil {
		return Binary{}, err
	}
	_ = os.RemoveAll(dir) // a leftover without its sha256 file
	if err := os.Rename(tmp, dir); err != nil {
		return Binary{}, err
	}
	return Binary{Version: v, Path: filepath.Join(dir, "hugo"), SHA256: got, Fetched: true, URL: u}, nil
}

// checksumOf finds name's sha256 in a `sha256sum` listing.
func checksumOf(sums []byte, name string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && strings.TrimPrefix(f[1], "*") == name && len(f[0]) == 64 {
			return strings.ToLower(f[0]), true
		}
	}
	return "", false
}

// unpackHugo writes the tarball's top-level "hugo" file to dst, executable.
func unpackHugo(r io.Reader, dst string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return errors.New("no hugo executable in the tarball")
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg || strings.TrimPrefix(hdr.Name, "./") != "hugo" {
			continue
		}
		if hdr.Size > maxBinary {
			return fmt.Errorf("hugo executable is %d bytes, more than %d", hdr.Size, maxBinary)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, io.LimitReader(tr, maxBinary)); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
}

var errNotFound = errors.New("not found")

// get copies url into w, at most limit bytes.
func (s *Store) get(ctx context.Context, url string, w io.Writer, limit int64) error {
	var body io.ReadCloser
	if p, ok := strings.CutPrefix(url, "file://"); ok {
		f, err := os.Open(filepath.FromSlash(p))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", url, errNotFound)
		}
		if err != nil {
			return err
		}
		body = f
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := s.opts.Client.Do(req)
		if err != nil {
			return err
		}
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound, http.StatusGone:
			resp.Body.Close()
			return fmt.Errorf("%s: %s: %w", url, resp.Status, errNotFound)
		default:
			resp.Body.Close()
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		body = resp.Body
	}
	defer body.Close()
	n, err := io.Copy(w, io.LimitReader(body, limit+1))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if n > limit {
		return fmt.Errorf("%s: larger than %d bytes", url, limit)
	}
	return nil
}

// known lists, for the message, the releases near v that exist: the same
// minor series and the newest few.
func (s *Store) known(ctx context.Context, v string) []string {
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
	var ok []string
	for _, a := range all {
		if n, err := Check(a); err == nil {
			ok = append(ok, n)
		}
	}
	slices.SortFunc(ok, func(a, b string) int { return Compare(b, a) })
	ok = slices.Compact(ok)
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
