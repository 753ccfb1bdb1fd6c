package publish_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

// uploadCommit uploads a deploy of one page built from commit with subject.
func uploadCommit(tb testing.TB, p *publish.Publisher, commit site.Commit, subject, body string) *manifest.Manifest {
	tb.Helper()
	dir := tb.TempDir()
	writeTree(tb, dir, map[string]string{"index.html": body})
	m, _, err := p.Upload(tb.Context(), publish.Deploy{Site: blog, Commit: commit, BuildKey: buildKey(body), Dir: dir,
		Info: manifest.CommitInfo{Subject: subject, Author: "Ada"}})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// event is what a test compares of a manifest.Event.
type event struct {
	kind     manifest.EventKind
	commit   site.Commit
	subject  string
	deploy   site.DeployID
	previous site.DeployID
}

func eventsOf(ptr manifest.Pointer) []event {
	var out []event
	for _, e := range ptr.Events {
		out = append(out, event{e.Kind, e.Commit, e.Info.Subject, e.Deploy, e.Previous})
	}
	return out
}

// TestActivateEvents: every change of what a channel serves is an event in
// the pointer, newest first, with its kind, the commit that caused it and
// the deploys before and after; a retry of a publish that landed is not.
func TestActivateEvents(t *testing.T) {
	p := publish.New(newStore(t), publish.Options{Now: newClock().Now})
	mA := uploadCommit(t, p, commit1, "Add the example site", "a")
	mB := uploadCommit(t, p, commit2, "Change the title", "b")
	revert := manifest.CommitInfo{Subject: `Revert "Change the title"`, Author: "Ada"}

	steps := []struct {
		name  string
		m     *manifest.Manifest
		cause publish.Cause
		want  event // the new first event; zero: no new event
	}{
		{"built A", mA, built(commit1), event{manifest.Built, commit1, "Add the example site", mA.ID, ""}},
		{"built B", mB, built(commit2), event{manifest.Built, commit2, "Change the title", mB.ID, mA.ID}},
		{"retry of B", mB, built(commit2), event{}},
		{"revert reuses A", mA, publish.Cause{Kind: manifest.Reused, Commit: commit3, Info: revert},
			event{manifest.Reused, commit3, revert.Subject, mA.ID, mB.ID}},
		{"repair of A", mA, publish.Cause{Kind: manifest.Repaired, Commit: commit3},
			event{manifest.Repaired, commit3, "", mA.ID, ""}},
	}
	var want []event
	for _, st := range steps {
		before, _ := p.Pointer(t.Context(), blog, site.Production)
		ptr, err := p.Activate(t.Context(), blog, site.Production, st.m, st.cause)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.want != (event{}) {
			want = append([]event{st.want}, want...)
		}
		if got := eventsOf(ptr); !slices.Equal(got, want) {
			t.Errorf("%s: events\n got %v\nwant %v", st.name, got, want)
		}
		stored, err := p.Pointer(t.Context(), blog, site.Production)
		if err != nil || !slices.Equal(eventsOf(stored), want) {
			t.Errorf("%s: stored events %v, %v; want %v", st.name, eventsOf(stored), err, want)
		}
		if ptr.Commit != st.cause.Commit || ptr.Deploy != st.m.ID {
			t.Errorf("%s: pointer at %s/%s, want %s/%s", st.name, ptr.Commit.Short(), ptr.Deploy, st.cause.Commit.Short(), st.m.ID)
		}
		if cur, ok := ptr.Current(); !ok || cur.Kind != want[0].kind {
			t.Errorf("%s: Current() = %+v, %v; want the first event", st.name, cur, ok)
		}
		if st.cause.Kind == manifest.Repaired {
			// The channel serves what it did: only the story grows.
			if !ptr.PublishedAt.Equal(before.PublishedAt) || !slices.Equal(ptr.History, before.History) || ptr.Previous != before.Previous {
				t.Errorf("%s: pointer %+v moved from %+v", st.name, ptr, before)
			}
		}
	}
	if ev := eventsOf(mustPointer(t, p))[1]; ev.subject != revert.Subject {
		t.Errorf("the revert's event describes %q, want the revert commit's own subject", ev.subject)
	}

	if _, err := p.Activate(t.Context(), blog, site.Production, mB, publish.Cause{Commit: commit2}); err == nil {
		t.Error("Activate without an event kind: no error")
	}
}

func mustPointer(tb testing.TB, p *publish.Publisher) manifest.Pointer {
	tb.Helper()
	ptr, err := p.Pointer(tb.Context(), blog, site.Production)
	if err != nil {
		tb.Fatal(err)
	}
	return ptr
}

// TestActivateEventsBounded: the pointer keeps the newest MaxEvents events.
func TestActivateEventsBounded(t *testing.T) {
	p := publish.New(newStore(t), publish.Options{Now: newClock().Now})
	ms := []*manifest.Manifest{uploadCommit(t, p, commit1, "one", "1"), uploadCommit(t, p, commit2, "two", "2")}
	n := manifest.MaxEvents + 7
	var commits []site.Commit
	for i := range n {
		c := site.Commit(fmt.Sprintf("%040x", i+1))
		commits = append(commits, c)
		if _, err := p.Activate(t.Context(), blog, site.Production, ms[i%2], publish.Cause{Kind: manifest.Reused, Commit: c}); err != nil {
			t.Fatal(err)
		}
	}
	ptr := mustPointer(t, p)
	if len(ptr.Events) != manifest.MaxEvents {
		t.Fatalf("%d events kept, want %d", len(ptr.Events), manifest.MaxEvents)
	}
	for i, e := range ptr.Events {
		if want := commits[n-1-i]; e.Commit != want {
			t.Fatalf("event %d is of %s, want %s (newest first, oldest dropped)", i, e.Commit.Short(), want.Short())
		}
	}
	if len(ptr.Events[0].Info.Subject) > 0 {
		t.Errorf("a reused event of another commit without Info took the manifest's subject %q", ptr.Events[0].Info.Subject)
	}
}

// TestActivateLongSubject: an event keeps a bounded subject.
func TestActivateLongSubject(t *testing.T) {
	p := publish.New(newStore(t), publish.Options{})
	m := uploadCommit(t, p, commit1, "x", "x")
	long := strings.Repeat("é", 500)
	ptr, err := p.Activate(t.Context(), blog, site.Production, m, publish.Cause{Kind: manifest.Built, Commit: commit1, Info: manifest.CommitInfo{Subject: long}})
	if err != nil {
		t.Fatal(err)
	}
	if s := ptr.Events[0].Info.Subject; len(s) > 200 || !strings.HasPrefix(long, strings.TrimSuffix(s, "…")) {
		t.Errorf("subject kept: %d bytes %q", len(s), s)
	}
}

// TestPointerWithoutEvents: a pointer written before events reads as it
// did, and the next publish starts its story on top of its history.
func TestPointerWithoutEvents(t *testing.T) {
	st := newStore(t)
	p := publish.New(st, publish.Options{Now: newClock().Now})
	mA := uploadCommit(t, p, commit1, "one", "a")
	mB := uploadCommit(t, p, commit2, "two", "b")
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	old := fmt.Sprintf(`{"deploy":%q,"commit":%q,"published_at":%q,"history":[%q],"history_since":[%q]}`,
		mA.ID, commit1, at.Format(time.RFC3339), mA.ID, at.Format(time.RFC3339))
	if _, err := st.Put(t.Context(), pointerKey(blog, site.Production), bytes.NewReader([]byte(old)), int64(len(old)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ptr := mustPointer(t, p)
	if ptr.Deploy != mA.ID || ptr.Commit != commit1 || !ptr.PublishedAt.Equal(at) || len(ptr.Events) != 0 {
		t.Fatalf("old pointer read as %+v", ptr)
	}
	if _, ok := ptr.Current(); ok {
		t.Error("Current() of a pointer without events: ok")
	}
	ptr, err := p.Activate(t.Context(), blog, site.Production, mB, built(commit2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := eventsOf(ptr), []event{{manifest.Built, commit2, "two", mB.ID, mA.ID}}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if !slices.Equal(ptr.History, []site.DeployID{mB.ID, mA.ID}) || ptr.Previous != mA.ID {
		t.Errorf("history %v previous %s; want both deploys, previous %s", ptr.History, ptr.Previous, mA.ID)
	}
}
