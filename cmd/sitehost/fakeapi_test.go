package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/site"
)

// fakeNow is the clock of the CLI tests; the fake API's times are
// relative to it.
var fakeNow = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// fakeAPI answers the admin API's documented shapes (internal/api) with
// fixed data, for testing the client commands without a server.
type fakeAPI struct {
	*httptest.Server
	sites   []api.Site
	deploys map[string][]api.Deploy // by site, newest first
	logs    map[site.DeployID][]string
	ends    map[site.DeployID]api.LogEnd
	// dropAfter: a stream of this deploy without Last-Event-ID (any
	// stream, with dropAlways) breaks before sending chunk dropAfter.
	dropAfter  map[site.DeployID]int
	dropAlways bool
	// rewind: resumed streams start over from the beginning of the log,
	// as a server that ignores Last-Event-ID would.
	rewind bool
	// syncWait, when set, runs in POST …/sync?wait=true before it answers.
	syncWait func()

	mu          sync.Mutex
	lastEventID []string // Last-Event-ID of each log stream request
	polls       int      // GETs of a site or its deploys
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		sites:     fakeSites(),
		deploys:   fakeDeploys(),
		logs:      map[site.DeployID][]string{},
		ends:      map[site.DeployID]api.LogEnd{},
		dropAfter: map[site.DeployID]int{},
	}
	f.logs["a1b2c3d4e5f60718"] = []string{
		"Fetching 9f8e7d6 from github.com/ann/blog\n",
		"Building with hugo v0.147.0\n",
		"                   | EN\n-------------------+-----\n  Pages            | 12\n",
		"Uploading 14 files (2 new, 88 KiB)\n",
		"Published a1b2c3d4e5f60718 in 1.2s\n",
	}
	f.ends["a1b2c3d4e5f60718"] = api.LogEnd{State: site.OutcomeLive}
	f.dropAfter["a1b2c3d4e5f60718"] = 3
	f.logs["c0ffee00c0ffee00"] = []string{
		"Fetching 5e6f7a8 from github.com/ann/docs\n",
		"Building with hugo v0.147.0\n",
		"Error: error building site: render: failed to render pages: template: _default/baseof.html:3: function \"nope\" not defined\n",
	}
	f.ends["c0ffee00c0ffee00"] = api.LogEnd{State: site.OutcomeFailed, Error: `hugo: template: _default/baseof.html:3: function "nope" not defined`}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/sites", func(w http.ResponseWriter, r *http.Request) {
		writeFake(w, http.StatusOK, api.SiteList{Sites: f.sites})
	})
	mux.HandleFunc("GET /api/v1/sites/{site}", func(w http.ResponseWriter, r *http.Request) {
		f.poll()
		if s, ok := f.site(w, r); ok {
			writeFake(w, http.StatusOK, s)
		}
	})
	mux.HandleFunc("GET /api/v1/sites/{site}/deploys", f.listDeploys)
	mux.HandleFunc("GET /api/v1/sites/{site}/deploys/{id}", func(w http.ResponseWriter, r *http.Request) {
		if d, ok := f.deploy(w, r); ok {
			writeFake(w, http.StatusOK, api.DeployDetail{Deploy: d, Files: 14, Bytes: 90112, Build: api.Build{Tool: "hugo", Hugo: "0.147.0"}})
		}
	})
	mux.HandleFunc("GET /api/v1/sites/{site}/deploys/{id}/log", f.log)
	mux.HandleFunc("POST /api/v1/sites/{site}/sync", f.sync)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeFake(w, http.StatusUnauthorized, api.Error{Error: "missing or wrong bearer token"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func writeFake(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", api.MediaJSON)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client sees a cut answer
}

func (f *fakeAPI) poll() {
	f.mu.Lock()
	f.polls++
	f.mu.Unlock()
}

func (f *fakeAPI) site(w http.ResponseWriter, r *http.Request) (api.Site, bool) {
	name := r.PathValue("site")
	for _, s := range f.sites {
		if string(s.Name) == name {
			return s, true
		}
	}
	writeFake(w, http.StatusNotFound, api.Error{Error: fmt.Sprintf("no site named %q", name)})
	return api.Site{}, false
}

func (f *fakeAPI) listDeploys(w http.ResponseWriter, r *http.Request) {
	f.poll()
	s, ok := f.site(w, r)
	if !ok {
		return
	}
	limit := 20
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			writeFake(w, http.StatusBadRequest, api.Error{Error: "limit: want a number from 1 to 100"})
			return
		}
		limit = min(n, 100)
	}
	out := []api.Deploy{}
	for _, d := range f.deploys[string(s.Name)] {
		if c := r.URL.Query().Get("channel"); c != "" && string(d.Channel) != c {
			continue
		}
		if len(out) < limit {
			out = append(out, d)
		}
	}
	writeFake(w, http.StatusOK, api.DeployList{Deploys: out})
}

