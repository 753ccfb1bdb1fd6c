package reconcile_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/lease"
	"github.com/sitehost/sitehost/internal/lease/leasetest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

var (
	_ reconcile.Owner = (*lease.Manager)(nil)
	_ publish.Fence   = (*lease.Manager)(nil)
)

// member is one builder of a fleet: its lease, loop and builder.
type member struct {
	lease   *lease.Manager
	loop    *reconcile.Loop
	builder *countingBuilder
	journal *journal.Journal
}

// TestOwnerHandover: two builders on one store and one repository. Only
// the lease holder builds; when its lease moves mid-build, its run is
// abandoned (not failed, not retried), and the new owner builds the commit
// and publishes it under its own generation.
func TestOwnerHandover(t *testing.T) {
	ctx := context.Background()
	repo := gittest.New(t, "")
	repo.Write("index.html", "<h1>one</h1>")
	one := repo.Commit("one")
	st, err := fsstore.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	lc := leasetest.NewClock()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	spec := reconcile.Spec{Name: "s", Ref: "main", Path: ".", Build: build.Settings{Tool: build.ToolNone}}
	spec.Repo.URL = repo.URL()
	newMember := func(id string) *member {
		m := &member{journal: journal.New(journal.Options{})}
		var loop *reconcile.Loop
		m.lease = lease.New(st, lease.Options{ID: id, Now: lc.Now, Logger: logger.With("builder", id),
			Sites: func() []site.Name { return []site.Name{"s"} },
			OnChange: func(s site.Name, gen uint64, owned bool) {
				loop.LeaseChanged(s, gen, owned)
			}})
		b, err := build.New(build.Options{})
		if err != nil {
			t.Fatal(err)
		}
		m.builder = &countingBuilder{b: b}
		loop, err = reconcile.New(reconcile.Options{
			Sites: []reconcile.Spec{spec}, DataDir: t.TempDir(), Builder: m.builder, Journal: m.journal, Logger: logger.With("builder", id),
			Publisher: publish.New(st, publish.Options{Fence: m.lease}), Owner: m.lease,
		})
		if err != nil {
			t.Fatal(err)
		}
		m.loop = loop
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { loop.Run(runCtx); close(done) }() //nolint:errcheck // Run ends with its ctx
		t.Cleanup(func() { cancel(); <-done })
		return m
	}
	tick := func(m *member) {
		t.Helper()
		if _, err := m.lease.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pub := publish.New(st, publish.Options{})
	live := func() (site.Commit, uint64) {
		p, err := pub.Pointer(ctx, "s", site.Production)
		if err != nil {
			return "", 0
		}
		return p.Commit, p.Generation
	}

	a, b := newMember("a"), newMember("b")
	tick(a)
	tick(b)
	waitFor(t, "a to publish the first commit", func() bool { c, _ := live(); return c == site.Commit(one) })
	if _, err := b.loop.Sync(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if n := b.builder.n.Load(); n != 0 {
		t.Fatalf("b, which does not own the site, built %d times", n)
	}

	// a's next build hangs until its lease is gone.
	started, release := make(chan struct{}), make(chan struct{})
	a.builder.fail = func(n int64) error {
		if n == 2 {
			close(started)
			<-release
		}
		return nil
	}
	repo.Write("index.html", "<h1>two</h1>")
	two := repo.Commit("two")
	if err := a.loop.Trigger("s"); err != nil {
		t.Fatal(err)
	}
	<-started

	// a is cut off: b takes the site over after the lease time, and
	// builds and publishes two; a hears of its loss at its next tick.
	for range 3 {
		lc.Add(6 * time.Second)
		tick(b)
	}
	waitFor(t, "b to publish the second commit", func() bool { c, _ := live(); return c == site.Commit(two) })
	tick(a)
	close(release)
	if _, err := a.loop.Settle(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	commit, gen := live()
	if commit != site.Commit(two) || gen != 2 {
		t.Fatalf("live %s generation %d, want b's %s generation 2", commit.Short(), gen, site.Commit(two).Short())
	}
	if n := b.builder.n.Load(); n != 1 {
		t.Errorf("b built %d times, want 1", n)
	}
	var abandoned bool
	for _, e := range a.journal.Entries("s") {
		if e.Commit == site.Commit(two) {
			if e.State != site.OutcomeSuperseded {
				t.Fatalf("a's attempt at two ended %s (%s), want superseded", e.State, e.Error)
			}
			abandoned = true
		}
	}
	if !abandoned {
		t.Fatal("a's journal has no attempt at two")
	}
	// a does not try again: a sync now builds nothing.
	if _, err := a.loop.Sync(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if n := a.builder.n.Load(); n != 2 {
		t.Errorf("a built %d times, want 2 (the second abandoned)", n)
	}
	if _, ok := a.lease.Owns("s"); ok {
		t.Fatal("a owns the site after b took it")
	}
	if st, _ := a.loop.SiteStatus("s"); st.State == site.Failed {
		t.Fatalf("a's status is failed (%s): an abandoned run is no failure", st.Error)
	}
}
