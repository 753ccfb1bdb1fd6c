package reconcile_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// TestThemeSubmodule: a theme kept as a submodule is deployed with the
// site, a bump of the gitlink builds, and reverting the bump reuses the
// first deploy without a build.
func TestThemeSubmodule(t *testing.T) {
	theme := gittest.New(t, "")
	theme.Write("theme.html", "v1")
	theme.Commit("theme v1")
	repo := gittest.New(t, "")
	repo.Write("index.html", "home")
	repo.Git(repo.Work, "-c", "protocol.file.allow=always", "submodule", "add", "-q", theme.Bare, "themes/x")
	repo.Commit("add theme")

	f := newFixture(t, reconcile.Spec{Repo: gitsrc.Options{URL: repo.URL()}}, 0)
	first := f.sync(t)
	if first.State != site.Synced {
		t.Fatalf("status %+v", first)
	}
	m, err := f.pub.Manifest(context.Background(), "s", first.LiveDeploy)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Files["themes/x/theme.html"]; !ok {
		t.Errorf("deploy files %v, want the theme's", m.Files)
	}

	theme.Write("theme.html", "v2")
	theme.Commit("theme v2")
	repo.Git(filepath.Join(repo.Work, "themes/x"), "pull", "-q", "origin", "main")
	bump := repo.Commit("bump theme")
	st := f.sync(t)
	if st.LiveCommit != site.Commit(bump) || st.LiveDeploy == first.LiveDeploy {
		t.Errorf("after the bump: %+v, want a new deploy of %s", st, bump)
	}
	if n := f.builder.n.Load(); n != 2 {
		t.Errorf("builds = %d after the bump, want 2", n)
	}

	revert := repo.Revert(bump)
	st = f.sync(t)
	if st.LiveCommit != site.Commit(revert) || st.LiveDeploy != first.LiveDeploy {
		t.Errorf("after the revert: %+v, want deploy %s of %s", st, first.LiveDeploy, revert)
	}
	if n := f.builder.n.Load(); n != 2 {
		t.Errorf("builds = %d after the revert, want still 2", n)
	}
}