func (f *fakeAPI) deploy(w http.ResponseWriter, r *http.Request) (api.Deploy, bool) {
	s, ok := f.site(w, r)
	if !ok {
		return api.Deploy{}, false
	}
	id := r.PathValue("id")
	for _, d := range f.deploys[string(s.Name)] {
		if string(d.ID) == id {
			return d, true
		}
	}
	writeFake(w, http.StatusNotFound, api.Error{Error: fmt.Sprintf("no deploy %s of site %s", id, s.Name)})
	return api.Deploy{}, false
}

// log answers the log as text, or as an SSE stream that resumes after
// Last-Event-ID and breaks off once midway where dropAfter says.
func (f *fakeAPI) log(w http.ResponseWriter, r *http.Request) {
	d, ok := f.deploy(w, r)
	if !ok {
		return
	}
	chunks, end := f.logs[d.ID], f.ends[d.ID]
	if r.Header.Get("Accept") != api.MediaSSE {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set(api.LogState, string(d.State))
		fmt.Fprint(w, strings.Join(chunks, ""))
		return
	}
	last := r.Header.Get("Last-Event-ID")
	f.mu.Lock()
	f.lastEventID = append(f.lastEventID, last)
	f.mu.Unlock()
	from, _ := strconv.Atoi(last)
	if f.rewind {
		from = 0
	}
	w.Header().Set("Content-Type", api.MediaSSE)
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, ": ping\n\n")
	flusher := w.(http.Flusher)
	offset := 0
	for i, c := range chunks {
		offset += len(c)
		if offset <= from {
			continue
		}
		if n, ok := f.dropAfter[d.ID]; ok && (last == "" || f.dropAlways) && i == n {
			panic(http.ErrAbortHandler) // the connection drops
		}
		data, _ := json.Marshal(api.LogChunk{Text: c})
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", offset, api.EventLog, data)
		flusher.Flush()
	}
	data, _ := json.Marshal(end)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", api.EventEnd, data)
}

