package admin_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// TestHistoryStoryAcrossRestart: commit A is built, C is built, then B
// reverts C (A's tree: reused). The history lists the three events with
// the commit that caused each, and the channel shows the revert commit,
// before a restart (this server's journal has the attempts) and after one
// (a new publisher, an empty journal) alike: the story is in the bucket.
func TestHistoryStoryAcrossRestart(t *testing.T) {
	var (
		commitA = site.Commit(strings.Repeat("a", 40))
		commitC = site.Commit(strings.Repeat("c", 40))
		commitB = site.Commit(strings.Repeat("b", 40))
		t0      = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	)
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	clock := func() time.Time { now = now.Add(time.Minute); return now }
	jr := journal.New(journal.Options{Now: clock})
	pub := publish.New(st, publish.Options{Now: clock})

	// deploy does what the loop does for commit: an attempt in the
	// journal, an upload unless the tree was built before, the pointer flip.
	deploy := func(commit site.Commit, subject, tree string) *manifest.Manifest {
		t.Helper()
		key := strings.Repeat(tree, 64)
		e := jr.Start("blog", site.Production, commit)
		e.Update(func(s *journal.Snapshot) { s.Subject, s.Author, s.Deploy = subject, "Ada", manifest.DeployIDFor(key) })
		info := manifest.CommitInfo{Subject: subject, Author: "Ada"}
		cause := publish.Cause{Kind: manifest.Reused, Commit: commit, Info: info}
		m, err := pub.Reuse(t.Context(), "blog", key)
		if err != nil {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(tree), 0o644); err != nil {
				t.Fatal(err)
			}
			cause.Kind = manifest.Built
			e.Step(journal.StepBuild, 1500*time.Millisecond)
			m, _, err = pub.Upload(t.Context(), publish.Deploy{Site: "blog", Commit: commit, BuildKey: key, Dir: dir, Info: info,
				Build: manifest.BuildSummary{Tool: "none", Duration: 1500 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
		} else {
			e.Update(func(s *journal.Snapshot) { s.Reused = true })
		}
		if _, err := pub.Activate(t.Context(), "blog", site.Production, m, cause); err != nil {
			t.Fatal(err)
		}
		e.Finish(site.OutcomeLive, nil)
		return m
	}
	mA := deploy(commitA, "Add the example site", "a")
	mC := deploy(commitC, "Change the title", "c")
	if m := deploy(commitB, `Revert "Change the title"`, "a"); m.ID != mA.ID {
		t.Fatalf("the revert published %s, want A's deploy %s reused", m.ID, mA.ID)
	}

	type row struct {
		event         string
		state         site.Outcome
		commit        site.Commit
		subject       string
		deploy, prev  site.DeployID
		reused, timed bool
	}
	want := []row{
		{"reused", site.OutcomeLive, commitB, `Revert "Change the title"`, mA.ID, mC.ID, true, false},
		{"built", site.OutcomeReady, commitC, "Change the title", mC.ID, mA.ID, false, true},
		{"built", site.OutcomeReady, commitA, "Add the example site", mA.ID, "", false, true},
	}
	for _, tc := range []struct {
		name    string
		pub     *publish.Publisher
		journal *journal.Journal
	}{
		{"before a restart", pub, jr},
		{"after a restart", publish.New(st, publish.Options{}), journal.New(journal.Options{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The loop reports the pointer it read: live at the revert.
			loop := &fakeLoop{statuses: []reconcile.Status{{Site: "blog", State: site.Synced, Desired: commitB,
				LiveCommit: commitB, LiveDeploy: mA.ID, Channels: map[site.Channel]reconcile.ChannelStatus{
					site.Production: {State: site.Synced, Desired: commitB, LiveCommit: commitB, LiveDeploy: mA.ID}}}}}
			srv := httptest.NewServer(admin.New(admin.Options{Token: token, Loop: loop, Deploys: tc.pub, Journal: tc.journal,
				Sites: []admin.SiteInfo{{Name: "blog"}}}))
			t.Cleanup(srv.Close)
			get := func(path string, v any) {
				t.Helper()
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %s", path, resp.Status)
				}
				if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
					t.Fatal(err)
				}
			}
			var list api.DeployList
			get("/api/v1/sites/blog/deploys", &list)
			var got []row
			for _, d := range list.Deploys {
				got = append(got, row{d.Event, d.State, d.Commit.SHA, d.Commit.Subject, d.ID, d.Previous, d.Reused, d.Timings.Build > 0})
			}
			if !slices.Equal(got, want) {
				t.Errorf("history\n got %v\nwant %v", got, want)
			}
			var s api.Site
			get("/api/v1/sites/blog", &s)
			if len(s.Channels) == 0 || s.Channels[0].Live == nil || s.Channels[0].Live.SHA != commitB ||
				s.Channels[0].Live.Subject != `Revert "Change the title"` || s.Channels[0].LiveDeploy != mA.ID {
				t.Errorf("production channel = %+v, live %+v; want live at the revert %s with its subject", s.Channels, s.Channels[0].Live, commitB.Short())
			}
		})
	}
}

// TestChannelLiveCommit: a channel is live at its pointer's commit,
// described by the deploy's manifest when it is the commit the deploy was
// built from, else by the pointer's event for it, else by its SHA alone.
func TestChannelLiveCommit(t *testing.T) {
	const (
		built  = site.Commit("1111111111111111111111111111111111111111") // d-blog-1's manifest commit
		revert = site.Commit("9999999999999999999999999999999999999999")
	)
	for _, tc := range []struct {
		name    string
		commit  site.Commit
		events  []manifest.Event
		subject string
	}{
		{"the deploy's own commit", built, nil, "Add the spring post"},
		{"a revert with its event", revert, []manifest.Event{{Kind: manifest.Reused, Commit: revert, Deploy: "d-blog-1",
			Info: manifest.CommitInfo{Subject: `Revert "Spring"`}}}, `Revert "Spring"`},
		{"a revert before events", revert, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.loop.statuses[0].LiveCommit = tc.commit
			ptr := f.deploys.pointers["blog"][site.Production]
			ptr.Commit, ptr.Events = tc.commit, tc.events
			f.deploys.pointers["blog"][site.Production] = ptr
			resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog", "")
			wantStatus(t, resp, body, http.StatusOK)
			var s api.Site
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatal(err)
			}
			if live := s.Channels[0].Live; live == nil || live.SHA != tc.commit || live.Subject != tc.subject {
				t.Errorf("production live = %+v; want %s %q", live, tc.commit.Short(), tc.subject)
			}
		})
	}
}

