package reconcile_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// TestUpdate: a reloaded config starts new sites, stops removed ones and
// restarts changed ones, without touching the others.
func TestUpdate(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.sync(t)
	builds := f.builder.n.Load()

	other := f.spec
	other.Name = "t"
	if err := f.loop.Update([]reconcile.Spec{f.spec, other}); err != nil {
		t.Fatal(err)
	}
	st, err := f.loop.Sync(t.Context(), "t")
	if err != nil || st.State != site.Synced {
		t.Fatalf("new site: %+v, %v", st, err)
	}
	if _, err := f.pub.Pointer(t.Context(), "t", site.Production); err != nil {
		t.Errorf("new site not published: %v", err)
	}
	// s kept its worker: its status (and its counters) survived.
	if st, _ := f.loop.SiteStatus("s"); st.Builds != 1 || st.State != site.Synced {
		t.Errorf("untouched site s: %+v, want its old status", st)
	}
	if got := f.builder.n.Load(); got != builds+1 {
		t.Errorf("builds %d → %d, want one for the new site only", builds, got)
	}
	if names := statusNames(f.loop); len(names) != 2 || names[0] != "s" || names[1] != "t" {
		t.Errorf("sites %v, want [s t] in config order", names)
	}

	// A changed site restarts (fresh status); a removed one is gone.
	changed := other
	changed.Branches = []string{"main"}
	if err := f.loop.Update([]reconcile.Spec{changed}); err != nil {
		t.Fatal(err)
	}
	if err := f.loop.Trigger("s"); !errors.Is(err, reconcile.ErrUnknownSite) {
		t.Errorf("removed site: Trigger = %v, want ErrUnknownSite", err)
	}
	st, err = f.loop.Sync(t.Context(), "t")
	if err != nil || st.Builds != 0 || st.Channels[site.Branch("main")].State != site.Synced {
		t.Errorf("changed site: %+v, %v; want a new worker syncing its branch deploy", st, err)
	}
	// The removed site's deploys stay in the store.
	if _, err := f.pub.Pointer(t.Context(), "s", site.Production); err != nil {
		t.Errorf("removed site's pointer: %v", err)
	}
}

func statusNames(l *reconcile.Loop) []site.Name {
	var out []site.Name
	for _, st := range l.Status() {
		out = append(out, st.Site)
	}
	return out
}

// TestConcurrencyAcrossSites: server.build.concurrency (1 here) holds
// across sites: three sites with new commits never build at once.
func TestConcurrencyAcrossSites(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.builder.delay = 100 * time.Millisecond
	specs := []reconcile.Spec{f.spec}
	for _, name := range []site.Name{"t", "u"} {
		s := f.spec
		s.Name = name
		specs = append(specs, s)
	}
	if err := f.loop.Update(specs); err != nil {
		t.Fatal(err)
	}
	// All three at once: the workers race for the one build slot.
	for _, s := range specs {
		if err := f.loop.Trigger(s.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range specs {
		if st, err := f.loop.Settle(t.Context(), s.Name); err != nil || st.State != site.Synced {
			t.Fatalf("%s: %+v, %v", s.Name, st, err)
		}
	}
	if f.builder.n.Load() != 3 || f.builder.most.Load() != 1 {
		t.Errorf("%d builds, at most %d at once; want 3, one at a time", f.builder.n.Load(), f.builder.most.Load())
	}
}

// TestPrepareRefused: a reload that adds a site whose git cache cannot be
// opened and changes another is refused whole by Prepare; the running
// workers were not touched and keep working (no nil worker, no crash).
func TestPrepareRefused(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.sync(t)
	bad := reconcile.Spec{Name: "bad", Ref: "main", Path: "."}
	bad.Repo.URL = "ssh://git@git.example.com/site.git"
	bad.Repo.Credentials.SSHKeyFile = filepath.Join(t.TempDir(), "missing_ed25519")
	changed := f.spec
	changed.Build.Env = map[string]string{"X": "1"}

	if _, err := f.loop.Prepare([]reconcile.Spec{bad, changed}); err == nil {
		t.Fatal("Prepare accepted a site whose git cache cannot be opened")
	}
	if names := statusNames(f.loop); len(names) != 1 || names[0] != "s" {
		t.Fatalf("sites %v after a refused Prepare, want [s]", names)
	}
	st, err := f.loop.Sync(t.Context(), "s")
	if err != nil || st.State != site.Synced || st.Builds != 1 {
		t.Errorf("s after a refused Prepare: %+v, %v; want its old worker, synced", st, err)
	}
	if _, err := f.loop.Prepare([]reconcile.Spec{changed, changed}); err == nil {
		t.Error("Prepare accepted a site listed twice")
	}
}

// TestPrepareDiscard: a prepared change that is discarded leaves every
// worker as it was; one applied afterwards works.
func TestPrepareDiscard(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.sync(t)
	other := f.spec
	other.Name = "t"
	changed := f.spec
	changed.Branches = []string{"main"}

	c, err := f.loop.Prepare([]reconcile.Spec{changed, other})
	if err != nil {
		t.Fatal(err)
	}
	c.Discard()
	c.Apply() // after Discard: no effect
	if names := statusNames(f.loop); len(names) != 1 || names[0] != "s" {
		t.Fatalf("sites %v after Discard, want [s]", names)
	}
	if st, _ := f.loop.SiteStatus("s"); st.Builds != 1 {
		t.Errorf("s after Discard: %+v, want its old worker", st)
	}

	c, err = f.loop.Prepare([]reconcile.Spec{changed, other})
	if err != nil {
		t.Fatal(err)
	}
	c.Apply()
	// The changed site took over its git cache and syncs its branch.
	st, err := f.loop.Sync(t.Context(), "s")
	if err != nil || st.Builds != 0 || st.Channels[site.Branch("main")].State != site.Synced {
		t.Errorf("changed site: %+v, %v; want a new worker syncing its branch deploy", st, err)
	}
	if st, err := f.loop.Sync(t.Context(), "t"); err != nil || st.State != site.Synced {
		t.Errorf("new site: %+v, %v", st, err)
	}
}

// TestPrepareNewRepo: a site whose repository URL changes gets a worker
// that opens the cache itself once the old one has stopped.
func TestPrepareNewRepo(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.sync(t)
	moved := gittest.New(t, "")
	moved.Write("index.html", "<h1>moved</h1>")
	head := moved.Commit("moved")
	changed := f.spec
	changed.Repo.URL = moved.URL()
	if err := f.loop.Update([]reconcile.Spec{changed}); err != nil {
		t.Fatal(err)
	}
	st, err := f.loop.Sync(t.Context(), "s")
	if err != nil || st.State != site.Synced || string(st.LiveCommit) != head {
		t.Errorf("site with a new repository: %+v, %v; want it live at %s", st, err, head)
	}
}