func (f *fakeAPI) sync(w http.ResponseWriter, r *http.Request) {
	s, ok := f.site(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("wait") != "true" {
		writeFake(w, http.StatusAccepted, api.SyncAccepted{Message: "sync of " + string(s.Name) + " requested"})
		return
	}
	if s.Name == "slow" {
		writeFake(w, http.StatusGatewayTimeout, api.Error{Error: "sync of slow timed out after 10m0s; it goes on in the background"})
		return
	}
	if f.syncWait != nil {
		f.syncWait()
	}
	writeFake(w, http.StatusOK, s)
}

func commit(c byte) site.Commit { return site.Commit(strings.Repeat(string(c), 40)) }

func fakeSites() []api.Site {
	blogLive := &api.Commit{SHA: "1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5", Subject: "Fix typo in the about page", Author: "Bo Li", Time: fakeNow.Add(-6 * time.Minute)}
	return []api.Site{
		{
			Name: "blog", Repo: "https://github.com/ann/blog.git", Ref: "main", Domains: []string{"blog.example.org"},
			URL: "https://blog.example.org/", State: site.Synced, Desired: blogLive.SHA, LiveCommit: blogLive.SHA,
			LiveDeploy: "0f1e2d3c4b5a6978", LastSync: fakeNow.Add(-time.Minute), Builds: 3, Reused: 1,
			Channels: []api.Channel{
				{Name: site.Production, State: site.Synced, URL: "https://blog.example.org/", Desired: blogLive.SHA, LiveCommit: blogLive.SHA, LiveDeploy: "0f1e2d3c4b5a6978", Live: blogLive},
				{Name: "branch-next", State: site.Synced, URL: "https://branch-next--blog.preview.example.org/", Desired: blogLive.SHA, LiveCommit: blogLive.SHA, LiveDeploy: "0f1e2d3c4b5a6978", Live: blogLive},
				{Name: "pr-3", State: site.Progressing, URL: "https://pr-3--blog.preview.example.org/", Desired: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", LiveCommit: commit('7'), LiveDeploy: "77aa77aa77aa77aa"},
			},
		},
		{
			Name: "docs", Repo: "https://github.com/ann/docs.git", Ref: "main", Domains: []string{"docs.example.org"},
			URL: "https://docs.example.org/", State: site.Failed, Desired: "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f", LiveCommit: commit('4'),
			LiveDeploy: "44bb44bb44bb44bb", FailedAt: "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f",
			Error: `hugo: template: _default/baseof.html:3: function "nope" not defined (fix the template and push)`,
			Channels: []api.Channel{
				{Name: site.Production, State: site.Failed, URL: "https://docs.example.org/", Desired: "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f", LiveCommit: commit('4'), LiveDeploy: "44bb44bb44bb44bb",
					FailedAt: "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f", Error: `hugo: template: _default/baseof.html:3: function "nope" not defined (fix the template and push)`},
			},
		},
		// A site reporting no channels: the table shows production from
		// the top-level fields.
		{Name: "slow", Repo: "https://github.com/ann/slow.git", Ref: "main", URL: "https://slow.example.org/", State: site.OutOfSync, Desired: commit('5')},
	}
}

func fakeDeploys() map[string][]api.Deploy {
	ms := func(n int64) api.Timings { return api.Timings{Total: n} }
	return map[string][]api.Deploy{
		"blog": {
			{ID: "a1b2c3d4e5f60718", Site: "blog", Channel: "pr-3", State: site.OutcomeBuilding,
				Commit:  api.Commit{SHA: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", Subject: "Draft: new theme", Author: "Ann", Time: fakeNow.Add(-2 * time.Minute)},
				Created: fakeNow.Add(-40 * time.Second), LogURL: "/api/v1/sites/blog/deploys/a1b2c3d4e5f60718/log"},
			{ID: "0f1e2d3c4b5a6978", Site: "blog", Channel: site.Production, State: site.OutcomeLive, LiveOn: []site.Channel{site.Production, "branch-next"}, Event: "built", Previous: "55dd55dd55dd55dd",
				Commit:  api.Commit{SHA: "1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5", Subject: "Fix typo in the about page", Author: "Bo Li"},
				Created: fakeNow.Add(-5 * time.Minute), PublishedAt: fakeNow.Add(-5 * time.Minute), Timings: api.Timings{Fetch: 210, Build: 640, Upload: 380, Publish: 4, Total: 1234},
				URL: "https://0f1e2d3c4b5a6978--blog.preview.example.org/", LogURL: "/api/v1/sites/blog/deploys/0f1e2d3c4b5a6978/log"},
			{ID: "77aa77aa77aa77aa", Site: "blog", Channel: "pr-3", State: site.OutcomeLive, LiveOn: []site.Channel{"pr-3"}, Event: "built",
				Commit:  api.Commit{SHA: commit('7'), Subject: "A subject far longer than fifty characters, which the table cuts\nand a second line", Author: "Ann"},
				Created: fakeNow.Add(-2 * time.Hour), Timings: ms(850), LogURL: "/api/v1/sites/blog/deploys/77aa77aa77aa77aa/log"},
			{ID: "66cc66cc66cc66cc", Site: "blog", Channel: "pr-3", State: site.OutcomeFailed,
				Commit:  api.Commit{SHA: commit('6'), Subject: "Try a shortcode", Author: "Ann"},
				Created: fakeNow.Add(-26 * time.Hour), Timings: ms(3400), Error: "hugo: shortcode \"gallery\" not found", LogURL: "/api/v1/sites/blog/deploys/66cc66cc66cc66cc/log"},
			{ID: "55dd55dd55dd55dd", Site: "blog", Channel: site.Production, State: site.OutcomeReady, Reused: true, Event: "reused",
				Commit:  api.Commit{SHA: commit('5'), Subject: "Revert \"Add tags\"", Author: "Bo Li"},
				Created: fakeNow.Add(-4 * 24 * time.Hour), PublishedAt: fakeNow.Add(-3 * 24 * time.Hour), Timings: ms(75_000), LogURL: "/api/v1/sites/blog/deploys/55dd55dd55dd55dd/log"},
			{ID: "33ee33ee33ee33ee", Site: "blog", Channel: site.Production, State: site.OutcomeSuperseded,
				Commit:  api.Commit{SHA: commit('3'), Subject: "Add tags", Author: "Bo Li"},
				Created: fakeNow.Add(-3*24*time.Hour - time.Minute), LogURL: "/api/v1/sites/blog/deploys/33ee33ee33ee33ee/log"},
		},
		"docs": {
			{ID: "c0ffee00c0ffee00", Site: "docs", Channel: site.Production, State: site.OutcomeFailed,
				Commit:  api.Commit{SHA: "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f", Subject: "Use the new partial", Author: "Cy"},
				Created: fakeNow.Add(-90 * time.Second), Timings: api.Timings{Queue: 20, Fetch: 150, Build: 900, Total: 1070},
				Error: `hugo: template: _default/baseof.html:3: function "nope" not defined`, LogURL: "/api/v1/sites/docs/deploys/c0ffee00c0ffee00/log"},
		},
		"slow": {},
	}
}
