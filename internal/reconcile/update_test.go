package reconcile_test

import (
	"errors"
	"testing"
	"time"

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
