package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestBuildCommand: `sitehost build` on a checkout makes the files and the
// build key the server's deploy of the same commit has, and a broken
// commit fails with the error the server shows.
func TestBuildCommand(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL()))
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	base := "http://blog.test:" + portOf(srv.httpLn.Addr()) + "/"

	out := filepath.Join(t.TempDir(), "public")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"build", repo.Work, "-o", out, "--base-url", base}, os.Getenv, &stdout, &stderr); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	if want := "(deploy " + string(st.LiveDeploy) + ")"; !strings.Contains(stdout.String(), want) {
		t.Errorf("build printed %q, want the server's deploy %s", stdout.String(), st.LiveDeploy)
	}
	built, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if served := get(t, srv, "blog.test", "/").body; served != string(built) {
		t.Errorf("index.html differs from what the server serves:\nbuilt:  %q\nserved: %q", built, served)
	}

	// An output folder with files in it is not overwritten.
	if err := run(t.Context(), []string{"build", repo.Work, "-o", out}, os.Getenv, &stdout, &stderr); err == nil {
		t.Error("build over a non-empty output folder succeeded")
	}

	// A broken template fails as the server says it does.
	repo.Write("layouts/page.html", "{{ define \"main\" }}\n<h1>{{ .Title }}</h1>\n{{ .NoSuchMethod }}\n{{ end }}\n")
	repo.Commit("Break the page template")
	syncSite(t, srv, "blog")
	st, _ = srv.loop.SiteStatus("blog")
	if st.State != site.Failed {
		t.Fatalf("server status after the broken commit: %+v", st)
	}
	stderr.Reset()
	err = run(t.Context(), []string{"build", repo.Work, "-o", filepath.Join(t.TempDir(), "out")}, os.Getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(stderr.String(), st.Error) {
		t.Errorf("build of the broken commit: %v; stderr %q; want the server's error %q", err, stderr.String(), st.Error)
	}
}

// TestThemeSubmoduleRelative: a Hugo site whose theme is a submodule with
// a relative URL (../theme.git, as many starters add it) builds on the
// server, and `sitehost build` on the checkout resolves that URL against
// the checkout's origin and makes the same deploy.
func TestThemeSubmoduleRelative(t *testing.T) {
	theme := gittest.New(t, "")
	theme.Write("static/theme.css", "body{color:teal}")
	theme.Commit("theme")
	repo := gittest.New(t, "testdata/blog")
	rel, err := filepath.Rel(repo.Bare, theme.Bare)
	if err != nil {
		t.Fatal(err)
	}
	repo.Git(repo.Work, "-c", "protocol.file.allow=always", "submodule", "add", "-q", filepath.ToSlash(rel), "themes/t")
	cfgToml, err := os.ReadFile(filepath.Join(repo.Work, "hugo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	repo.Write("hugo.toml", "theme = \"t\"\n"+string(cfgToml))
	repo.Commit("Add the theme as a submodule")

	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL()))
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if got := get(t, srv, "blog.test", "/theme.css"); got.status != 200 || got.body != "body{color:teal}" {
		t.Fatalf("the theme's file: %d %q; status %+v", got.status, got.body, st)
	}

	// A checkout elsewhere (submodules not even initialised): the URL
	// resolves against its origin, not against its folder.
	checkout := filepath.Join(t.TempDir(), "deeper", "checkout")
	repo.Git("", "clone", "-q", repo.Bare, checkout)
	out := filepath.Join(t.TempDir(), "public")
	var stdout, stderr bytes.Buffer
	base := "http://blog.test:" + portOf(srv.httpLn.Addr()) + "/"
	if err := run(t.Context(), []string{"build", checkout, "-o", out, "--base-url", base}, os.Getenv, &stdout, &stderr); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	if want := "(deploy " + string(st.LiveDeploy) + ")"; !strings.Contains(stdout.String(), want) {
		t.Errorf("build printed %q, want the server's deploy %s", stdout.String(), st.LiveDeploy)
	}
	if css, err := os.ReadFile(filepath.Join(out, "theme.css")); err != nil || string(css) != "body{color:teal}" {
		t.Errorf("theme.css in the local build: %q, %v", css, err)
	}
}
