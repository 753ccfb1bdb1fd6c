package hugomod_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/hugomod"
	"github.com/sitehost/sitehost/internal/hugomod/modtest"
)

// A theme that imports another module, as Hugo Module themes do.
func themeModules() []modtest.Module {
	return []modtest.Module{
		{
			Path: "example.com/theme", Version: "v1.2.0",
			Files: map[string]string{
				"go.mod":                  "module example.com/theme\n\ngo 1.20\n\nrequire example.com/icons v0.3.0\n",
				"hugo.toml":               "[module]\n[[module.imports]]\npath = \"example.com/icons\"\n",
				"layouts/index.html":      "theme home\n",
				"layouts/_default/a.html": "a\n",
			},
		},
		{
			Path: "example.com/icons", Version: "v0.3.0",
			Files: map[string]string{
				"go.mod":             "module example.com/icons\n\ngo 1.20\n",
				"assets/icon.svg":    "<svg/>\n",
				"layouts/icons.html": "icons\n",
			},
		},
	}
}

// site writes a site tree whose go.mod requires only the theme (as after
// a plain `hugo mod init` + import) and whose go.sum has sums.
func site(t testing.TB, require string, sums []string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/site\n\ngo 1.20\n\nrequire "+require+"\n")
	write(t, filepath.Join(dir, "go.sum"), strings.Join(sums, "\n")+"\n")
	write(t, filepath.Join(dir, "hugo.toml"), "[module]\n[[module.imports]]\npath = \"example.com/theme\"\n")
	return dir
}

