package dashboard

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/site"
)

// now is the fixed clock of every test.
var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

const (
	testToken = "s3cret-admin-token-0123456789abcdef"

	blogSHA     = site.Commit("4f2a9c81d3e6b7a05c1d2e3f4a5b6c7d8e9f0a1b")
	blogOldSHA  = site.Commit("9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d")
	prSHA       = site.Commit("1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d")
	stagingSHA  = site.Commit("c0ffee1234567890abcdef1234567890abcdef12")
	docsSHA     = site.Commit("d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5")
	docsBadSHA  = site.Commit("badbadbadbadbadbadbadbadbadbadbadbadbad0")
	liveID      = site.DeployID("a1b2c3d4e5f60718")
	prID        = site.DeployID("b2c3d4e5f6071829")
	readyID     = site.DeployID("c3d4e5f60718293a")
	failedID    = site.DeployID("d4e5f60718293a4b")
	buildingID  = site.DeployID("e5f60718293a4b5c")
	docsLiveID  = site.DeployID("f60718293a4b5c6d")
	docsFailID  = site.DeployID("0718293a4b5c6d7e")
	liveSubject = "Add spring recipes post"

	hugoError = `building site: hugo: exit status 1: ERROR render of "/docs/install" failed: ` +
		`"/src/layouts/_default/single.html:12:5": execute of template failed: template: _default/single.html:12:5: ` +
		`executing "main" at <.Params.author.name>: can't evaluate field name in type string` + "\n" +
		`Error: error building site: render: failed to render pages: render of "/docs/install" failed`

	liveLog = "Start building sites … \nhugo v0.165.0+extended linux/amd64\n\n" +
		"                   | EN\n-------------------+-----\n  Pages            | 42\n  Static files     | 18\n\n" +
		"Total in 1184 ms\nuploading 61 files (2.3 MB)\npublished a1b2c3d4e5f60718 to production\n"
	buildingLog = "Start building sites … \nhugo v0.165.0+extended linux/amd64\n"
)

// fakeSource is an in-memory Source: two sites, blog (Synced, with a pull
// request preview and a branch deploy) and docs (Failed on a Hugo template
// error). It is safe for concurrent use, as the browser test needs.
type fakeSource struct {
	mu       sync.Mutex
	sites    []api.Site
	deploys  map[site.Name][]api.DeployDetail
	logs     map[site.DeployID]string
	err      error // when set, every method fails with it
	triggers []site.Name
}

var _ Source = (*fakeSource)(nil)

func commit(sha site.Commit, subject, author string, ago time.Duration) api.Commit {
	return api.Commit{SHA: sha, Subject: subject, Author: author, Time: now.Add(-ago)}
}

func newFakeSource() *fakeSource {
	blogLive := commit(blogSHA, liveSubject, "Ana Lima", 3*time.Minute)
	prLive := commit(prSHA, "Try a darker header", "Sam Reyes", 2*time.Hour)
	docsLive := commit(docsSHA, "Document the CLI", "Kim Park", 26*time.Hour)
	docsBad := commit(docsBadSHA, "Show the author on install pages", "Kim Park", 10*time.Minute)

	blog := api.Site{
		Name: "blog", Repo: "https://github.com/example/blog.git", Ref: "main",
		Domains: []string{"blog.example.org", "www.blog.example.org"}, URL: "https://blog.example.org/",
		State: site.Synced, Desired: blogSHA, LiveCommit: blogSHA, LiveDeploy: liveID,
		LastSync: now.Add(-90 * time.Second), Builds: 7, Reused: 1,
		Channels: []api.Channel{
			{Name: site.Production, State: site.Synced, URL: "https://blog.example.org/", LiveCommit: blogSHA, LiveDeploy: liveID, Live: &blogLive},
			{Name: "pr-7", State: site.Synced, URL: "https://pr-7--blog.preview.example.net/", LiveCommit: prSHA, LiveDeploy: prID, Live: &prLive},
			{Name: "branch-staging", State: site.Progressing, URL: "https://branch-staging--blog.preview.example.net/", Desired: stagingSHA},
		},
	}
	docs := api.Site{
		Name: "docs", Repo: "https://git.example.com/team/docs.git", Ref: "release",
		Domains: []string{"docs.example.com"}, URL: "https://docs.example.com/",
		State: site.Failed, Desired: docsBadSHA, LiveCommit: docsSHA, LiveDeploy: docsLiveID,
		Error: hugoError, FailedAt: docsBadSHA, LastSync: now.Add(-10 * time.Minute), Builds: 3,
		Channels: []api.Channel{
			{Name: site.Production, State: site.Failed, URL: "https://docs.example.com/", LiveCommit: docsSHA, LiveDeploy: docsLiveID,
				Error: hugoError, FailedAt: docsBadSHA, Live: &docsLive},
		},
	}

	deploy := func(s site.Name, id site.DeployID, ch site.Channel, state site.Outcome, c api.Commit, ago time.Duration, total int64) api.DeployDetail {
		d := api.DeployDetail{Deploy: api.Deploy{
			ID: id, Site: s, Channel: ch, State: state, Commit: c, Created: now.Add(-ago),
			Timings: api.Timings{Queue: 12, Fetch: 340, Build: total - 600, Upload: 230, Publish: 18, Total: total},
			LogURL:  fmt.Sprintf("/api/v1/sites/%s/deploys/%s/log", s, id),
		}}
		if state == site.OutcomeLive || state == site.OutcomeReady {
			d.URL = fmt.Sprintf("https://%s--%s.preview.example.net/", id, s)
			d.PublishedAt = d.Created.Add(time.Duration(total) * time.Millisecond)
			d.Files, d.Bytes = 61, 2_345_678
			d.Build = api.Build{Tool: "hugo", Hugo: "0.165.0+extended", BaseURL: "https://blog.example.org/", MaxRSS: 187_000_000}
			d.Rules = api.Rules{Redirects: 4, Headers: 2}
		}
		if state == site.OutcomeLive {
			d.LiveOn = []site.Channel{ch}
		}
		return d
	}
	live := deploy("blog", liveID, site.Production, site.OutcomeLive, blogLive, 3*time.Minute, 1234)
	live.Tree = "7d3f2a0c9b8e1d4f6a5c3b2e1f0d9c8b7a6e5d4c"
	live.Rules.Errors = []api.RuleError{{Source: "_redirects", Line: 3, Message: "unknown status 309"}}
	live.Event, live.Reused, live.Previous = "reused", true, readyID // a revert
	failed := deploy("blog", failedID, "pr-7", site.OutcomeFailed, commit(prSHA, "Try a darker header (wip)", "Sam Reyes", 3*time.Hour), 3*time.Hour, 2100)
	failed.Error = "building site: hugo: exit status 1: ERROR failed to load config"
	building := deploy("blog", buildingID, "branch-staging", site.OutcomeBuilding, commit(stagingSHA, "Staging: new layout", "Ana Lima", time.Minute), 30*time.Second, 0)
	building.Timings = api.Timings{Queue: 8, Fetch: 410}
	docsFail := deploy("docs", docsFailID, site.Production, site.OutcomeFailed, docsBad, 10*time.Minute, 3400)
	docsFail.Error = hugoError

	return &fakeSource{
		sites: []api.Site{blog, docs},
		deploys: map[site.Name][]api.DeployDetail{
			"blog": {
				building, live,
				deploy("blog", prID, "pr-7", site.OutcomeLive, prLive, 2*time.Hour, 1610),
				failed,
				deploy("blog", readyID, site.Production, site.OutcomeReady, commit(blogOldSHA, "Fix typo in about page", "Ana Lima", 26*time.Hour), 26*time.Hour, 980),
			},
			"docs": {docsFail, deploy("docs", docsLiveID, site.Production, site.OutcomeLive, docsLive, 26*time.Hour, 5400)},
		},
		logs: map[site.DeployID]string{
			liveID:     liveLog,
			buildingID: buildingLog,
			docsFailID: "Start building sites … \n" + hugoError + "\n",
		},
	}
}

