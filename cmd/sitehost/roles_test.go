package main

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// TestRolesShareABucket runs an edge and a builder on one store: the
// builder binds no data plane and builds; the edge, with an empty disk,
// serves what the builder published, hands its webhooks and syncs to the
// builder through request markers, answers the API from the pointers, and
// never builds.
func TestRolesShareABucket(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "<h1>one</h1>")
	repo.Commit("one")
	storePath := filepath.Join(t.TempDir(), "store")
	sites := "  - name: a\n    repo: " + repo.URL() + "\n    domains: [a.test]\n    build: {tool: none}\n"
	storage := "  storage: {kind: fs, path: " + storePath + "}\n"
	builder := startServerWith(t, testConfig(t, t.TempDir(), sites, storage), nil, serverOptions{Role: "builder"})
	// The flag wins over the file.
	edge := startServerWith(t, testConfig(t, t.TempDir(), sites, storage, "  role: builder\n"), nil, serverOptions{Role: "edge"})
	if builder.httpLn != nil || builder.httpsLn != nil {
		t.Error("the builder bound a data plane listener")
	}
	if edge.cfg.Server.Role != "edge" {
		t.Errorf("edge role = %q: --role did not win over server.role", edge.cfg.Server.Role)
	}
	waitFor(t, func() bool { return get(t, edge, "a.test", "/").body == "<h1>one</h1>" })

	repo.Write("index.html", "<h1>two</h1>")
	two := site.Commit(repo.Commit("two"))
	sent := time.Now()
	if code := postJSON(t, "http://"+edge.adminLn.Addr().String()+"/hooks/generic", testToken, `{"site":"a"}`); code != http.StatusAccepted {
		t.Fatalf("webhook on the edge: %d, want 202", code)
	}
	waitFor(t, func() bool { return get(t, edge, "a.test", "/").body == "<h1>two</h1>" })
	t.Logf("webhook on the edge to the new commit served by it: %v (marker poll 1s, pointer TTL 2s)", time.Since(sent).Round(time.Millisecond))

	// A sync on the edge is a marker; waited for, it returns once the
	// builder has taken it.
	syncURL := "http://" + edge.adminLn.Addr().String() + "/api/v1/sites/a/sync"
	if code := postJSON(t, syncURL, testToken, ""); code != http.StatusAccepted {
		t.Fatalf("sync on the edge: %d, want 202", code)
	}
	if code := postJSON(t, syncURL+"?wait=true", testToken, ""); code != http.StatusOK {
		t.Fatalf("sync?wait=true on the edge: %d, want 200", code)
	}
	var st api.Site
	apiGet(t, edge, "/api/v1/sites/a", testToken, http.StatusOK, &st)
	if st.LiveCommit != two || st.State != site.Synced {
		t.Errorf("edge API: live %s state %s, want %s Synced", st.LiveCommit, st.State, two)
	}
	if _, err := builder.loop.Settle(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if n := edge.loop.Builds(); n != 0 {
		t.Errorf("the edge built %d times", n)
	}
	if n := builder.loop.Builds(); n != 2 {
		t.Errorf("the builder built %d times, want 2 (one per commit)", n)
	}
	st2, err := fsstore.New(storePath)
	if err != nil {
		t.Fatal(err)
	}
	for info, err := range st2.List(t.Context(), reconcile.RequestPrefix) {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("marker %s left behind", info.Key)
	}
	// A bad --role is refused before anything starts.
	if _, err := parseServeArgs([]string{"--role", "worker"}, &syncBuffer{}); err == nil {
		t.Error("--role worker accepted")
	}
}

// TestEdgePullRequestPreview: a signed GitHub pull_request webhook
// delivered to an edge reaches the builder with what a preview needs (the
// number, the head's ref, the forge) through the bucket; the edge serves
// the preview and, once the pull request is closed, stops.
func TestEdgePullRequestPreview(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "<h1>production</h1>")
	repo.Commit("one")
	storage := "  storage: {kind: fs, path: " + filepath.Join(t.TempDir(), "store") + "}\n"
	sites := "  - name: a\n    repo: " + repo.URL() + "\n    domains: [a.test]\n    build: {tool: none}\n    webhook: { secret_env: TEST_HOOK_SECRET }\n"
	env := map[string]string{"TEST_HOOK_SECRET": testHookSecret}
	builder := startServerWith(t, testConfig(t, t.TempDir(), sites, storage), env, serverOptions{Role: "builder"})
	edge := startServerWith(t, testConfig(t, t.TempDir(), sites, storage), env, serverOptions{Role: "edge"})
	waitFor(t, func() bool { return get(t, edge, "a.test", "/").status == http.StatusOK })

	host := "pr-7--a.localhost"
	head := pushPR(repo, 7, "index.html", "<h1>preview seven</h1>")
	if code := sendGitHub(t, edge, "pull_request", githubPayload(t, "pull_request.opened.json", repo.URL(), 7, head)); code != http.StatusAccepted {
		t.Fatalf("opened webhook on the edge: %d, want 202", code)
	}
	waitFor(t, func() bool { return get(t, edge, host, "/").body == "<h1>preview seven</h1>" })
	if code := sendGitHub(t, edge, "pull_request", githubPayload(t, "pull_request.closed.json", repo.URL(), 7, head)); code != http.StatusAccepted {
		t.Fatalf("closed webhook on the edge: %d, want 202", code)
	}
	waitFor(t, func() bool { return get(t, edge, host, "/").status == http.StatusNotFound })
	if body := get(t, edge, "a.test", "/").body; body != "<h1>production</h1>" {
		t.Errorf("production changed by a preview: %q", body)
	}
	if n := edge.loop.Builds(); n != 0 {
		t.Errorf("the edge built %d times", n)
	}
	if n := builder.loop.Builds(); n != 2 {
		t.Errorf("the builder built %d times, want 2 (production, the preview)", n)
	}
}
