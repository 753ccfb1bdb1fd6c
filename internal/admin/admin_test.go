package admin_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/rules"
	"github.com/sitehost/sitehost/internal/site"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const token = "admin-token-0123456789abcdef012345"

// The real loop must satisfy the consumer-side interface.
var _ admin.Loop = (*reconcile.Loop)(nil)

var (
	syncedAt = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	created  = time.Date(2025, 3, 14, 15, 8, 0, 0, time.UTC)
)

// fakeLoop serves fixed statuses and records triggers and syncs.
type fakeLoop struct {
	statuses []reconcile.Status

	mu        sync.Mutex
	triggered []site.Name
	synced    []site.Name
}

func (l *fakeLoop) Status() []reconcile.Status { return slices.Clone(l.statuses) }

func (l *fakeLoop) SiteStatus(name site.Name) (reconcile.Status, bool) {
	for _, st := range l.statuses {
		if st.Site == name {
			return st, true
		}
	}
	return reconcile.Status{}, false
}

func (l *fakeLoop) Trigger(name site.Name) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.SiteStatus(name); !ok {
		return fmt.Errorf("%w %q", reconcile.ErrUnknownSite, name)
	}
	l.triggered = append(l.triggered, name)
	return nil
}

func (l *fakeLoop) Sync(_ context.Context, name site.Name) (reconcile.Status, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.SiteStatus(name)
	if !ok {
		return reconcile.Status{}, fmt.Errorf("%w %q", reconcile.ErrUnknownSite, name)
	}
	l.synced = append(l.synced, name)
	st.Builds++
	return st, nil
}

func (l *fakeLoop) calls() (triggered, synced []site.Name) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.triggered), slices.Clone(l.synced)
}

// stepClock starts at t and moves one second per reading.
func stepClock(t time.Time) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// errStorage is a storage failure that is not "not found".
var errStorage = errors.New("bucket unreachable")

// fakeDeploys holds manifests and logs of "site/id"; the deploy "broken"
// of any site fails with errStorage.
type fakeDeploys struct {
	manifests map[string]*manifest.Manifest
	logs      map[string][]byte
	pointers  map[site.Name]map[site.Channel]manifest.Pointer
}

func (d *fakeDeploys) Channels(_ context.Context, s site.Name) (map[site.Channel]manifest.Pointer, error) {
	if s == "broken" {
		return nil, errStorage
	}
	return d.pointers[s], nil
}

func (d *fakeDeploys) Pointer(_ context.Context, s site.Name, c site.Channel) (manifest.Pointer, error) {
	if s == "broken" {
		return manifest.Pointer{}, errStorage
	}
	ptr, ok := d.pointers[s][c]
	if !ok {
		return manifest.Pointer{}, manifest.ErrNotFound
	}
	return ptr, nil
}

func (d *fakeDeploys) Manifest(_ context.Context, s site.Name, id site.DeployID) (*manifest.Manifest, error) {
	if id == "broken" {
		return nil, fmt.Errorf("reading manifest: %w", errStorage)
	}
	m, ok := d.manifests[string(s)+"/"+string(id)]
	if !ok {
		return nil, fmt.Errorf("manifest %s/%s: %w", s, id, manifest.ErrNotFound)
	}
	return m, nil // shared, as a caching implementation would return it
}

func (d *fakeDeploys) Log(_ context.Context, s site.Name, id site.DeployID) ([]byte, error) {
	if id == "broken" {
		return nil, fmt.Errorf("reading log: %w", errStorage)
	}
	l, ok := d.logs[string(s)+"/"+string(id)]
	if !ok {
		return nil, fmt.Errorf("log %s/%s: %w", s, id, manifest.ErrNotFound)
	}
	return l, nil
}

// hookRecorder is a webhook handler that records what reached it.
type hookRecorder struct {
	mu     sync.Mutex
	bodies []string
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.bodies = append(h.bodies, r.Method+" "+r.URL.Path+" "+string(b))
	h.mu.Unlock()
	w.WriteHeader(http.StatusTeapot)
}

func (h *hookRecorder) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies)
}

type fixture struct {
	srv     *httptest.Server
	loop    *fakeLoop
	deploys *fakeDeploys
	hook    *hookRecorder
	journal *journal.Journal
	now     time.Time
}

