package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestEndOnDrain: a Server-Sent Events request ends when the listeners
// start draining; any other request keeps its context.
func TestEndOnDrain(t *testing.T) {
	s := &server{}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	started := make(chan context.Context, 2)
	h := s.endOnDrain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- r.Context()
		<-r.Context().Done() // a stream: until the client or the server ends it
	}))
	plainCtx, cancelPlain := context.WithCancel(context.Background())
	defer cancelPlain()
	plain := httptest.NewRequest(http.MethodGet, "/api/v1/sites", nil).WithContext(plainCtx)
	go h.ServeHTTP(httptest.NewRecorder(), plain)
	pc := <-started

	sse := httptest.NewRequest(http.MethodGet, "/api/v1/sites/a/deploys/x/log", nil)
	sse.Header.Set("Accept", "text/plain, text/event-stream")
	done := make(chan struct{})
	go func() { h.ServeHTTP(httptest.NewRecorder(), sse); close(done) }()
	<-started
	s.endStreams()
	<-done // the stream ended; a hang here fails the test by its timeout
	if pc.Err() != nil {
		t.Error("draining ended a request that is not a stream")
	}
}

// TestStopAbandonsBuild stops a server while a real Hugo build runs (a
// template that would take minutes): run returns, the build's child is
// gone with it, nothing of the build is live, and a server started again
// on the same data serves the old deploy at once.
func TestStopAbandonsBuild(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	dataDir := t.TempDir()
	cfg := testConfig(t, dataDir, siteYAML(repo.URL()))
	ts := startServerUntil(t, cfg, nil, serverOptions{})
	syncSite(t, ts.server, "blog")
	live, err := ts.publisher.Pointer(t.Context(), "blog", site.Production)
	if err != nil {
		t.Fatal(err)
	}

	repo.Write("layouts/home.html", "{{ define \"main\" }}{{ range seq 2000 }}{{ range seq 2000 }}{{ range seq 2000 }}{{ end }}{{ end }}{{ end }}{{ end }}\n")
	repo.Commit("A home page that never finishes")
	if err := ts.loop.Trigger("blog"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		st, _ := ts.loop.SiteStatus("blog")
		return st.State == site.Progressing && strings.Count(ts.logs.String(), "msg=building") >= 2
	})
	ts.stop(t) // as SIGTERM does: the run's context ends

	again := startServer(t, testConfig(t, dataDir, siteYAML(repo.URL())), nil)
	got, err := again.publisher.Pointer(t.Context(), "blog", site.Production)
	if err != nil {
		t.Fatal(err)
	}
	if got.Deploy != live.Deploy {
		t.Errorf("live deploy %s after the stop, want %s: the abandoned build was published", got.Deploy, live.Deploy)
	}
	waitFor(t, func() bool { return strings.Contains(get(t, again, "blog.test", "/").body, "Version one") })
}