func write(t testing.TB, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVendorThemeAndItsImport(t *testing.T) {
	proxy := modtest.Proxy(t, themeModules()...)
	dir := site(t, "example.com/theme v1.2.0", proxy.Sums)
	cache := hugomod.NewCache()
	res, err := hugomod.Vendor(context.Background(), dir, hugomod.Options{
		Proxies: proxy.URL, CacheDir: t.TempDir(), Cache: cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Committed || len(res.Modules) != 2 {
		t.Fatalf("result = %+v, want the theme and icons", res)
	}
	for _, m := range res.Modules {
		if !m.Downloaded {
			t.Errorf("%s not downloaded on a cold cache", m)
		}
	}
	if got, want := readFile(t, filepath.Join(dir, "_vendor", "modules.txt")),
		"# example.com/icons v0.3.0\n# example.com/theme v1.2.0\n"; got != want {
		t.Errorf("modules.txt = %q, want %q", got, want)
	}
	if got := readFile(t, filepath.Join(dir, "_vendor", "example.com", "theme", "layouts", "index.html")); got != "theme home\n" {
		t.Errorf("theme file = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "_vendor", "example.com", "icons", "assets", "icon.svg")); got != "<svg/>\n" {
		t.Errorf("icons file = %q", got)
	}
	if n := cache.Downloads(); n != 2 {
		t.Errorf("downloads = %d, want 2", n)
	}
}

func TestVendorSharedCacheDownloadsOnce(t *testing.T) {
	proxy := modtest.Proxy(t, themeModules()...)
	cache := hugomod.NewCache()
	opts := hugomod.Options{Proxies: proxy.URL, CacheDir: t.TempDir(), Cache: cache}
	// What a fetch killed mid-way leaves: its folder and a lock nobody
	// holds (tempdir); the next fetch beside it removes it.
	killed := filepath.Join(opts.CacheDir, "example.com", ".fetch-99999-0123456789ab")
	if err := os.MkdirAll(filepath.Join(killed, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(killed+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		dir := site(t, "example.com/theme v1.2.0", proxy.Sums)
		res, err := hugomod.Vendor(context.Background(), dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			for _, m := range res.Modules {
				if m.Downloaded {
					t.Errorf("site %d: %s downloaded again", i, m)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "_vendor", "example.com", "icons", "go.mod")); err != nil {
			t.Errorf("site %d: %v", i, err)
		}
	}
	if n := cache.Downloads(); n != 2 {
		t.Errorf("downloads = %d over 3 sites, want 2 (one per module)", n)
	}
	if left, _ := filepath.Glob(filepath.Join(opts.CacheDir, "example.com", ".fetch-*")); len(left) != 0 {
		t.Errorf("fetch folders left: %q", left)
	}
}

func TestVendorErrors(t *testing.T) {
	mods := themeModules()
	tests := []struct {
		name    string
		prepare func(t *testing.T, p *modtest.ProxyDir) (proxies string, sums []string)
		want    string
	}{
		{
			name: "corrupted zip",
			prepare: func(t *testing.T, p *modtest.ProxyDir) (string, []string) {
				zip := filepath.Join(p.Root, "example.com", "icons", "@v", "v0.3.0.zip")
				b, err := os.ReadFile(zip)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/3] ^= 0xff
				if err := os.WriteFile(zip, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return p.URL, p.Sums
			},
			want: "module example.com/icons@v0.3.0:",
		},
		{
			name: "mismatched go.sum",
			prepare: func(t *testing.T, p *modtest.ProxyDir) (string, []string) {
				var sums []string
				for _, s := range p.Sums {
					if strings.HasPrefix(s, "example.com/theme v1.2.0 ") {
						s = "example.com/theme v1.2.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
					}
					sums = append(sums, s)
				}
				return p.URL, sums
			},
			want: "module example.com/theme@v1.2.0: checksum mismatch: go.sum has h1:AAAA",
		},
		{
			name: "missing from go.sum",
			prepare: func(t *testing.T, p *modtest.ProxyDir) (string, []string) {
				var sums []string
				for _, s := range p.Sums {
					if !strings.HasPrefix(s, "example.com/icons ") {
						sums = append(sums, s)
					}
				}
				return p.URL, sums
			},
			want: "module example.com/icons@v0.3.0: not in go.sum",
		},
		{
			name: "proxy off",
			prepare: func(t *testing.T, p *modtest.ProxyDir) (string, []string) {
				return "off", p.Sums
			},
			want: "module example.com/theme@v1.2.0: downloads are off",
		},
		{
			name: "direct",
			prepare: func(t *testing.T, p *modtest.ProxyDir) (string, []string) {
				return "direct", p.Sums
			},
			want: "\"direct\" is not supported",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := modtest.Proxy(t, mods...)
			proxies, sums := tt.prepare(t, p)
			dir := site(t, "example.com/theme v1.2.0", sums)
			_, err := hugomod.Vendor(context.Background(), dir, hugomod.Options{Proxies: proxies, CacheDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if tt.name != "proxy off" && tt.name != "direct" && fault.KindOf(err) != fault.KindStalled {
				t.Errorf("kind = %s, want stalled", fault.KindOf(err))
			}
			if _, err := os.Stat(filepath.Join(dir, "_vendor")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("_vendor left behind after a failure: %v", err)
			}
		})
	}
}

func TestVendorCommittedNeedsNoProxy(t *testing.T) {
	dir := site(t, "example.com/theme v1.2.0", nil)
	write(t, filepath.Join(dir, "_vendor", "modules.txt"), "# example.com/theme v1.2.0\n")
	write(t, filepath.Join(dir, "_vendor", "example.com", "theme", "layouts", "index.html"), "x")
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	res, err := hugomod.Vendor(context.Background(), dir, hugomod.Options{
		Proxies: srv.URL + "|file:///nonexistent/proxy", CacheDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Committed || len(res.Modules) != 1 || res.Modules[0].String() != "example.com/theme@v1.2.0" {
		t.Errorf("result = %+v", res)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d proxy requests, want 0", n)
	}
}

func TestVendorNoGoMod(t *testing.T) {
	res, err := hugomod.Vendor(context.Background(), t.TempDir(), hugomod.Options{Proxies: "off", CacheDir: t.TempDir()})
	if err != nil || res.Committed || len(res.Modules) != 0 {
		t.Fatalf("Vendor = %+v, %v; want nothing done", res, err)
	}
}

func TestVendorProxyList(t *testing.T) {
	p := modtest.Proxy(t, themeModules()...)
	status := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "x", code)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	tests := []struct {
		name, proxies, want string
	}{
		{"404 falls through a comma", status(http.StatusNotFound) + "," + p.URL, ""},
		{"410 falls through a comma", status(http.StatusGone) + "," + p.URL, ""},
		{"500 stops at a comma", status(http.StatusInternalServerError) + "," + p.URL, "500"},
		{"500 falls through a pipe", status(http.StatusInternalServerError) + "|" + p.URL, ""},
		{"403 is private", status(http.StatusForbidden) + "|" + p.URL, "private modules are not supported yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := site(t, "example.com/theme v1.2.0", p.Sums)
			_, err := hugomod.Vendor(context.Background(), dir, hugomod.Options{Proxies: tt.proxies, CacheDir: t.TempDir()})
			if tt.want == "" && err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestVendorPrivatePattern(t *testing.T) {
	p := modtest.Proxy(t, themeModules()...)
	dir := site(t, "example.com/theme v1.2.0", p.Sums)
	_, err := hugomod.Vendor(context.Background(), dir, hugomod.Options{
		Proxies: p.URL, CacheDir: t.TempDir(), Private: []string{"example.com/icons"},
	})
	if err == nil || !strings.Contains(err.Error(), "module example.com/icons@v0.3.0: private modules are not supported yet") {
		t.Fatalf("err = %v", err)
	}
}

// The highest version required anywhere in the graph wins.
func TestVendorMinimalVersionSelection(t *testing.T) {
	mods := append(themeModules(), modtest.Module{
		Path: "example.com/icons", Version: "v0.4.0",
		Files: map[string]string{"go.mod": "module example.com/icons\n", "assets/icon.svg": "v4\n"},
	})
	p := modtest.Proxy(t, mods...)
	dir := site(t, "(\n\texample.com/theme v1.2.0\n\texample.com/icons v0.4.0 // indirect\n)", p.Sums)
	cache := hugomod.NewCache()
	res, err := hugomod.Vendor(context.Background(), dir, hugomod.Options{Proxies: p.URL, CacheDir: t.TempDir(), Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "_vendor", "modules.txt")); !strings.Contains(got, "# example.com/icons v0.4.0\n") {
		t.Errorf("modules.txt = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "_vendor", "example.com", "icons", "assets", "icon.svg")); got != "v4\n" {
		t.Errorf("icon = %q", got)
	}
	if n := cache.Downloads(); n != 2 || len(res.Modules) != 2 {
		t.Errorf("downloads = %d, modules = %v", n, res.Modules)
	}
}

// Hugo ignores a _vendor without modules.txt; so does Vendor.
func TestVendorWithoutModulesTxt(t *testing.T) {
	p := modtest.Proxy(t, themeModules()...)
	dir := site(t, "example.com/theme v1.2.0", p.Sums)
	write(t, filepath.Join(dir, "_vendor", "example.com", "theme", "stale.txt"), "x")
	res, err := hugomod.Vendor(context.Background(), dir, hugomod.Options{Proxies: p.URL, CacheDir: t.TempDir()})
	if err != nil || res.Committed || len(res.Modules) != 2 {
		t.Fatalf("Vendor = %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_vendor", "example.com", "theme", "stale.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale file kept: %v", err)
	}
}

// Sites building at once with the same theme download it once.
func TestVendorConcurrentSitesDownloadOnce(t *testing.T) {
	p := modtest.Proxy(t, themeModules()...)
	cache := hugomod.NewCache()
	opts := hugomod.Options{Proxies: p.URL, CacheDir: t.TempDir(), Cache: cache}
	dirs := make([]string, 8)
	for i := range dirs {
		dirs[i] = site(t, "example.com/theme v1.2.0", p.Sums)
	}
	errs := make(chan error, len(dirs))
	for _, dir := range dirs {
		go func() {
			_, err := hugomod.Vendor(context.Background(), dir, opts)
			errs <- err
		}()
	}
	for range dirs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := cache.Downloads(); n != 2 {
		t.Errorf("downloads = %d for %d sites, want 2", n, len(dirs))
	}
}

// BenchmarkVendorTwentySites vendors one module theme (which imports one
// more module) for 20 sites sharing a cache: the figure that matters is
// downloads per 20 sites (aim: one per module, so 2).
func BenchmarkVendorTwentySites(b *testing.B) {
	proxy := modtest.Proxy(b, themeModules()...)
	var downloads int64
	for b.Loop() {
		b.StopTimer()
		cache := hugomod.NewCache()
		opts := hugomod.Options{Proxies: proxy.URL, CacheDir: b.TempDir(), Cache: cache}
		dirs := make([]string, 20)
		for i := range dirs {
			dirs[i] = site(b, "example.com/theme v1.2.0", proxy.Sums)
		}
		b.StartTimer()
		for _, dir := range dirs {
			if _, err := hugomod.Vendor(context.Background(), dir, opts); err != nil {
				b.Fatal(err)
			}
		}
		downloads += cache.Downloads()
	}
	b.ReportMetric(float64(downloads)/float64(b.N), "downloads/20-sites")
}