func (f *fakeSource) Sites(context.Context) ([]api.Site, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.sites), nil
}

func (f *fakeSource) Site(_ context.Context, name site.Name) (api.Site, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return api.Site{}, f.err
	}
	for _, s := range f.sites {
		if s.Name == name {
			return s, nil
		}
	}
	return api.Site{}, fmt.Errorf("site %s: %w", name, api.ErrNotFound)
}

func (f *fakeSource) Deploys(_ context.Context, name site.Name, channel site.Channel, limit int) ([]api.Deploy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []api.Deploy
	for _, d := range f.deploys[name] {
		if (channel == "" || d.Channel == channel) && len(out) < limit {
			out = append(out, d.Deploy)
		}
	}
	return out, nil
}

func (f *fakeSource) Deploy(_ context.Context, name site.Name, id site.DeployID) (api.DeployDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return api.DeployDetail{}, f.err
	}
	for _, d := range f.deploys[name] {
		if d.ID == id {
			return d, nil
		}
	}
	return api.DeployDetail{}, fmt.Errorf("deploy %s/%s: %w", name, id, api.ErrNotFound)
}

func (f *fakeSource) Log(ctx context.Context, name site.Name, id site.DeployID) ([]byte, error) {
	text, _, err := f.logAndState(ctx, name, id)
	return text, err
}

// logAndState is the log with the deploy's state, as the admin API's log
// endpoint answers it (the fake log stream needs both).
func (f *fakeSource) logAndState(ctx context.Context, name site.Name, id site.DeployID) ([]byte, site.Outcome, error) {
	d, err := f.Deploy(ctx, name, id)
	if err != nil {
		return nil, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	text, ok := f.logs[id]
	if !ok {
		return nil, "", fmt.Errorf("log of %s: %w", id, api.ErrNotFound)
	}
	return []byte(text), d.State, nil
}

func (f *fakeSource) Trigger(name site.Name) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	for _, s := range f.sites {
		if s.Name == name {
			f.triggers = append(f.triggers, name)
			return nil
		}
	}
	return fmt.Errorf("site %s: %w", name, api.ErrNotFound)
}

// update changes the fake's data under its lock.
func (f *fakeSource) update(fn func(f *fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// finish ends the building deploy as the server would: live, with the
// whole log.
func (f *fakeSource) finish(id site.DeployID, log string) {
	f.update(func(f *fakeSource) {
		for name, ds := range f.deploys {
			for i := range ds {
				if ds[i].ID == id {
					f.deploys[name][i].State = site.OutcomeLive
					f.deploys[name][i].Timings.Total = 2345
				}
			}
		}
		f.logs[id] = log
	})
}

func (f *fakeSource) triggered() []site.Name {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.triggers)
}