// newFixture serves the fake loop and store; with changes applied to its
// options.
func newFixture(t *testing.T, change ...func(*admin.Options)) *fixture {
	t.Helper()
	f := &fixture{
		loop: &fakeLoop{statuses: []reconcile.Status{
			{
				Site: "blog", State: site.Synced,
				Desired: "1111111111111111111111111111111111111111", LiveCommit: "1111111111111111111111111111111111111111",
				LiveDeploy: "d-blog-1", LastSync: syncedAt, Builds: 3, Reused: 1,
			},
			{
				Site: "docs", State: site.Failed,
				Desired: "2222222222222222222222222222222222222222", Error: "hugo: template error",
				FailedAt: "2222222222222222222222222222222222222222", LastSync: syncedAt,
			},
		}},
		deploys: &fakeDeploys{
			manifests: map[string]*manifest.Manifest{
				"blog/d-blog-1": {
					ID: "d-blog-1", Site: "blog", Commit: "1111111111111111111111111111111111111111",
					Created: created, Bytes: 42,
					Info:  manifest.CommitInfo{Subject: "Add the spring post", Author: "Ada", Time: created.Add(-time.Hour)},
					Build: manifest.BuildSummary{Tool: "hugo", Duration: 1500 * time.Millisecond, Upload: 300 * time.Millisecond, Fetch: 200 * time.Millisecond},
					Files: map[string]manifest.File{"index.html": {}, "posts/a/index.html": {}, "css/site.css": {}},
					Rules: rules.Set{
						Redirects: []rules.Redirect{{From: "/old-index", To: "/", Status: 301}, {From: "/b", To: "/c", Status: 302}},
						Errors:    []rules.Error{{File: "_redirects", Line: 3, Message: "Missing destination"}},
					},
				},
			},
			logs: map[string][]byte{"blog/d-blog-1": []byte("Start building sites …\nTotal in 12 ms\n")},
			pointers: map[site.Name]map[site.Channel]manifest.Pointer{
				"blog": {site.Production: {Deploy: "d-blog-1", Commit: "1111111111111111111111111111111111111111", PublishedAt: syncedAt,
					History: []site.DeployID{"d-blog-1"}, Since: []time.Time{syncedAt}}},
			},
		},
		hook:    &hookRecorder{},
		journal: journal.New(journal.Options{Now: stepClock(syncedAt)}),
		now:     syncedAt.Add(time.Minute),
	}
	opts := admin.Options{
		Token: token,
		Sites: []admin.SiteInfo{
			{Name: "blog", Repo: "https://github.com/acme/blog.git", Ref: "main",
				Domains: []string{"blog.example.com", "www.blog.example.com"}, URL: "https://blog.example.com/"},
			{Name: "docs", Repo: "git@github.com:acme/platform.git", Ref: "main"},
		},
		Loop:    f.loop,
		Deploys: f.deploys,
		Journal: f.journal,
		Hooks:   map[string]http.Handler{"generic": f.hook},
		Logger:  slog.New(slog.DiscardHandler),
		Permalink: func(s site.Name, id site.DeployID) string {
			return "http://" + string(id) + "--" + string(s) + ".localhost:8080/"
		},
		Now: func() time.Time { return f.now },
	}
	for _, c := range change {
		c(&opts)
	}
	f.srv = httptest.NewServer(admin.New(opts))
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request with the admin token unless auth says otherwise ("-"
// sends no Authorization), and returns the response with its body read.
func (f *fixture) do(t *testing.T, method, path, auth string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch auth {
	case "":
		req.Header.Set("Authorization", "Bearer "+token)
	case "-":
	default:
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// wantStatus checks the status code.
func wantStatus(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s %s: status = %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
}

// wantJSONError checks a {"error": "..."} answer containing msg.
func wantJSONError(t *testing.T, resp *http.Response, body []byte, status int, msg string) {
	t.Helper()
	wantStatus(t, resp, body, status)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e map[string]string
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %q is not a JSON object of strings: %v", body, err)
	}
	if len(e) != 1 || !strings.Contains(e["error"], msg) {
		t.Errorf("body = %v, want only an \"error\" containing %q", e, msg)
	}
}

func TestAuth(t *testing.T) {
	// Every wrong token here is answered 401, none limited.
	f := newFixture(t, func(o *admin.Options) { o.Guard = bearer.New(bearer.Options{Token: token, Burst: 1000}) })
	routes := []struct{ method, path string }{
		{http.MethodGet, "/api/v1/sites"},
		{http.MethodGet, "/api/v1/sites/blog"},
		{http.MethodPost, "/api/v1/sites/blog/sync"},
		{http.MethodPost, "/api/v1/sites/blog/sync?wait=true"},
		{http.MethodGet, "/api/v1/sites/blog/deploys/d-blog-1"},
		{http.MethodGet, "/api/v1/sites/blog/deploys/d-blog-1/log"},
	}
	auths := []struct{ name, header string }{
		{"no token", "-"},
		{"wrong token", "Bearer wrong"},
		{"basic scheme", "Basic " + token},
		{"empty bearer", "Bearer "},
	}
	for _, rt := range routes {
		for _, a := range auths {
			t.Run(rt.method+" "+rt.path+"/"+a.name, func(t *testing.T) {
				resp, body := f.do(t, rt.method, rt.path, a.header)
				wantJSONError(t, resp, body, http.StatusUnauthorized, "bearer token")
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="sitehost"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			})
		}
	}
	if trig, synced := f.loop.calls(); len(trig)+len(synced) > 0 {
		t.Errorf("unauthorized requests reached the loop: triggered %q, synced %q", trig, synced)
	}
}

// TestAuthSchemeCase: the Bearer scheme is case-insensitive (RFC 9110
// §11.1), as curl users and some clients send it.
func TestAuthSchemeCase(t *testing.T) {
	f := newFixture(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites", scheme+" "+token)
		wantStatus(t, resp, body, http.StatusOK)
	}
}

// TestWrongTokensSlowed: after five wrong tokens from one address the API
// answers 429 with Retry-After, even to the right token, without
// reaching the handler; one more try is earned each second. The failures
// are reported for the metrics.
func TestWrongTokensSlowed(t *testing.T) {
	var mu sync.Mutex
	at := syncedAt
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
	var reasons []string
	f := newFixture(t, func(o *admin.Options) {
		o.Guard = bearer.New(bearer.Options{Token: token, Now: now, OnFailure: func(r string) {
			mu.Lock()
			defer mu.Unlock()
			reasons = append(reasons, r)
		}})
	})
	for i := range 5 {
		resp, body := f.do(t, http.MethodPost, "/api/v1/sites/blog/sync", "Bearer guess")
		wantJSONError(t, resp, body, http.StatusUnauthorized, "bearer token")
		if t.Failed() {
			t.Fatalf("wrong token %d", i+1)
		}
	}
	resp, body := f.do(t, http.MethodPost, "/api/v1/sites/blog/sync", "")
	wantJSONError(t, resp, body, http.StatusTooManyRequests, "too many wrong tokens")
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if trig, _ := f.loop.calls(); len(trig) != 0 {
		t.Errorf("a limited request reached the loop: %q", trig)
	}
	// No token at all is not a guess: 401 as before, not counted.
	resp, body = f.do(t, http.MethodGet, "/api/v1/sites", "-")
	wantJSONError(t, resp, body, http.StatusUnauthorized, "bearer token")

	mu.Lock()
	at = at.Add(time.Second)
	mu.Unlock()
	resp, body = f.do(t, http.MethodPost, "/api/v1/sites/blog/sync", "")
	wantStatus(t, resp, body, http.StatusAccepted)

	mu.Lock()
	defer mu.Unlock()
	want := []string{"wrong_token", "wrong_token", "wrong_token", "wrong_token", "wrong_token", "rate_limited"}
	if !slices.Equal(reasons, want) {
		t.Errorf("failures reported %q, want %q", reasons, want)
	}
}

func TestListSites(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do(t, http.MethodGet, "/api/v1/sites", "")
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	golden(t, filepath.Join("testdata", "sites.golden.json"), body)
}

func TestGetSite(t *testing.T) {
	f := newFixture(t)
	t.Run("known", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/docs", "")
		wantStatus(t, resp, body, http.StatusOK)
		var got api.Site
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Name != "docs" || got.Repo != "git@github.com:acme/platform.git" || got.State != site.Failed ||
			got.Error != "hugo: template error" || len(got.Channels) != 1 || got.Channels[0].Name != site.Production {
			t.Errorf("got %+v", got)
		}
		if got.Domains == nil || len(got.Domains) != 0 {
			t.Errorf("domains = %#v, want [] (not null)", got.Domains)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/nosuch", "")
		wantJSONError(t, resp, body, http.StatusNotFound, `no site named "nosuch"`)
	})
}

func TestSync(t *testing.T) {
	tests := []struct {
		name, path  string
		status      int
		msgKey, msg string
		triggered   []site.Name
		synced      []site.Name
	}{
		{name: "request", path: "/api/v1/sites/blog/sync", status: http.StatusAccepted,
			msgKey: "message", msg: "sync of blog requested", triggered: []site.Name{"blog"}},
		{name: "request unknown", path: "/api/v1/sites/nosuch/sync", status: http.StatusNotFound,
			msgKey: "error", msg: `no site named "nosuch"`},
		{name: "wait", path: "/api/v1/sites/blog/sync?wait=true", status: http.StatusOK, synced: []site.Name{"blog"}},
		{name: "wait unknown", path: "/api/v1/sites/nosuch/sync?wait=true", status: http.StatusNotFound,
			msgKey: "error", msg: `no site named "nosuch"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			resp, body := f.do(t, http.MethodPost, tt.path, "")
			wantStatus(t, resp, body, tt.status)
			if tt.msgKey != "" {
				var m map[string]string
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if !strings.Contains(m[tt.msgKey], tt.msg) {
					t.Errorf("body = %v, want %q containing %q", m, tt.msgKey, tt.msg)
				}
			} else {
				var got api.Site
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if got.Name != "blog" || got.Builds != 4 {
					t.Errorf("got %+v, want blog's status after one more build", got)
				}
			}
			trig, synced := f.loop.calls()
			if !slices.Equal(trig, tt.triggered) || !slices.Equal(synced, tt.synced) {
				t.Errorf("triggered %q, synced %q; want %q, %q", trig, synced, tt.triggered, tt.synced)
			}
		})
	}
}

func TestGetDeploy(t *testing.T) {
	f := newFixture(t)
	t.Run("found", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/d-blog-1", "")
		wantStatus(t, resp, body, http.StatusOK)
		var got api.DeployDetail
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		if got.Files != 3 || got.Bytes != 42 || got.ID != "d-blog-1" || got.State != site.OutcomeLive ||
			!slices.Equal(got.LiveOn, []site.Channel{site.Production}) || got.Channel != site.Production {
			t.Errorf("got %+v; want the live deploy with 3 files", got)
		}
		if r := got.Rules; r.Redirects != 2 || r.Headers != 0 || len(r.Errors) != 1 || r.Errors[0].Line != 3 || r.Errors[0].Source != "_redirects" {
			t.Errorf("rules = %+v; want 2 redirects counted and the error at _redirects:3", r)
		}
		if bytes.Contains(body, []byte("old-index")) {
			t.Errorf("body lists the rules: %s", body)
		}
		if got.URL != "http://d-blog-1--blog.localhost:8080/" || got.LogURL != "/api/v1/sites/blog/deploys/d-blog-1/log" {
			t.Errorf("links: url %q, log_url %q", got.URL, got.LogURL)
		}
		if bytes.Contains(body, []byte("index.html")) {
			t.Errorf("body lists files: %s", body)
		}
		// The handler must not have changed the stored manifest.
		if n := len(f.deploys.manifests["blog/d-blog-1"].Files); n != 3 {
			t.Errorf("stored manifest has %d files after the request, want 3", n)
		}
	})
	t.Run("not found", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/d-nope", "")
		wantJSONError(t, resp, body, http.StatusNotFound, "no deploy d-nope of site blog")
	})
	t.Run("unknown site", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/nosuch/deploys/d-blog-1", "")
		wantJSONError(t, resp, body, http.StatusNotFound, `no site named "nosuch"`)
	})
	t.Run("storage error", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/broken", "")
		wantJSONError(t, resp, body, http.StatusServiceUnavailable, "storage unavailable")
		if bytes.Contains(body, []byte(errStorage.Error())) {
			t.Errorf("body leaks the storage error: %s", body)
		}
	})
}

func TestGetLog(t *testing.T) {
	f := newFixture(t)
	t.Run("found", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/d-blog-1/log", "")
		wantStatus(t, resp, body, http.StatusOK)
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type = %q, want text/plain; charset=utf-8", ct)
		}
		if want := f.deploys.logs["blog/d-blog-1"]; !bytes.Equal(body, want) {
			t.Errorf("body = %q, want %q", body, want)
		}
	})
	t.Run("not found", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/d-nope/log", "")
		wantJSONError(t, resp, body, http.StatusNotFound, "no deploy d-nope of site blog")
	})
	t.Run("storage error", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/broken/log", "")
		wantJSONError(t, resp, body, http.StatusServiceUnavailable, "storage unavailable")
	})
}

func TestHealthz(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do(t, http.MethodGet, "/healthz", "-")
	wantStatus(t, resp, body, http.StatusOK)
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil || got["status"] != "ok" {
		t.Errorf("body = %s (%v), want {\"status\": \"ok\"}", body, err)
	}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
		msg                string
	}{
		{"unknown hook", http.MethodPost, "/hooks/nope", http.StatusNotFound, "no such webhook endpoint: /hooks/nope"},
		{"unknown api path", http.MethodGet, "/api/v1/nope", http.StatusNotFound, "no such endpoint: /api/v1/nope"},
		{"wrong method", http.MethodDelete, "/api/v1/sites", http.StatusMethodNotAllowed, "DELETE not allowed on /api/v1/sites"},
		{"wrong method on sync", http.MethodGet, "/api/v1/sites/blog/sync", http.StatusMethodNotAllowed, "GET not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			resp, body := f.do(t, tt.method, tt.path, "")
			wantJSONError(t, resp, body, tt.status, tt.msg)
		})
	}
}

func TestHooksMounted(t *testing.T) {
	f := newFixture(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+"/hooks/generic", strings.NewReader(`{"site": "blog"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("status = %d, want the hook's own %d", resp.StatusCode, http.StatusTeapot)
	}
	want := []string{`POST /hooks/generic {"site": "blog"}`}
	if got := f.hook.got(); !slices.Equal(got, want) {
		t.Errorf("hook received %q, want %q", got, want)
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// A nil Logger must not turn a storage error into a panic.
func TestNilLogger(t *testing.T) {
	loop := &fakeLoop{statuses: []reconcile.Status{{Site: "blog"}}}
	srv := httptest.NewServer(admin.New(admin.Options{Token: token, Loop: loop, Deploys: &fakeDeploys{}}))
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/sites/blog/deploys/broken", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	wantJSONError(t, resp, body, http.StatusServiceUnavailable, "storage unavailable")
}

// TestRoutes: Routes names every path the listener answers, with the
// access each really asks for: a token route refuses a request without
// one, an open route answers it.
func TestRoutes(t *testing.T) {
	f := newFixture(t, func(o *admin.Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("up 1\n")) }) //nolint:errcheck // test
		o.Config = func() api.Config { return api.Config{} }
	})
	h := admin.New(admin.Options{Token: token, Loop: &fakeLoop{}, Deploys: &fakeDeploys{},
		Metrics: http.NotFoundHandler(), Hooks: map[string]http.Handler{"generic": http.NotFoundHandler(), "github": http.NotFoundHandler()}})
	var got []string
	for _, r := range h.Routes() {
		got = append(got, string(r.Access)+" "+r.String())
	}
	for _, w := range []string{
		"token GET /", "token GET /api/v1/sites", "token GET /api/v1/sites/{site}", "token POST /api/v1/sites/{site}/sync",
		"token GET /api/v1/sites/{site}/deploys", "token GET /api/v1/sites/{site}/deploys/{id}", "token GET /api/v1/sites/{site}/deploys/{id}/log",
		"open GET /assets/{file}", "open /healthz", "webhook /hooks/generic", "webhook /hooks/github",
		"open GET /login", "open POST /login", "open POST /logout", "open /metrics", "open /readyz",
		"token GET /sites/{site}", "token GET /sites/{site}/deploys/{id}", "token POST /sites/{site}/sync",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("Routes lacks %q; got %q", w, got)
		}
	}

	// Each route of the fixture, without credentials.
	fill := strings.NewReplacer("{site}", "blog", "{id}", "d-blog-1", "{file}", "dashboard.css")
	for _, r := range f.srv.Config.Handler.(*admin.Handler).Routes() {
		if r.Access == admin.Webhook {
			continue
		}
		method := cmp.Or(r.Method, http.MethodGet)
		t.Run(r.String(), func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+fill.Replace(r.Path), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Requested-With", "test") // the dashboard answers 401, not a redirect to the login form
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			// (POST /login answers 401 to a wrong token, but asks for none.)
			if refused := resp.Header.Get("WWW-Authenticate") != ""; refused != (r.Access == admin.Token) {
				t.Errorf("without credentials: %d, WWW-Authenticate %q; Routes says %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), r.Access)
			}
		})
	}
}
