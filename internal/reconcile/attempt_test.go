package reconcile_test

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// TestStalledWaitsTransientRetries: a failure that is the site's (a
// template error) is not built again until a new commit comes; one that
// is not (the builder's disk) is retried by the loop on its own.
func TestStalledWaitsTransientRetries(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.sync(t)
	// Set between runs: the worker reads it after the next request.
	f.builder.fail = func(n int64) error {
		switch n {
		case 2:
			return &build.UserError{Problems: []build.Problem{{Message: "template error"}}}
		case 4:
			return errors.New("no space left on device")
		}
		return nil
	}

	f.repo.Write("index.html", "<h1>two</h1>")
	two := site.Commit(f.repo.Commit("two"))
	st := f.sync(t)
	if st.State != site.Failed || st.FailedAt != two || st.Error != "template error" {
		t.Fatalf("after a template error: %+v", st)
	}
	if e := f.journal.Entries("s")[0]; e.Kind != fault.KindStalled || e.State != site.OutcomeFailed {
		t.Errorf("journal: kind %q state %q, want a stalled failure", e.Kind, e.State)
	}
	if st := f.sync(t); st.State != site.Failed || f.builder.n.Load() != 2 {
		t.Fatalf("asked again: %d builds, status %+v; want the stalled commit left alone", f.builder.n.Load(), st)
	}

	f.repo.Write("index.html", "<h1>three</h1>")
	three := site.Commit(f.repo.Commit("three"))
	if st := f.sync(t); st.State != site.Synced || st.LiveCommit != three {
		t.Fatalf("a new commit: %+v, want it live", st)
	}

	f.repo.Write("index.html", "<h1>four</h1>")
	four := site.Commit(f.repo.Commit("four"))
	if st := f.sync(t); st.State != site.Failed || st.FailedAt != four {
		t.Fatalf("after a full disk: %+v", st)
	}
	if e := f.journal.Entries("s")[0]; e.Kind != fault.KindTransient {
		t.Errorf("journal: kind %q, want transient", e.Kind)
	}
	waitFor(t, "the retry to publish", func() bool { st, _ := f.loop.SiteStatus("s"); return st.LiveCommit == four })
	if n := f.builder.n.Load(); n != 5 {
		t.Errorf("builds = %d, want 5 (the transient failure built twice)", n)
	}
}

var steps = []string{"fetch", "sources", "key", "build", "upload", "rules", "publish", "report"}

// TestJournalNamesTheSteps: every attempt lists the deploy's steps in
// order, each timed, and its build log names the same steps; a failed
// one stops at the step that failed.
func TestJournalNamesTheSteps(t *testing.T) {
	f := newFixture(t, reconcile.Spec{}, 0)
	f.sync(t) // built
	f.repo.Write("index.html", "<h1>two</h1>")
	f.repo.Commit("two")
	f.sync(t) // built
	f.repo.Write("index.html", "<h1>one</h1>")
	f.repo.Commit("back to one")
	if st := f.sync(t); st.Reused != 1 {
		t.Fatalf("reused %d, want the revert reused", st.Reused)
	}
	f.builder.fail = func(int64) error { return &build.UserError{Problems: []build.Problem{{Message: "template error"}}} }
	f.repo.Write("index.html", "<h1>three</h1>")
	f.repo.Commit("three")
	f.sync(t) // fails building

	entries := f.journal.Entries("s") // newest first
	if len(entries) != 4 {
		t.Fatalf("%d attempts, want 4", len(entries))
	}
	for i, e := range entries {
		want := steps
		if i == 0 {
			want = steps[:slices.Index(steps, "build")+1]
		}
		var names []string
		for _, s := range e.Steps {
			names = append(names, s.Name)
			if s.Took < 0 {
				t.Errorf("attempt %d: step %s took %v", e.Seq, s.Name, s.Took)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("attempt %d (%s): steps %v, want %v", e.Seq, e.State, names, want)
		}
		if e.Took(journal.StepBuild) <= 0 && !e.Reused {
			t.Errorf("attempt %d: the build step took no time", e.Seq)
		}
		entry, ok := f.journal.Find("s", e.Deploy)
		if !ok {
			t.Fatalf("attempt %d not found by its deploy", e.Seq)
		}
		if entry.Snapshot().Seq != e.Seq {
			continue // the first build: Find has the revert that reused it
		}
		if got := logSteps(t, string(entry.Log())); !slices.Equal(got, names) {
			t.Errorf("attempt %d: the build log names steps %v, the journal %v", e.Seq, got, names)
		}
	}
	if !entries[1].Reused || entries[1].Timings().Build != 0 || entries[2].Timings().Build <= 0 {
		t.Errorf("build timings: reused %v, %v; built %v", entries[1].Reused, entries[1].Timings().Build, entries[2].Timings().Build)
	}
}

// logSteps reads the step names from a build log's "Steps:" line.
func logSteps(t *testing.T, log string) []string {
	t.Helper()
	for line := range strings.Lines(log) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Steps: ")
		if !ok {
			continue
		}
		var names []string
		for part := range strings.SplitSeq(rest, ", ") {
			names = append(names, strings.Fields(part)[0])
		}
		return names
	}
	t.Errorf("no Steps line in the log:\n%s", log)
	return nil
}

// TestOneComponentPerLogLine: the git cache logs through the loop's
// logger without naming a second component.
func TestOneComponentPerLogLine(t *testing.T) {
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "reconcile")
	f := newLoggedFixture(t, reconcile.Spec{}, 0, logger)
	f.sync(t)
	fromGit := false
	for line := range strings.Lines(buf.String()) {
		if n := strings.Count(line, `"component":`); n != 1 {
			t.Errorf("%d components in %s", n, line)
		}
		fromGit = fromGit || strings.Contains(line, `"msg":"fetched"`)
	}
	if !fromGit {
		t.Errorf("no line from the git cache:\n%s", buf.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
