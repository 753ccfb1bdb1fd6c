package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/hugomod/modtest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestHugoModuleTheme: a site that imports its theme as a Hugo Module
// (which imports another module) builds with the modules from a module
// proxy, laid out as _vendor so Hugo resolves them with no go command and
// no network; a module missing from go.sum fails the deploy naming it.
func TestHugoModuleTheme(t *testing.T) {
	proxy := modtest.Proxy(t,
		modtest.Module{Path: "example.com/theme", Version: "v1.0.0", Files: map[string]string{
			"go.mod":           "module example.com/theme\n\ngo 1.20\n\nrequire example.com/icons v0.1.0\n",
			"hugo.toml":        "[module]\n[[module.imports]]\npath = \"example.com/icons\"\n",
			"static/theme.css": "body{color:teal}",
		}},
		modtest.Module{Path: "example.com/icons", Version: "v0.1.0", Files: map[string]string{
			"go.mod":          "module example.com/icons\n\ngo 1.20\n",
			"static/icon.svg": "<svg/>",
		}},
	)
	repo := gittest.New(t, "testdata/blog")
	cfgToml, err := os.ReadFile(filepath.Join(repo.Work, "hugo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	repo.Write("hugo.toml", string(cfgToml)+"\n[module]\n[[module.imports]]\npath = \"example.com/theme\"\n")
	// As `hugo mod get` leaves it: the theme, and what it needs as indirect.
	repo.Write("go.mod", "module example.com/blog\n\ngo 1.20\n\nrequire example.com/theme v1.0.0\n")
	repo.Write("go.sum", strings.Join(proxy.Sums, "\n")+"\n")
	repo.Commit("Import the theme as a Hugo Module")

	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL()), "  build:\n    goproxy: \""+proxy.URL+"\"\n")
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "blog")
	for path, want := range map[string]string{"/theme.css": "body{color:teal}", "/icon.svg": "<svg/>"} {
		if got := get(t, srv, "blog.test", path); got.status != 200 || got.body != want {
			t.Fatalf("%s: %d %q; status %s", path, got.status, got.body, status(t, srv, "blog"))
		}
	}

	// go.sum without the imported module: the site's error, naming it.
	var sums []string
	for _, s := range proxy.Sums {
		if !strings.HasPrefix(s, "example.com/icons ") {
			sums = append(sums, s)
		}
	}
	repo.Write("go.sum", strings.Join(sums, "\n")+"\n")
	repo.Commit("Lose the icons' checksum")
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if want := "module example.com/icons@v0.1.0: not in go.sum"; st.State != site.Failed || !strings.Contains(st.Error, want) {
		t.Errorf("status = %s, want failed with %q", status(t, srv, "blog"), want)
	}

	// A committed _vendor/ is used as it is: no proxy, no go.sum check.
	if err := os.RemoveAll(proxy.Root); err != nil {
		t.Fatal(err)
	}
	repo.Write("_vendor/modules.txt", "# example.com/theme v1.0.0\n# example.com/icons v0.1.0\n")
	repo.Write("_vendor/example.com/theme/hugo.toml", "[module]\n[[module.imports]]\npath = \"example.com/icons\"\n")
	repo.Write("_vendor/example.com/theme/static/theme.css", "body{color:navy}")
	repo.Write("_vendor/example.com/icons/static/icon.svg", "<svg/>")
	repo.Commit("Vendor the modules (hugo mod vendor)")
	syncSite(t, srv, "blog")
	if got := get(t, srv, "blog.test", "/theme.css"); got.status != 200 || got.body != "body{color:navy}" {
		t.Fatalf("/theme.css from the committed _vendor: %d %q; status %s", got.status, got.body, status(t, srv, "blog"))
	}
}
