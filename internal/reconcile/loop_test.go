package reconcile_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/backoff"
	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// countingBuilder is the real builder (tool none) with a count and an
// optional delay, so coalescing has time to show.
type countingBuilder struct {
	b *build.Builder
	n atomic.Int64
	// active and most count builds running at once.
	active, most atomic.Int64
	delay        time.Duration
	reqs         chan build.Request // every request, when set
	// fail, when set, is asked before the n-th build (from 1) whether it
	// fails, and how.
	fail func(n int64) error
	// output, when set, adds to what a build made, as Hugo would.
	output func(dir string) error
}

func (c *countingBuilder) Build(ctx context.Context, req build.Request) (build.Result, error) {
	n := c.n.Add(1)
	if c.fail != nil {
		if err := c.fail(n); err != nil {
			return build.Result{}, err
		}
	}
	now := c.active.Add(1)
	defer c.active.Add(-1)
	for m := c.most.Load(); now > m && !c.most.CompareAndSwap(m, now); m = c.most.Load() {
	}
	time.Sleep(c.delay)
	if c.reqs != nil {
		c.reqs <- req
	}
	res, err := c.b.Build(ctx, req)
	if err == nil && c.output != nil {
		err = c.output(res.Dir)
	}
	return res, err
}

type fixture struct {
	clock   atomic.Int64 // seconds added to the real time
	reports reportLog
	repo    *gittest.Repo
	pub     *publish.Publisher
	builder *countingBuilder
	journal *journal.Journal
	loop    *reconcile.Loop
	store   string // the fsstore's folder
	spec    reconcile.Spec
}

// newFixture starts a loop on one site; with is applied to its options.
func newFixture(t *testing.T, spec reconcile.Spec, poll time.Duration, with ...func(*reconcile.Options)) *fixture {
	t.Helper()
	return newLoggedFixture(t, spec, poll, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), with...)
}

func newLoggedFixture(t *testing.T, spec reconcile.Spec, poll time.Duration, logger *slog.Logger, with ...func(*reconcile.Options)) *fixture {
	t.Helper()
	return newStoreFixture(t, spec, poll, logger, nil, with...)
}

