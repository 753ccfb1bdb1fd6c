package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
)

const testHookSecret = "hook-secret-for-tests"

// githubPayload is a real GitHub pull_request payload from
// testdata/webhooks, pointed at our repository, PR number and head commit.
func githubPayload(t *testing.T, file, repoURL string, pr int, head string) []byte {
	t.Helper()
	body, err := os.ReadFile("../../testdata/webhooks/github/" + file)
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{
		"https://github.com/Codertocat/Hello-World.git", "git@github.com:Codertocat/Hello-World.git",
		"git://github.com/Codertocat/Hello-World.git", `"https://github.com/Codertocat/Hello-World"`,
	} {
		repl := repoURL
		if strings.HasPrefix(old, `"`) {
			repl = `"` + repoURL + `"`
		}
		body = bytes.ReplaceAll(body, []byte(old), []byte(repl))
	}
	body = bytes.ReplaceAll(body, []byte(`"number": 2`), []byte(fmt.Sprintf(`"number": %d`, pr)))
	for _, sha := range []string{"ec26c3e57ca3a959ca5aad62de7213c562f8c821", "34c5c7793cb3b279e22454cb6750c80560547b3a"} {
		body = bytes.ReplaceAll(body, []byte(sha), []byte(head))
	}
	return body
}

// sendGitHub delivers a signed GitHub webhook to the admin listener.
func sendGitHub(t *testing.T, srv *server, event string, body []byte) int {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(testHookSecret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.adminLn.Addr().String()+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("delivery-%x", sha256.Sum256(body)))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pushPR pushes a change to refs/pull/n/head, as GitHub does for a pull
// request, and returns its commit.
func pushPR(repo *gittest.Repo, n int, file, content string) string {
	repo.Git(repo.Work, "checkout", "-q", "-B", "feature")
	repo.Write(file, content)
	repo.Git(repo.Work, "commit", "-qam", "Preview change")
	repo.Git(repo.Work, "push", "-q", "-f", "origin", fmt.Sprintf("HEAD:refs/pull/%d/head", n))
	sha := repo.Git(repo.Work, "rev-parse", "HEAD")
	repo.Git(repo.Work, "checkout", "-q", "main")
	return sha
}

// TestPullRequestPreview: a GitHub pull_request webhook makes a live
// preview on its own host and base URL; synchronize updates it; closed
// removes it; production never moves.
func TestPullRequestPreview(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	cfg := testConfig(t, t.TempDir(), `  - name: blog
    repo: `+repo.URL()+`
    domains: [blog.test]
    webhook: { secret_env: TEST_HOOK_SECRET }
`)
	srv := startServer(t, cfg, map[string]string{"TEST_HOOK_SECRET": testHookSecret})
	syncSite(t, srv, "blog")
	prod, _ := srv.loop.SiteStatus("blog")
	port := portOf(srv.httpLn.Addr())
	host := "pr-7--blog.localhost"

	if r := get(t, srv, host, "/"); r.status != 404 {
		t.Fatalf("preview host before the pull request: %d, want 404", r.status)
	}
	head := pushPR(repo, 7, "content/_index.md", "---\ntitle: Home\n---\nPreview of pull request seven.\n")
	if code := sendGitHub(t, srv, "pull_request", githubPayload(t, "pull_request.opened.json", repo.URL(), 7, head)); code != http.StatusAccepted {
		t.Fatalf("opened webhook: %d, want 202", code)
	}
	waitFor(t, func() bool { return strings.Contains(get(t, srv, host, "/").body, "Preview of pull request seven") })
	r := get(t, srv, host, "/")
	if r.header.Get("X-Robots-Tag") != "noindex" {
		t.Errorf("preview without X-Robots-Tag: noindex")
	}
	if !strings.Contains(r.body, "base=http://"+host+":"+port+"/") {
		t.Errorf("preview links do not use its own base URL: %q", r.body)
	}
	if body := get(t, srv, "blog.test", "/").body; !strings.Contains(body, "Version one") {
		t.Errorf("production changed by a preview: %q", body)
	}

	// synchronize: a second push to the pull request updates the preview.
	head2 := pushPR(repo, 7, "content/_index.md", "---\ntitle: Home\n---\nSecond preview of seven.\n")
	if code := sendGitHub(t, srv, "pull_request", githubPayload(t, "pull_request.synchronize.json", repo.URL(), 7, head2)); code != http.StatusAccepted {
		t.Fatalf("synchronize webhook: %d, want 202", code)
	}
	waitFor(t, func() bool { return strings.Contains(get(t, srv, host, "/").body, "Second preview of seven") })

	// A repeated delivery is ignored.
	if code := sendGitHub(t, srv, "pull_request", githubPayload(t, "pull_request.synchronize.json", repo.URL(), 7, head2)); code != http.StatusOK {
		t.Errorf("repeated delivery: %d, want 200", code)
	}

	// closed: the preview is removed, its host answers 404.
	if code := sendGitHub(t, srv, "pull_request", githubPayload(t, "pull_request.closed.json", repo.URL(), 7, head2)); code != http.StatusAccepted {
		t.Fatalf("closed webhook: %d, want 202", code)
	}
	waitFor(t, func() bool { return get(t, srv, host, "/").status == 404 })

	st, _ := srv.loop.SiteStatus("blog")
	if st.LiveDeploy != prod.LiveDeploy || st.LiveCommit != prod.LiveCommit {
		t.Errorf("production moved during the preview's life: %s@%s, want %s@%s", st.LiveDeploy, st.LiveCommit, prod.LiveDeploy, prod.LiveCommit)
	}
	if body := get(t, srv, "blog.test", "/").body; !strings.Contains(body, "Version one") {
		t.Errorf("production content changed: %q", body)
	}

	// A webhook signed with another secret is refused.
	body := githubPayload(t, "pull_request.opened.json", repo.URL(), 8, head)
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.adminLn.Addr().String()+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad signature: %d, want 401", resp.StatusCode)
	}
}

// TestControlHost: the public listener hands control_host to the admin
// handler, so forges can reach /hooks/… from outside; other hosts are sites.
func TestControlHost(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	cfg := testConfig(t, t.TempDir(), `  - name: blog
    repo: `+repo.URL()+`
    domains: [blog.test]
    webhook: { secret_env: TEST_HOOK_SECRET }
`)
	cfg.Server.ControlHost = "hooks.example.test"
	srv := startServer(t, cfg, map[string]string{"TEST_HOOK_SECRET": testHookSecret})
	if r := get(t, srv, "Hooks.Example.Test:443", "/healthz"); r.status != 200 || !strings.Contains(r.body, "ok") {
		t.Errorf("control host /healthz: %d %q", r.status, r.body)
	}
	if r := get(t, srv, "hooks.example.test", "/hooks/github"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("control host GET /hooks/github: %d, want 405 from the webhook handler", r.status)
	}
	if r := get(t, srv, "blog.test", "/healthz"); r.status != 404 {
		t.Errorf("a site host must not reach the admin handler: %d", r.status)
	}
	// Metrics need no token, so they are not on the public control host;
	// the dashboard is, behind its login.
	if r := get(t, srv, "hooks.example.test", "/metrics"); r.status != 404 || strings.Contains(r.body, "sitehost_") {
		t.Errorf("control host /metrics: %d", r.status)
	}
	if r := get(t, srv, "hooks.example.test", "/"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Errorf("control host dashboard without a session: %d %q, want 303 to /login", r.status, r.header.Get("Location"))
	}
}
