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
