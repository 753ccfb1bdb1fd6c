package reconcile_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// TestSelfHeal: a live deploy whose blob vanished from the store is found
// by the check, rebuilt from its commit and written again; an intact one
// costs no build.
func TestSelfHeal(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.sync(t)
	ptr := f.live(t)
	m, err := f.pub.Manifest(t.Context(), "s", ptr.Deploy)
	if err != nil {
		t.Fatal(err)
	}
	builds := f.builder.n.Load()

	st, err := f.loop.Heal(t.Context(), "s")
	if err != nil || st.Repairs != 0 || f.builder.n.Load() != builds {
		t.Fatalf("intact: repairs %d, builds %d → %d, err %v", st.Repairs, builds, f.builder.n.Load(), err)
	}

	blob := filepath.Join(f.store, filepath.FromSlash(manifest.BlobKey(m.Files["index.html"].SHA256)))
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}
	st, err = f.loop.Heal(t.Context(), "s")
	if err != nil || st.Repairs != 1 || f.builder.n.Load() != builds+1 {
		t.Fatalf("after losing a blob: repairs %d, builds %d → %d, err %v", st.Repairs, builds, f.builder.n.Load(), err)
	}
	if _, err := os.Stat(blob); err != nil {
		t.Errorf("blob not written again: %v", err)
	}
	if now := f.live(t); now.Deploy != ptr.Deploy || now.Commit != ptr.Commit {
		t.Errorf("pointer moved: %+v → %+v", ptr, now)
	}
	if st.State != site.Synced {
		t.Errorf("state %s after repair, want Synced", st.State)
	}
	e := f.journal.Entries("s")[0]
	var names []string
	for _, s := range e.Steps {
		names = append(names, s.Name)
	}
	if want := []string{"fetch", "sources", "key", "build", "upload", "publish", "report"}; e.State != site.OutcomeLive || !slices.Equal(names, want) {
		t.Errorf("repair attempt: %s, steps %v; want live after %v", e.State, names, want)
	}
}
