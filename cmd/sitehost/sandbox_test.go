package main

import (
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestBuildMemoryLimitHolds is the audit's case through the server:
// server.build.memory 256MiB and a template that builds an ever longer
// string. The kernel kills the build near the limit, the failure says
// "memory limit", and the live deploy serves on.
func TestBuildMemoryLimitHolds(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL()), "  build: {memory: 256MiB}\n")
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "blog")
	live, _ := srv.loop.SiteStatus("blog")

	repo.Write("layouts/home.html", `{{ define "main" }}{{ $s := "0123456789abcdef" }}{{ range seq 64 }}{{ $s = printf "%s%s" $s $s }}{{ end }}{{ len $s }}{{ end }}`+"\n")
	bomb := repo.Commit("A home page that allocates without bound")
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if st.State != site.Failed || st.FailedAt != site.Commit(bomb) || !strings.Contains(st.Error, "memory limit of 256 MiB") {
		t.Fatalf("after the allocating commit: %+v; want Failed at %s, over the memory limit of 256 MiB", st, bomb)
	}
	if st.LiveDeploy != live.LiveDeploy {
		t.Errorf("live deploy %s, want %s still", st.LiveDeploy, live.LiveDeploy)
	}
	if got := get(t, srv, "blog.test", "/"); got.status != 200 || !strings.Contains(got.body, "Version one") {
		t.Errorf("the live deploy no longer serves: %d %q", got.status, got.body)
	}
}
