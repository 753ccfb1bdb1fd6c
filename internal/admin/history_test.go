package admin_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// history sets blog up with a deploy replaced by d-blog-1, a build under
// way, and a failed attempt, and returns the fixture.
func historyFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	older := syncedAt.Add(-time.Hour)
	f.deploys.manifests["blog/d-blog-0"] = &manifest.Manifest{ID: "d-blog-0", Site: "blog", Commit: "0000000000000000000000000000000000000000",
		Created: older.Add(-time.Minute), Info: manifest.CommitInfo{Subject: "First post", Author: "Ada"}}
	f.deploys.pointers["blog"][site.Production] = manifest.Pointer{Deploy: "d-blog-1", Commit: "1111111111111111111111111111111111111111",
		PublishedAt: syncedAt, History: []site.DeployID{"d-blog-1", "d-blog-0"}, Since: []time.Time{syncedAt, older}}

	failed := f.journal.Start("blog", "pr-7", "3333333333333333333333333333333333333333")
	failed.Update(func(s *journal.Snapshot) { s.Deploy, s.Subject, s.Author = "d-blog-pr7", "Broken template", "Bob" })
	failed.Logf("Building with Hugo")
	failed.Logf("Failed: template error")
	failed.Finish(site.OutcomeFailed, fault.Stalled(errors.New("layouts/index.html:3:1: template error")))

	building := f.journal.Start("blog", site.Production, "4444444444444444444444444444444444444444")
	building.Update(func(s *journal.Snapshot) {
		s.Deploy, s.Subject, s.Author = "d-blog-2", "Spring cleaning", "Ada"
		s.Steps = []journal.Step{{Name: "fetch", Took: 250 * time.Millisecond}}
	})
	building.Logf("Deploying 4444444")
	t.Cleanup(func() { building.Finish(site.OutcomeLive, nil) })
	return f
}

