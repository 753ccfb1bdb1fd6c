package main

import (
	"context"
	"io"
	"net"
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

// TestDrainFinishesInFlight stops a server while a client is halfway
// through a 32 MiB download: the download completes whole, run returns,
// and the listener takes no new connection.
func TestDrainFinishesInFlight(t *testing.T) {
	repo := gittest.New(t, "")
	big := strings.Repeat("0123456789abcdef", 2<<20)
	repo.Write("index.html", "<h1>one</h1>")
	repo.Write("big.bin", big)
	repo.Commit("one")
	cfg := testConfig(t, t.TempDir(), "  - name: a\n    repo: "+repo.URL()+"\n    domains: [a.test]\n    build: {tool: none}\n")
	ts := startServerUntil(t, cfg, nil, serverOptions{})
	syncSite(t, ts.server, "a")

	addr := ts.httpLn.Addr().String()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/big.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "a.test"
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 1024)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { ts.stop(t); close(stopped) }()
	waitFor(t, func() bool { return ts.readiness() != nil })
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(head)+string(rest) != big {
		t.Fatalf("download cut by the shutdown: %d of %d bytes, %v", len(head)+len(rest), len(big), err)
	}
	<-stopped
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the listener still accepts connections after the drain")
	}
}
