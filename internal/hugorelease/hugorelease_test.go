package hugorelease_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/hugorelease"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"0.152.2", "0.152.2", ""},
		{"v0.152.2", "0.152.2", ""},
		{" 0.165.0 ", "0.165.0", ""},
		{hugorelease.MinVersion, hugorelease.MinVersion, ""},
		{"1.0.0", "1.0.0", ""},
		{"0.111.3", "", "older than"},
		{"0.115.3", "", "older than"},
		{"0.54.0", "", "older than"},
		{"0.152", "", "want a release number"},
		{"latest", "", "want a release number"},
		{"0.152.02", "", "want a release number"},
		{"0.152.2-rc1", "", "want a release number"},
		{"", "", "want a release number"},
	} {
		got, err := hugorelease.Check(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Check(%q) = %q, %v; want error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Check(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCompare(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"0.152.2", "0.152.2", 0},
		{"0.152.2", "0.152.10", -1},
		{"0.99.0", "0.100.0", -1},
		{"1.0.0", "0.165.0", 1},
	} {
		if got := hugorelease.Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestAsset(t *testing.T) {
	for _, tt := range []struct{ goos, goarch, want string }{
		{"linux", "amd64", "hugo_extended_0.152.2_linux-amd64.tar.gz"},
		{"linux", "arm64", "hugo_extended_0.152.2_linux-arm64.tar.gz"},
		{"darwin", "arm64", "hugo_extended_0.152.2_darwin-universal.tar.gz"},
	} {
		s, err := hugorelease.New(hugorelease.Options{Dir: t.TempDir(), GOOS: tt.goos, GOARCH: tt.goarch})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Asset("0.152.2"); err != nil || got != tt.want {
			t.Errorf("%s/%s: %q, %v; want %q", tt.goos, tt.goarch, got, err, tt.want)
		}
	}
	if _, err := hugorelease.New(hugorelease.Options{Dir: t.TempDir(), Releases: "https://example.com/hugo/"}); err == nil {
		t.Error("a releases URL without {version} was accepted")
	}
}

// release is a tarball laid out as Hugo's, with hugo holding body.
func release(t *testing.T, body string, withHugo bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	files := [][2]string{{"LICENSE", "Apache"}, {"README.md", "# Hugo"}}
	if withHugo {
		files = append(files, [2]string{"hugo", body})
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o755, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mirror serves assets by path and counts requests; status overrides.
type mirror struct {
	mu       sync.Mutex
	files    map[string][]byte
	status   atomic.Int32
	requests atomic.Int32
	// hook, if set, runs before a request is answered (set with setHook).
	hook func(path string)
}

func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.requests.Add(1)
	m.mu.Lock()
	hook := m.hook
	m.mu.Unlock()
	if hook != nil {
		hook(r.URL.Path)
	}
	if s := m.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	m.mu.Lock()
	data, ok := m.files[r.URL.Path]
	m.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(data) //nolint:errcheck // the client's problem
}

func newMirror(t *testing.T, v string, tgz []byte, listed string) (*mirror, string) {
	m := &mirror{files: map[string][]byte{}}
	m.add(v, tgz, listed)
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, srv.URL + "/v{version}"
}

func (m *mirror) setHook(f func(path string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hook = f
}

// add lays out release v: its tarball, and a checksums file listing it
// as listed (default: the linux-amd64 asset's name).
func (m *mirror) add(v string, tgz []byte, listed string) {
	sum := sha256.Sum256(tgz)
	asset := fmt.Sprintf("hugo_extended_%s_linux-amd64.tar.gz", v)
	if listed == "" {
		listed = asset
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files["/v"+v+"/"+asset] = tgz
	m.files["/v"+v+"/hugo_"+v+"_checksums.txt"] = fmt.Appendf(nil, "%s  hugo_%s_darwin-universal.tar.gz\n%s  %s\n",
		strings.Repeat("0", 64), v, hex.EncodeToString(sum[:]), listed)
}

func store(t *testing.T, url, dir string) *hugorelease.Store {
	return storeLog(t, url, dir, nil)
}

func storeLog(t *testing.T, url, dir string, log *slog.Logger) *hugorelease.Store {
	t.Helper()
	s, err := hugorelease.New(hugorelease.Options{Releases: url, Dir: dir, GOOS: "linux", GOARCH: "amd64", Logger: log,
		Versions: func(context.Context) ([]string, error) {
			return []string{"v0.152.0", "v0.152.2", "v0.152.1", "v0.165.0", "v0.164.0", "v0.163.3", "v0.111.3", "v0.200.0-pre"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFetch(t *testing.T) {
	m, url := newMirror(t, "0.152.2", release(t, "#!hugo 0.152.2", true), "")
	dir := t.TempDir()
	s := store(t, url, dir)
	// Builds asking at once fetch once.
	var wg sync.WaitGroup
	bins := make([]hugorelease.Binary, 4)
	errs := make([]error, 4)
	for i := range bins {
		wg.Go(func() { bins[i], errs[i] = s.Hugo(context.Background(), "v0.152.2") })
	}
	wg.Wait()
	fetched := 0
	for i := range bins {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if bins[i].Fetched {
			fetched++
		}
	}
	if fetched != 1 || m.requests.Load() != 2 {
		t.Errorf("fetched %d times with %d requests, want once with 2 (checksums, tarball)", fetched, m.requests.Load())
	}
	b := bins[0]
	data, err := os.ReadFile(b.Path)
	if err != nil || string(data) != "#!hugo 0.152.2" || b.Path != filepath.Join(dir, "0.152.2", "hugo") {
		t.Errorf("binary at %s: %q, %v", b.Path, data, err)
	}
	if fi, err := os.Stat(b.Path); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("binary not executable: %v %v", fi, err)
	}
	// Another store on the same folder (a restart) fetches nothing.
	m.status.Store(http.StatusInternalServerError)
	if b2, err := store(t, url, dir).Hugo(context.Background(), "0.152.2"); err != nil || b2.Fetched || b2.SHA256 != b.SHA256 {
		t.Errorf("after a restart: %+v, %v", b2, err)
	}
}

func TestFetchRefused(t *testing.T) {
	good := release(t, "#!hugo", true)
	for _, tt := range []struct {
		name    string
		version string
		tgz     []byte
		listed  string // the asset name the checksums file lists
		sums    string // replaces the checksums file: %[1]s the sum, %[2]s another, %[3]s the asset
		tamper  bool
		status  int
		kind    fault.Kind
		want    string
	}{
		{name: "tampered", version: "0.152.2", tgz: good, tamper: true, kind: fault.KindTransient, want: "refusing hugo v0.152.2"},
		{name: "unknown", version: "0.152.9", tgz: good, kind: fault.KindStalled, want: "hugo v0.152.9 does not exist (no checksums file at {mirror}/v0.152.9/hugo_0.152.9_checksums.txt); releases that do: 0.152.2, 0.152.1, 0.152.0, 0.165.0, 0.164.0, 0.163.3"},
		// A release the mirror lacks is the mirror's to fix, not the site's.
		{name: "not on the mirror", version: "0.152.1", tgz: good, kind: fault.KindTransient, want: "hugo v0.152.1 is not on the mirror {mirror}/v0.152.1/hugo_0.152.1_checksums.txt (it is a release: "},
		{name: "two sums", version: "0.152.2", tgz: good, sums: "%[1]s  %[3]s\n%[2]s  *%[3]s\r\n", kind: fault.KindTransient, want: "hugo_extended_0.152.2_linux-amd64.tar.gz is listed twice, with sha256"},
		{name: "not hex", version: "0.152.2", tgz: good, sums: "%[1]s  %[3]s\n" + strings.Repeat("z", 64) + "  %[3]s\n", kind: fault.KindTransient, want: "not 64 hex digits"},
		{name: "no build for this machine", version: "0.152.2", tgz: good, listed: "hugo_0.152.2_linux-amd64.tar.gz", kind: fault.KindStalled, want: "no extended build for linux/amd64"},
		{name: "no hugo in tarball", version: "0.152.2", tgz: release(t, "", false), kind: fault.KindTransient, want: "no hugo executable"},
		{name: "not gzip", version: "0.152.2", tgz: []byte("<html>rate limited</html>"), kind: fault.KindTransient, want: "gzip"},
		{name: "server error", version: "0.152.2", tgz: good, status: 502, kind: fault.KindTransient, want: "502"},
		{name: "too old", version: "0.111.3", tgz: good, kind: fault.KindStalled, want: "older than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			serve := "0.152.2"
			m, url := newMirror(t, serve, tt.tgz, tt.listed)
			if tt.tamper {
				for k, v := range m.files {
					if strings.HasSuffix(k, ".tar.gz") {
						v = append([]byte{}, v...)
						v[len(v)/2] ^= 1
						m.files[k] = v
					}
				}
			}
			if tt.sums != "" {
				sum := sha256.Sum256(tt.tgz)
				m.files["/v0.152.2/hugo_0.152.2_checksums.txt"] = fmt.Appendf(nil, tt.sums, hex.EncodeToString(sum[:]), strings.Repeat("1", 64), "hugo_extended_0.152.2_linux-amd64.tar.gz")
			}
			m.status.Store(int32(tt.status))
			dir := t.TempDir()
			_, err := store(t, url, dir).Hugo(context.Background(), tt.version)
			want := strings.ReplaceAll(tt.want, "{mirror}", strings.TrimSuffix(url, "/v{version}"))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want an error with %q", err, want)
			}
			if k := fault.KindOf(err); k != tt.kind {
				t.Errorf("kind %s, want %s", k, tt.kind)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("refused release left %v behind", entries)
			}
			var uv *hugorelease.UnknownVersionError
			if errors.As(err, &uv) != (tt.name == "unknown") {
				t.Errorf("UnknownVersionError: %v", err)
			}
		})
	}
}