// TestHistoryEventsAndAttempts: events from the pointer, this server's
// attempt adding its timings to the event it made, attempts that did not
// go live as entries of their own, and a deploy a pointer remembers from
// before events as one entry.
func TestHistoryEventsAndAttempts(t *testing.T) {
	f := newFixture(t)
	const commit1 = site.Commit("1111111111111111111111111111111111111111")
	f.deploys.pointers["blog"][site.Production] = manifest.Pointer{Deploy: "d-blog-1", Commit: commit1, PublishedAt: syncedAt,
		History: []site.DeployID{"d-blog-1", "d-blog-0"}, Since: []time.Time{syncedAt, syncedAt.Add(-time.Hour)},
		Events: []manifest.Event{{Kind: manifest.Built, Commit: commit1, Deploy: "d-blog-1", Previous: "d-blog-0", At: syncedAt,
			Info: manifest.CommitInfo{Subject: "Add the spring post"}}}}
	made := f.journal.Start("blog", site.Production, commit1)
	made.Update(func(s *journal.Snapshot) { s.Deploy = "d-blog-1" })
	made.Step(journal.StepPublish, 7*time.Millisecond)
	made.Finish(site.OutcomeLive, nil)
	failed := f.journal.Start("blog", "pr-7", "3333333333333333333333333333333333333333")
	failed.Update(func(s *journal.Snapshot) { s.Deploy, s.Subject = "d-blog-pr7", "Broken template" })
	failed.Finish(site.OutcomeFailed, errors.New("template error"))
	building := f.journal.Start("blog", site.Production, "4444444444444444444444444444444444444444")
	building.Update(func(s *journal.Snapshot) { s.Deploy, s.Subject = "d-blog-2", "Spring cleaning" })
	t.Cleanup(func() { building.Finish(site.OutcomeLive, nil) })

	resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys", "")
	wantStatus(t, resp, body, http.StatusOK)
	var list api.DeployList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	type row struct {
		id            site.DeployID
		event         string
		state         site.Outcome
		publishMillis int64
	}
	var got []row
	for _, d := range list.Deploys {
		got = append(got, row{d.ID, d.Event, d.State, d.Timings.Publish})
	}
	want := []row{
		{"d-blog-2", "", site.OutcomeBuilding, 0},
		{"d-blog-pr7", "", site.OutcomeFailed, 0},
		{"d-blog-1", "built", site.OutcomeLive, 7},
		{"d-blog-0", "", site.OutcomeReady, 0},
	}
	if !slices.Equal(got, want) {
		t.Errorf("history\n got %v\nwant %v", got, want)
	}
}

// TestHistoryBeforeEventsWithAttempt: a pointer from before events, and
// this server's attempt at its live deploy: still one live entry.
func TestHistoryBeforeEventsWithAttempt(t *testing.T) {
	f := newFixture(t)
	made := f.journal.Start("blog", site.Production, "1111111111111111111111111111111111111111")
	made.Update(func(s *journal.Snapshot) { s.Deploy = "d-blog-1" })
	made.Step(journal.StepPublish, 7*time.Millisecond)
	made.Finish(site.OutcomeLive, nil)
	resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys", "")
	wantStatus(t, resp, body, http.StatusOK)
	var list api.DeployList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Deploys) != 1 || list.Deploys[0].State != site.OutcomeLive || list.Deploys[0].Timings.Publish != 7 || list.Deploys[0].Event != "" {
		t.Errorf("history = %+v; want d-blog-1 live with this server's timings", list.Deploys)
	}
}
