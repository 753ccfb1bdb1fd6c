// Package releasetest gives tests real Hugo releases: a Hugo binary of an
// older version built from the module proxy, and a local mirror laid out
// exactly like Hugo's GitHub release assets (tarball + checksums file).
package releasetest

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
)

// OldHugo is the release the tests run besides the compiled-in one: the
// last the module proxy serves before v0.138.0 made resources.ToCSS (and
// the rest deprecated in v0.123–v0.129) an error; v0.156.0 removed them.
const OldHugo = "0.123.4"

// Dir is where built Hugo binaries are kept between runs
// ($XDG_CACHE_HOME/sitehost-test/hugo-<version>/hugo). .ci/run builds
// OldHugo there before the tests.
func Dir(version string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "sitehost-test", "hugo-"+version)
}

// Hugo returns a real, extended Hugo binary of version: the one cached
// from an earlier run, else built now with `go install -tags extended`
// from the module proxy (minutes, once per machine). Without a Go
// toolchain or C compiler it skips, or fails under CI=true.
func Hugo(t testing.TB, version string) string {
	t.Helper()
	dir := Dir(version)
	exe := filepath.Join(dir, "hugo")
	if _, err := os.Stat(exe); err == nil {
		return exe
	}
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		skip("no Go toolchain to build hugo v%s: %v", version, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), ".build-"); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(tmp)
	t.Logf("building hugo v%s with go install (cached in %s afterwards)", version, dir)
	cmd := exec.Command(goBin, "install", "-tags", "extended", "github.com/gohugoio/hugo@v"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		skip("building hugo v%s: %v\n%s", version, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, statErr := os.Stat(exe); statErr != nil { // not another run's
			t.Fatal(err)
		}
	}
	return exe
}

// Mirror serves Hugo release assets as GitHub does, one folder per
// release: v<version>/hugo_extended_<version>_<os>-<arch>.tar.gz and
// v<version>/hugo_<version>_checksums.txt.
type Mirror struct {
	Dir      string // the folder served
	URL      string // base URL with {version}, for server.build.hugo_releases
	requests atomic.Int64
}

// NewMirror lays out a release for each version → hugo binary and serves
// them on loopback until the test ends.
func NewMirror(t testing.TB, binaries map[string]string) *Mirror {
	t.Helper()
	m := &Mirror{Dir: t.TempDir()}
	for v, exe := range binaries {
		m.Add(t, v, exe)
	}
	files := http.FileServer(http.Dir(m.Dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	m.URL = srv.URL + "/v{version}/"
	return m
}

// Requests counts the requests the mirror answered.
func (m *Mirror) Requests() int64 { return m.requests.Load() }

// Asset is the extended tarball's name for this machine.
func Asset(version string) string {
	return fmt.Sprintf("hugo_extended_%s_%s-%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
}

// Add lays out release version with exe as its hugo, and the checksums
// file that lists it.
func (m *Mirror) Add(t testing.TB, version, exe string) {
	t.Helper()
	dir := filepath.Join(m.Dir, "v"+version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, Asset(version))
	writeTarball(t, tarball, exe, nil)
	sum := fileSHA256(t, tarball)
	sums := fmt.Sprintf("%s  %s\n%s  hugo_%s_linux-arm64.tar.gz\n", sum, Asset(version), sum, version)
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("hugo_%s_checksums.txt", version)), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Tamper replaces release version's tarball with one whose hugo differs
// by a byte, leaving the checksums file as it was.
func (m *Mirror) Tamper(t testing.TB, version, exe string) {
	t.Helper()
	writeTarball(t, filepath.Join(m.Dir, "v"+version, Asset(version)), exe, func(b []byte) { b[len(b)/2] ^= 0xff })
}

func writeTarball(t testing.TB, name, exe string, change func([]byte)) {
	t.Helper()
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(data)
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	// As in Hugo's releases: the binary beside its licence and readme.
	for _, e := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"LICENSE", 0o644, []byte("Apache License 2.0\n")},
		{"README.md", 0o644, []byte("# Hugo\n")},
		{"hugo", 0o755, data},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
