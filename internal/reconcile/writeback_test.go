package reconcile_test

import (
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/reconcile"
)

// TestWriteBack: each production publish is recorded in the site's own
// repository — a git note on the commit, or the tag sitehost/<site>/live.
func TestWriteBack(t *testing.T) {
	t.Run("note", func(t *testing.T) {
		f := newFixture(t, reconcile.Spec{WriteBack: "note"}, 0)
		f.sync(t)
		ptr := f.live(t)
		note := f.repo.Git("", "--git-dir", f.repo.Bare, "notes", "--ref=sitehost", "show", string(ptr.Commit))
		if !strings.Contains(note, "live on production of s") || !strings.Contains(note, string(ptr.Deploy)) {
			t.Errorf("note = %q", note)
		}
	})
	t.Run("tag", func(t *testing.T) {
		f := newFixture(t, reconcile.Spec{WriteBack: "tag"}, 0)
		f.sync(t)
		first := f.live(t).Commit
		f.repo.Write("index.html", "<h1>two</h1>")
		second := f.repo.Commit("two")
		f.sync(t)
		got := f.repo.Git("", "--git-dir", f.repo.Bare, "rev-parse", "refs/tags/sitehost/s/live")
		if got != second || string(first) == second {
			t.Errorf("tag at %s, want the live commit %s", got, second)
		}
	})
}

// TestSemverRef: ref v1.* follows the newest v1 release tag, not main and
// not v2.
func TestSemverRef(t *testing.T) {
	f := newFixture(t, reconcile.Spec{Ref: "v1.*"}, 0)
	tag := func(name string) string {
		f.repo.Write("index.html", "<h1>"+name+"</h1>")
		sha := f.repo.Commit(name)
		f.repo.Git(f.repo.Work, "tag", "-a", name, "-m", name)
		f.repo.Git(f.repo.Work, "push", "-q", "origin", name)
		return sha
	}
	tag("v1.0.0")
	v19 := tag("v1.9.0")
	tag("v2.0.0")
	f.repo.Write("index.html", "<h1>unreleased</h1>")
	f.repo.Commit("unreleased")
	if st := f.sync(t); string(st.LiveCommit) != v19 {
		t.Errorf("live %s, want v1.9.0 at %s (%+v)", st.LiveCommit, v19[:7], st)
	}
	v110 := tag("v1.10.0")
	if st := f.sync(t); string(st.LiveCommit) != v110 {
		t.Errorf("live %s after tagging v1.10.0, want %s", st.LiveCommit, v110[:7])
	}
}
