package gitsrc

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/site"
)

// bare clones f into a bare repository at dir and returns dir.
func (f *fixture) bare(dir string) string {
	f.t.Helper()
	f.git("clone", "-q", "--bare", f.dir, dir)
	return dir
}

// gitlink stages a submodule at p pinned at c with .gitmodules url u.
func (f *fixture) gitlink(p, u string, c site.Commit) {
	f.t.Helper()
	f.git("config", "-f", ".gitmodules", "submodule."+p+".path", p)
	f.git("config", "-f", ".gitmodules", "submodule."+p+".url", u)
	f.git("add", ".gitmodules")
	f.git("update-index", "--add", "--cacheinfo", "160000,"+string(c)+","+p)
}

type exportEnv struct {
	modules *ModuleCache
	dir     string
}

func newExportEnv(t *testing.T) *exportEnv {
	return &exportEnv{modules: NewModuleCache(), dir: filepath.Join(t.TempDir(), "_modules")}
}

func (env *exportEnv) export(t *testing.T, f *fixture, c site.Commit, p string) (ExportResult, map[string]fs.FileMode, error) {
	t.Helper()
	r := f.open(Options{ModuleDir: env.dir, Modules: env.modules})
	mustFetch(t, r, string(c))
	out := filepath.Join(t.TempDir(), "out")
	res, err := r.Export(context.Background(), c, p, out)
	if err != nil {
		return res, nil, err
	}
	return res, listFiles(t, out), nil
}

func TestExportSubmodule(t *testing.T) {
	theme := newFixture(t)
	theme.write("layouts/index.html", "theme")
	if err := os.Symlink("/etc/hostname", filepath.Join(theme.dir, "link")); err != nil {
		t.Fatal(err)
	}
	theme.commit("theme")
	bare := theme.bare(filepath.Join(t.TempDir(), "theme.git"))

	s := newFixture(t)
	s.write("content/index.md", "home")
	s.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", bare, "themes/x")
	// An entry over plain files: exported as they are.
	s.git("config", "-f", ".gitmodules", "submodule.themes/y.path", "themes/y")
	s.git("config", "-f", ".gitmodules", "submodule.themes/y.url", bare)
	s.write("themes/y/a.html", "y")
	c := s.commit("add theme")

	env := newExportEnv(t)
	res, files, err := env.export(t, s, c, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{".gitmodules": 0o644, "content/index.md": 0o644, "themes/x/layouts/index.html": 0o644, "themes/y/a.html": 0o644}
	if !maps.Equal(files, want) {
		t.Errorf("exported %v, want %v", files, want)
	}
	if !slices.Equal(res.Skipped, []string{"themes/x/link"}) {
		t.Errorf("Skipped = %v", res.Skipped)
	}
	if res.Files != 4 {
		t.Errorf("Files = %d", res.Files)
	}
	if n := env.modules.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}

	// Another site with the same pinned commit: the cache has it.
	if _, _, err := env.export(t, s, c, ""); err != nil {
		t.Fatal(err)
	}
	if n := env.modules.fetches.Load(); n != 1 {
		t.Errorf("%d fetches after a second export, want 1", n)
	}

	// The limits count the theme's files.
	r := s.open(Options{ModuleDir: env.dir, Modules: env.modules, Limits: ExportLimits{MaxFiles: 2}}) // the third is the theme's
	mustFetch(t, r, "main")
	out := filepath.Join(t.TempDir(), "out")
	if _, err := r.Export(context.Background(), c, "", out); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Export over MaxFiles: %v, want ErrTooLarge", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("failed export left %d entries", len(ents))
	}
}

func TestExportSubmoduleURLs(t *testing.T) {
	// lib is nested in theme, which is a submodule of the site.
	lib := newFixture(t)
	lib.write("lib.js", "lib")
	libC := lib.commit("lib")
	libBare := lib.bare(filepath.Join(t.TempDir(), "lib.git"))

	theme := newFixture(t)
	theme.write("layouts/index.html", "v1")
	theme.git("add", "-A")
	theme.gitlink("assets/lib", libBare, libC)
	v1 := theme.commitIndex("v1")
	theme.write("layouts/index.html", "v2")
	theme.git("add", "layouts")
	v2 := theme.commitIndex("v2")

	s := newFixture(t)
	themeBare := filepath.Join(filepath.Dir(s.dir), "theme.git")
	theme.bare(themeBare)
	// v2 leaves every branch but stays in the repository, as after a
	// force-push; GitHub serves such commits by SHA.
	git := func(args ...string) { theme.git(append([]string{"-C", themeBare}, args...)...) }
	git("update-ref", "refs/heads/main", string(v1))
	git("config", "uploadpack.allowAnySHA1InWant", "true")

	s.write("site/content/index.md", "home")
	s.git("add", "-A")
	s.gitlink("site/themes/rel", "../theme.git", v1)
	s.gitlink("site/themes/gone", themeBare, v2)
	s.gitlink("site/themes/none", themeBare, v1)
	s.git("config", "-f", ".gitmodules", "submodule.site/themes/none.update", "none")
	s.git("add", ".gitmodules")
	s.git("update-index", "--add", "--cacheinfo", "160000,"+string(v1)+",site/themes/orphan")
	c := s.commitIndex("themes")

	env := newExportEnv(t)
	res, files, err := env.export(t, s, c, "site")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		"content/index.md":               0o644,
		"themes/rel/.gitmodules":         0o644,
		"themes/rel/layouts/index.html":  0o644,
		"themes/rel/assets/lib/lib.js":   0o644,
		"themes/gone/.gitmodules":        0o644,
		"themes/gone/layouts/index.html": 0o644,
		"themes/gone/assets/lib/lib.js":  0o644,
	}
	if !maps.Equal(files, want) {
		t.Errorf("exported %v, want %v", files, want)
	}
	if !slices.Equal(res.Skipped, []string{"themes/none", "themes/orphan"}) {
		t.Errorf("Skipped = %v, want the update = none submodule and the gitlink without a .gitmodules entry", res.Skipped)
	}
	// theme.git ("gone" comes first): branches, then v2 by SHA, which
	// brings its parent v1 for "rel"; lib.git once for both copies.
	if n := env.modules.fetches.Load(); n != 3 {
		t.Errorf("%d fetches, want 3", n)
	}
}