// newStoreFixture publishes to st, or to an fsstore when st is nil.
func newStoreFixture(t *testing.T, spec reconcile.Spec, poll time.Duration, logger *slog.Logger, st store.Store, with ...func(*reconcile.Options)) *fixture {
	t.Helper()
	f := &fixture{repo: gittest.New(t, "")}
	f.repo.Write("index.html", "<h1>one</h1>")
	f.repo.Commit("one")
	if st == nil {
		f.store = filepath.Join(t.TempDir(), "store")
		fs, err := fsstore.New(f.store)
		if err != nil {
			t.Fatal(err)
		}
		st = fs
	}
	f.pub = publish.New(st, publish.Options{})
	b, err := build.New(build.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.builder = &countingBuilder{b: b}
	f.journal = journal.New(journal.Options{})
	spec.Name = "s"
	if spec.Repo.URL == "" {
		spec.Repo.URL = f.repo.URL()
	}
	if spec.Ref == "" {
		spec.Ref = "main"
	}
	spec.Path = cmpOr(spec.Path, ".")
	spec.Build.Tool = cmpOr(spec.Build.Tool, build.ToolNone)
	f.spec = spec
	opts := reconcile.Options{
		Sites: []reconcile.Spec{spec}, DataDir: t.TempDir(), Builder: f.builder, Publisher: f.pub,
		PollInterval: poll, Now: f.now, Reporter: &f.reports, Journal: f.journal,
		URL: func(n site.Name, c site.Channel) string { return "http://" + string(c) + "--" + string(n) + ".test/" }, Logger: logger,
	}
	for _, w := range with {
		w(&opts)
	}
	f.loop, err = reconcile.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.loop.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (f *fixture) sync(t *testing.T) reconcile.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := f.loop.Sync(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) live(t *testing.T) manifest.Pointer {
	t.Helper()
	p, err := f.pub.Pointer(context.Background(), "s", site.Production)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPollPublishesNewCommits(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 100*time.Millisecond)
	waitFor(t, "first deploy", func() bool { st, _ := f.loop.SiteStatus("s"); return st.State == site.Synced })
	f.repo.Write("index.html", "<h1>two</h1>")
	two := f.repo.Commit("two")
	waitFor(t, "the poll to publish the second commit", func() bool {
		p, err := f.pub.Pointer(context.Background(), "s", site.Production)
		return err == nil && p.Commit == site.Commit(two)
	})
	if n := f.builder.n.Load(); n != 2 {
		t.Errorf("builds = %d, want 2", n)
	}
}

func TestRequestsCoalesce(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.builder.delay = 200 * time.Millisecond
	f.sync(t)
	before := f.builder.n.Load()
	f.repo.Write("index.html", "<h1>two</h1>")
	two := f.repo.Commit("two")
	for range 1000 {
		if err := f.loop.Trigger("s"); err != nil {
			t.Fatal(err)
		}
	}
	st := f.sync(t)
	if st.LiveCommit != site.Commit(two) {
		t.Fatalf("live %s, want %s", st.LiveCommit, two)
	}
	if n := f.builder.n.Load() - before; n > 2 {
		t.Errorf("1000 requests caused %d builds, want at most 2", n)
	}
	if err := f.loop.Trigger("nope"); !errors.Is(err, reconcile.ErrUnknownSite) {
		t.Errorf("unknown site: %v", err)
	}
}

func TestUnknownRefFailsWithoutRetrying(t *testing.T) {
	f := newFixture(t, reconcile.Spec{Ref: "no-such-branch"}, 0)
	st := f.sync(t)
	if st.State != site.Failed || !strings.Contains(st.Error, "no-such-branch") {
		t.Fatalf("status %+v, want Failed naming the ref", st)
	}
	if f.builder.n.Load() != 0 {
		t.Error("built although the ref does not exist")
	}
}

func TestPinHoldsProduction(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "pinned")
	pinned := repo.Commit("pinned")
	repo.Write("index.html", "newer")
	repo.Commit("newer")
	f := newFixture(t, reconcile.Spec{Repo: gitsrc.Options{URL: repo.URL()}, Pin: pinned}, 0)
	st := f.sync(t)
	if st.State != site.Pinned || st.LiveCommit != site.Commit(pinned) {
		t.Fatalf("status %+v, want Pinned at %s", st, pinned)
	}
}

// TestSubpathReuse: a commit that changes nothing under the site's path is
// published without building; the pointer records the new commit.
func TestSubpathReuse(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("docs/index.html", "docs")
	repo.Write("README.md", "one")
	repo.Commit("one")
	f := newFixture(t, reconcile.Spec{Repo: gitsrc.Options{URL: repo.URL()}, Path: "docs"}, 0)
	first := f.sync(t)
	repo.Write("README.md", "two")
	two := repo.Commit("outside the site")
	st := f.sync(t)
	if st.LiveCommit != site.Commit(two) || st.LiveDeploy != first.LiveDeploy || st.Reused != 1 {
		t.Errorf("status %+v, want commit %s on deploy %s, reused", st, two, first.LiveDeploy)
	}
	if n := f.builder.n.Load(); n != 1 {
		t.Errorf("builds = %d, want 1", n)
	}
	m, err := f.pub.Manifest(context.Background(), "s", st.LiveDeploy)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Files["index.html"]; !ok || len(m.Files) != 1 {
		t.Errorf("deploy files %v, want only index.html from docs/", m.Files)
	}
}

// TestUnreachableRepoRetries: a transient failure is retried with backoff
// and heals once the repository is there. The retries run on a manual
// clock: the test moves time past each delay instead of waiting it out,
// and nothing but a retry (no poll, no sync) runs the site again.
func TestUnreachableRepoRetries(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "later.git")
	clock := &backoff.Manual{}
	retry := backoff.Exponential{Base: time.Minute, Max: time.Hour}
	f := newFixture(t, reconcile.Spec{Repo: gitsrc.Options{URL: "file://" + missing}}, 0, func(o *reconcile.Options) {
		o.Retry, o.RetryClock = retry, clock
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// The first run, at start, fails and schedules the first retry; that
	// one fails too and schedules the second, twice as far off.
	for n := 1; n <= 2; n++ {
		d, err := clock.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for retry %d: %v", n, err)
		}
		if st, _ := f.loop.SiteStatus("s"); st.State != site.Failed || d != retry.Delay(n) {
			t.Fatalf("after failure %d: status %+v, retry in %v; want Failed, in %v", n, st, d, retry.Delay(n))
		}
		if n == 2 {
			if err := os.Rename(f.repo.Bare, missing); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(d)
	}
	st, err := f.loop.Settle(ctx, "s")
	if err != nil || st.State != site.Synced || clock.Pending() != 0 {
		t.Fatalf("after the second retry: status %+v (%v), %d retries pending; want Synced, none", st, err, clock.Pending())
	}
}

func (f *fixture) now() time.Time { return time.Now().Add(time.Duration(f.clock.Load()) * time.Second) }

// reportLog records what the loop reports for forge statuses.
type reportLog struct {
	mu sync.Mutex
	r  []reconcile.Report
}

func (l *reportLog) Report(_ site.Name, r reconcile.Report) {
	l.mu.Lock()
	l.r = append(l.r, r)
	l.mu.Unlock()
}

func (l *reportLog) states(c site.Channel) []site.Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []site.Outcome
	for _, r := range l.r {
		if r.Channel == c {
			out = append(out, r.State)
		}
	}
	return out
}