func TestDeployHistory(t *testing.T) {
	f := historyFixture(t)
	resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys", "")
	wantStatus(t, resp, body, http.StatusOK)
	var list api.DeployList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	type row struct {
		id               string
		state            site.Outcome
		channel, subject string
	}
	var got []row
	for _, d := range list.Deploys {
		got = append(got, row{string(d.ID), d.State, string(d.Channel), d.Commit.Subject})
	}
	want := []row{
		{"d-blog-2", site.OutcomeBuilding, "production", "Spring cleaning"},
		{"d-blog-pr7", site.OutcomeFailed, "pr-7", "Broken template"},
		{"d-blog-1", site.OutcomeLive, "production", "Add the spring post"},
		{"d-blog-0", site.OutcomeReady, "production", "First post"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("history\n got %v\nwant %v", got, want)
	}
	byID := map[site.DeployID]api.Deploy{}
	for _, d := range list.Deploys {
		byID[d.ID] = d
	}
	if d := byID["d-blog-pr7"]; d.ErrorKind != fault.KindStalled {
		t.Errorf("failed deploy error_kind = %q, want stalled", d.ErrorKind)
	}
	if d := byID["d-blog-2"]; !slices.Equal(d.Steps, []api.Step{{Name: "fetch", Took: 250}}) {
		t.Errorf("building deploy steps = %v, want fetch 250 ms", d.Steps)
	}
	if d := byID["d-blog-pr7"]; d.Error != "layouts/index.html:3:1: template error" || d.URL != "" {
		t.Errorf("failed attempt: error %q, permalink %q (want the error and no permalink)", d.Error, d.URL)
	}
	if d := byID["d-blog-1"]; d.URL == "" || !slices.Equal(d.LiveOn, []site.Channel{site.Production}) ||
		d.Timings.Build != 1500 || d.Timings.Upload != 300 || d.Timings.Total != 2000 || !d.PublishedAt.Equal(syncedAt) {
		t.Errorf("live deploy = %+v; want permalink, live on production, timings from its manifest", d)
	}
	if d := byID["d-blog-2"]; d.Timings.Fetch != 250 || d.Timings.Total != f.now.Sub(d.Created).Milliseconds() || d.Timings.Total <= 0 {
		t.Errorf("building deploy timings = %+v; want fetch 250 ms and the time since it started", d.Timings)
	}

	t.Run("channel and limit", func(t *testing.T) {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys?channel=pr-7", "")
		wantStatus(t, resp, body, http.StatusOK)
		var l api.DeployList
		json.Unmarshal(body, &l) //nolint:errcheck // checked by the length
		if len(l.Deploys) != 1 || l.Deploys[0].ID != "d-blog-pr7" {
			t.Errorf("channel=pr-7: %s", body)
		}
		resp, body = f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys?limit=1", "")
		wantStatus(t, resp, body, http.StatusOK)
		json.Unmarshal(body, &l) //nolint:errcheck // checked by the length
		if len(l.Deploys) != 1 || l.Deploys[0].ID != "d-blog-2" {
			t.Errorf("limit=1: %s", body)
		}
	})
	for _, bad := range []string{"limit=0", "limit=101", "limit=x", "channel=nope"} {
		resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys?"+bad, "")
		wantStatus(t, resp, body, http.StatusBadRequest)
	}
	resp, body = f.do(t, http.MethodGet, "/api/v1/sites/nosuch/deploys", "")
	wantJSONError(t, resp, body, http.StatusNotFound, `no site named "nosuch"`)
}

func TestDeployDetailOfAttempt(t *testing.T) {
	f := historyFixture(t)
	resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/d-blog-pr7", "")
	wantStatus(t, resp, body, http.StatusOK)
	var d api.DeployDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.State != site.OutcomeFailed || d.Channel != "pr-7" || d.Commit.Author != "Bob" || d.Error == "" || d.Rules.Errors == nil {
		t.Errorf("failed attempt detail = %+v", d)
	}
	resp, body = f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/d-blog-pr7/log", "")
	wantStatus(t, resp, body, http.StatusOK)
	if got := site.Outcome(resp.Header.Get(api.LogState)); got != site.OutcomeFailed || !strings.Contains(string(body), "Failed: template error") {
		t.Errorf("log of the failed attempt: state %q, body %q", got, body)
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct{ id, name, data string }

// readEvents parses events from r until the end event or EOF.
func readEvents(t *testing.T, r io.Reader, each func(sseEvent)) []sseEvent {
	t.Helper()
	var out []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				out = append(out, ev)
				if each != nil {
					each(ev)
				}
				if ev.name == api.EventEnd {
					return out
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	return out
}

func streamReq(t *testing.T, f *fixture, path, lastID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != api.MediaSSE {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	return resp
}

// TestLogStream follows a running build: lines arrive as they are
// written, whole; the end event carries the outcome; a reconnect with
// Last-Event-ID continues exactly where the first connection stopped.
func TestLogStream(t *testing.T) {
	f := newFixture(t)
	e := f.journal.Start("blog", site.Production, "5555555555555555555555555555555555555555")
	e.Update(func(s *journal.Snapshot) { s.Deploy = "d-blog-5" })
	e.Logf("Deploying 5555555")
	path := "/api/v1/sites/blog/deploys/d-blog-5/log"

	resp := streamReq(t, f, path, "")
	var text strings.Builder
	var lastID string
	step := 0
	events := readEvents(t, resp.Body, func(ev sseEvent) {
		if ev.name != api.EventLog {
			return
		}
		var c api.LogChunk
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatal(err)
		}
		text.WriteString(c.Text)
		lastID = ev.id
		switch step++; step {
		case 1: // the line written before the client came
			e.Write([]byte("Start building sites … half"))
			e.Write([]byte(" a line\n"))
		case 2:
			e.Logf("Uploading")
			e.Logf("Live on production")
			// The pointer flip, then the end of the attempt (as the loop does).
			f.deploys.pointers["blog"][site.Production] = manifest.Pointer{Deploy: "d-blog-5", PublishedAt: syncedAt,
				History: []site.DeployID{"d-blog-5", "d-blog-1"}, Since: []time.Time{syncedAt, syncedAt.Add(-time.Hour)}}
			e.Finish(site.OutcomeLive, nil)
		}
	})
	if got, want := text.String(), "Deploying 5555555\nStart building sites … half a line\nUploading\nLive on production\n"; got != want {
		t.Errorf("streamed text %q, want %q", got, want)
	}
	if end := events[len(events)-1]; end.name != api.EventEnd || !strings.Contains(end.data, `"state":"live"`) {
		t.Errorf("last event %+v, want end with state live (the pointer names it)", end)
	}

	// Reconnect after the second event: the rest, and nothing twice.
	first := len("Deploying 5555555\n")
	resp = streamReq(t, f, path, "18")
	if first != 18 {
		t.Fatalf("test assumes the first line is 18 bytes, it is %d", first)
	}
	text.Reset()
	readEvents(t, resp.Body, func(ev sseEvent) {
		var c api.LogChunk
		json.Unmarshal([]byte(ev.data), &c) //nolint:errcheck // end events have no text
		text.WriteString(c.Text)
	})
	if got, want := text.String(), "Start building sites … half a line\nUploading\nLive on production\n"; got != want {
		t.Errorf("resumed text %q, want %q", got, want)
	}
	if lastID == "" {
		t.Error("log events carry no id")
	}

	// A finished deploy from the store streams whole, then ends.
	resp = streamReq(t, f, "/api/v1/sites/blog/deploys/d-blog-1/log", "")
	events = readEvents(t, resp.Body, nil)
	if len(events) != 2 || !strings.Contains(events[0].data, "Total in 12 ms") || !strings.Contains(events[1].data, `"state":"ready"`) {
		t.Errorf("stored log events = %+v", events)
	}
}

func TestLogStreamErrors(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/api/v1/sites/blog/deploys/d-nope/log", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantJSONError(t, resp, body, http.StatusNotFound, "no deploy d-nope of site blog")

	req.URL.Path = "/api/v1/sites/blog/deploys/d-blog-1/log"
	req.Header.Set("Last-Event-ID", "-4")
	resp, err = f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	wantJSONError(t, resp, body, http.StatusBadRequest, "Last-Event-ID")
}

func TestReadyz(t *testing.T) {
	ready := errors.New("waiting for storage: bucket unreachable")
	h := admin.New(admin.Options{Token: token, Loop: &fakeLoop{}, Deploys: &fakeDeploys{}, Ready: func() error { return ready }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func() (int, string) {
		resp, err := srv.Client().Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "bucket unreachable") {
		t.Errorf("not ready: %d %s", code, body)
	}
	ready = nil
	if code, body := get(); code != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Errorf("ready: %d %s", code, body)
	}
}

// TestDashboardSession: a browser logged in to the dashboard may read the
// API with its cookie (EventSource sends no headers) but not change
// anything with it; a cross-site form post is refused whatever it carries.
func TestDashboardSession(t *testing.T) {
	f := newFixture(t)
	client := f.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.PostForm(f.srv.URL+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "sitehost_session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("login answered %d without a session cookie", resp.StatusCode)
	}
	do := func(method, path string, header http.Header) int {
		req, _ := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, nil)
		req.AddCookie(cookie)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(http.MethodGet, "/api/v1/sites", nil); code != http.StatusOK {
		t.Errorf("GET with the session cookie: %d", code)
	}
	if code := do(http.MethodPost, "/api/v1/sites/blog/sync", nil); code != http.StatusUnauthorized {
		t.Errorf("POST with only the session cookie: %d, want 401", code)
	}
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Authorization": {"Bearer " + token}}
	if code := do(http.MethodPost, "/api/v1/sites/blog/sync", cross); code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", code)
	}
	if trig, _ := f.loop.calls(); len(trig) != 0 {
		t.Errorf("refused requests triggered %v", trig)
	}
}

func TestMetricsMounted(t *testing.T) {
	h := admin.New(admin.Options{Token: token, Loop: &fakeLoop{statuses: []reconcile.Status{{Site: "blog"}}}, Deploys: &fakeDeploys{},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "sitehost_up 1\n") }), //nolint:errcheck // client gone
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "sitehost_up 1\n" {
		t.Errorf("/metrics: %d %q", rec.Code, rec.Body)
	}
}

// TestRefusedDeployWithManifest: an attempt that uploaded its deploy but
// was not published (rules.strict, a newer commit) is failed everywhere —
// list, detail, log state, stream end — not "ready" for having a manifest.
func TestRefusedDeployWithManifest(t *testing.T) {
	f := newFixture(t)
	f.deploys.manifests["blog/d-blog-strict"] = &manifest.Manifest{ID: "d-blog-strict", Site: "blog", Commit: "6666666666666666666666666666666666666666"}
	e := f.journal.Start("blog", site.Production, "6666666666666666666666666666666666666666")
	e.Update(func(s *journal.Snapshot) { s.Deploy = "d-blog-strict" })
	e.Logf("Failed: rule errors (rules.strict is on)")
	e.Finish(site.OutcomeFailed, fault.Stalled(errors.New("rule errors (rules.strict is on): 1 in deploy d-blog-strict")))

	var d api.DeployDetail
	resp, body := f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/d-blog-strict", "")
	wantStatus(t, resp, body, http.StatusOK)
	json.Unmarshal(body, &d) //nolint:errcheck // checked by the fields
	if d.State != site.OutcomeFailed || d.Error == "" || d.URL != "" {
		t.Errorf("detail: state %q, error %q, permalink %q; want failed, the error, no permalink", d.State, d.Error, d.URL)
	}
	resp, body = f.do(t, http.MethodGet, "/api/v1/sites/blog/deploys/d-blog-strict/log", "")
	if got := site.Outcome(resp.Header.Get(api.LogState)); got != site.OutcomeFailed {
		t.Errorf("log state %q, want failed (%s)", got, body)
	}
	events := readEvents(t, streamReq(t, f, "/api/v1/sites/blog/deploys/d-blog-strict/log", "").Body, nil)
	if end := events[len(events)-1]; !strings.Contains(end.data, `"state":"failed"`) || !strings.Contains(end.data, "rules.strict") {
		t.Errorf("stream end %+v, want failed with the error", end)
	}
}