func TestExportSubmoduleMissing(t *testing.T) {
	s := newFixture(t)
	s.gitlink("themes/x", filepath.Join(t.TempDir(), "nothing.git"), site.Commit("1111111111111111111111111111111111111111"))
	c := s.commitIndex("theme")
	_, _, err := newExportEnv(t).export(t, s, c, "")
	if err == nil || !strings.Contains(err.Error(), "themes/x: submodule ") {
		t.Fatalf("Export = %v, want an error naming the submodule", err)
	}
	// A .gitmodules URL with no repository behind it is the site's to fix.
	if k := fault.KindOf(err); k != fault.KindStalled {
		t.Errorf("kind %q, want stalled: retrying will not make the repository appear", k)
	}
}

func TestResolveSubmoduleURL(t *testing.T) {
	for _, tc := range []struct {
		parent, url, want string
		bad               bool
	}{
		{parent: "https://github.com/u/site.git", url: "../theme.git", want: "https://github.com/u/theme.git"},
		{parent: "https://github.com/u/site/", url: "./theme", want: "https://github.com/u/site/theme"},
		{parent: "https://github.com/u/site", url: "../../o/theme", want: "https://github.com/o/theme"},
		{parent: "git@github.com:u/site.git", url: "../theme.git", want: "git@github.com:u/theme.git"},
		{parent: "git@github.com:site.git", url: "../theme.git", want: "git@github.com:theme.git"},
		{parent: "https://github.com/u/site", url: "git@github.com:u/t.git", want: "git@github.com:u/t.git"},
		{parent: "https://github.com/u/site", url: "ssh://git@host/t.git", want: "ssh://git@host/t.git"},
		{parent: "https://github.com/u/site", url: "git://host/t.git", want: "git://host/t.git"},
		{parent: "https://github.com/u/site", url: "http://host/t.git", want: "http://host/t.git"},
		{parent: "/srv/git/site.git", url: "../theme.git", want: "/srv/git/theme.git"},
		{parent: "/srv/git/site.git", url: "file:///srv/t.git", want: "file:///srv/t.git"},
		{parent: "file:///srv/git/site", url: "/etc", want: "/etc"},
		{parent: "https://github.com/u/site", url: "file:///etc", bad: true},
		{parent: "https://github.com/u/site", url: "/etc", bad: true},
		{parent: "https://github.com/u/site", url: "ext::sh -c touch% /tmp/x", bad: true},
		{parent: "https://github.com/u/site", url: "ftp://host/t.git", bad: true},
		{parent: "git@github.com:u/site.git", url: "-oProxyCommand=x", bad: true},
		{parent: "https://github.com/u/site", url: "../../../etc", bad: true},
		{parent: "https://github.com:8443/u/site", url: "../../t", want: "https://github.com:8443/t"},
		{parent: "https://github.com:8443/u/site", url: "../../../t", bad: true},
		{parent: "git@github.com:site.git", url: "../../t", bad: true},
	} {
		got, err := resolveSubmoduleURL(tc.parent, tc.url)
		switch {
		case tc.bad && !errors.Is(err, ErrSubmoduleURL):
			t.Errorf("resolve(%q, %q) = %q, %v; want ErrSubmoduleURL", tc.parent, tc.url, got, err)
		case tc.bad && fault.KindOf(err) != fault.KindStalled:
			t.Errorf("resolve(%q, %q): %v is not stalled", tc.parent, tc.url, err)
		case !tc.bad && (err != nil || got != tc.want):
			t.Errorf("resolve(%q, %q) = %q, %v; want %q", tc.parent, tc.url, got, err, tc.want)
		}
	}
}

func TestExportSubmoduleRewrite(t *testing.T) {
	theme := newFixture(t)
	theme.write("layouts/index.html", "theme")
	theme.commit("theme")
	mirror := t.TempDir()
	theme.bare(filepath.Join(mirror, "theme.git"))

	s := newFixture(t)
	s.write("content/index.md", "home")
	s.git("add", "-A")
	s.gitlink("themes/x", "https://forge.invalid/u/theme.git", theme.head())
	c := s.commitIndex("theme")

	env := newExportEnv(t)
	r := s.open(Options{ModuleDir: env.dir, Modules: env.modules,
		Rewrites: Rewrites{{From: "https://forge.invalid/u/", To: "file://" + mirror + "/"}}})
	mustFetch(t, r, "main")
	out := filepath.Join(t.TempDir(), "out")
	if _, err := r.Export(context.Background(), c, "", out); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{".gitmodules": 0o644, "content/index.md": 0o644, "themes/x/layouts/index.html": 0o644}
	if got := listFiles(t, out); !maps.Equal(got, want) {
		t.Errorf("exported %v, want %v", got, want)
	}
}

// TestExportSubmoduleRefused: a remote site (here https, rewritten to a
// local copy) whose .gitmodules names a local URL fails naming the
// submodule, stalled, before anything is fetched.
func TestExportSubmoduleRefused(t *testing.T) {
	for _, u := range []string{"file:///etc", "/etc", "../../../../etc", "ext::sh -c id"} {
		s := newFixture(t)
		s.write("index.md", "home")
		s.git("add", "-A")
		s.gitlink("themes/x", u, site.Commit("1111111111111111111111111111111111111111"))
		c := s.commitIndex("theme")
		env := newExportEnv(t)
		r := s.open(Options{URL: "https://forge.invalid/u/site.git", ModuleDir: env.dir, Modules: env.modules,
			Rewrites: Rewrites{{From: "https://forge.invalid/u/site.git", To: s.url()}}})
		mustFetch(t, r, "main")
		_, err := r.Export(context.Background(), c, "", filepath.Join(t.TempDir(), "out"))
		if !errors.Is(err, ErrSubmoduleURL) || fault.KindOf(err) != fault.KindStalled || !strings.Contains(err.Error(), "themes/x: submodule ") {
			t.Errorf("%s: Export = %v, want a stalled ErrSubmoduleURL naming themes/x", u, err)
		}
		if n := env.modules.fetches.Load(); n != 0 {
			t.Errorf("%s: %d fetches", u, n)
		}
	}
}

func TestModuleAuth(t *testing.T) {
	creds := Credentials{Password: "tok"}
	for _, tc := range []struct {
		site, sub string
		auth      bool
	}{
		{"https://github.com/u/site.git", "https://github.com/o/theme.git", true},
		{"https://github.com/u/site.git", "https://GitHub.com/o/theme.git", true},
		{"https://github.com/u/site.git", "https://gitlab.com/o/theme.git", false},
		{"https://github.com/u/site.git", "git@github.com:o/theme.git", false}, // a token is not an ssh key
		{"/srv/site.git", "/srv/theme.git", false},
	} {
		r := &Repo{url: tc.site, creds: creds}
		if got := r.moduleAuth(tc.sub) != nil; got != tc.auth {
			t.Errorf("moduleAuth(%s) for %s: auth %v, want %v", tc.sub, tc.site, got, tc.auth)
		}
	}
}

// TestExportSubmoduleConcurrent: two sites exporting the same theme at
// once fetch it once.
func TestExportSubmoduleConcurrent(t *testing.T) {
	theme := newFixture(t)
	theme.write("layouts/index.html", "theme")
	theme.commit("theme")
	bare := theme.bare(filepath.Join(t.TempDir(), "theme.git"))
	env := newExportEnv(t)
	var repos []*Repo
	var commits []site.Commit
	for range 2 {
		s := newFixture(t)
		s.write("index.md", "home")
		s.git("add", "-A")
		s.gitlink("themes/x", bare, theme.head())
		commits = append(commits, s.commitIndex("theme"))
		r := s.open(Options{ModuleDir: env.dir, Modules: env.modules})
		mustFetch(t, r, "main")
		repos = append(repos, r)
	}
	errs := make(chan error, len(repos))
	for i, r := range repos {
		out := filepath.Join(t.TempDir(), "out")
		go func() {
			_, err := r.Export(context.Background(), commits[i], "", out)
			errs <- err
		}()
	}
	for range repos {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := env.modules.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

func TestModuleCacheLock(t *testing.T) {
	m := NewModuleCache()
	unlock, err := m.locks.Lock(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	if other, err := m.locks.Lock(context.Background(), "v"); err != nil {
		t.Fatalf("another URL: %v", err)
	} else {
		other()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.locks.Lock(ctx, "u"); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting with an ended context: %v", err)
	}
	unlock()
	again, err := m.locks.Lock(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	again()
}
