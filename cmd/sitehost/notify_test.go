package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/notify"
)

// receiver collects notifications, checking each signature.
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	events []map[string]string
	texts  []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.secret != nil && !notify.Verify(rc.secret, body, r.Header.Get(notify.SignatureHeader)) {
		rc.t.Errorf("bad signature on %s", body)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m map[string]any
	json.Unmarshal(body, &m) //nolint:errcheck // checked by what the test finds
	if text, ok := m["text"].(string); ok {
		rc.texts = append(rc.texts, text)
		return
	}
	e := map[string]string{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			e[k] = s
		}
	}
	rc.events = append(rc.events, e)
}

func (rc *receiver) kinds() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, e := range rc.events {
		out = append(out, e["event"]+":"+e["channel"])
	}
	return out
}

// TestNotifications: deploys, a failure, a rollback and a preview's life
// reach a signed JSON receiver configured for the server and a Slack-format
// one configured for the site (its URL a secret from the environment).
func TestNotifications(t *testing.T) {
	jsonRx := &receiver{t: t, secret: []byte("notify-secret")}
	slackRx := &receiver{t: t}
	jsonSrv, slackSrv := httptest.NewServer(jsonRx), httptest.NewServer(slackRx)
	defer jsonSrv.Close()
	defer slackSrv.Close()

	repo := gittest.New(t, "")
	repo.Write("web/index.html", "one")
	first := repo.Commit("First version")
	cfg := testConfig(t, t.TempDir(), `  - name: blog
    repo: `+repo.URL()+`
    path: web
    domains: [blog.test]
    build: {tool: none}
    webhook: { secret_env: TEST_HOOK_SECRET }
    notifications:
      - { url_env: SLACK_URL, format: slack, events: [deploy_succeeded, rolled_back] }
`, `  notifications:
    - { url: "`+jsonSrv.URL+`/hook", secret_env: NOTIFY_SECRET }
`)
	srv := startServer(t, cfg, map[string]string{
		"TEST_HOOK_SECRET": testHookSecret, "NOTIFY_SECRET": "notify-secret", "SLACK_URL": slackSrv.URL + "/services/T0/B0/secret",
	})
	syncSite(t, srv, "blog")
	repo.Write("web/index.html", "two")
	repo.Commit("Second version")
	syncSite(t, srv, "blog")
	repo.Revert("HEAD")
	syncSite(t, srv, "blog")
	head := pushPR(repo, 3, "web/index.html", "preview")
	sendGitHub(t, srv, "pull_request", githubPayload(t, "pull_request.opened.json", repo.URL(), 3, head))
	waitFor(t, func() bool { return slices.Contains(jsonRx.kinds(), "preview_ready:pr-3") })
	sendGitHub(t, srv, "pull_request", githubPayload(t, "pull_request.closed.json", repo.URL(), 3, head))
	waitFor(t, func() bool { return slices.Contains(jsonRx.kinds(), "preview_removed:pr-3") })

	repo.Git(repo.Work, "rm", "-rq", "web")
	repo.Commit("Oops, deleted the site")
	syncSite(t, srv, "blog")
	waitFor(t, func() bool { return slices.Contains(jsonRx.kinds(), "deploy_failed:production") })

	want := []string{
		"deploy_started:production", "deploy_succeeded:production",
		"deploy_started:production", "deploy_succeeded:production",
		"deploy_started:production", "rolled_back:production",
		"deploy_started:pr-3", "preview_ready:pr-3", "preview_removed:pr-3",
		"deploy_started:production", "deploy_failed:production",
	}
	if got := jsonRx.kinds(); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	jsonRx.mu.Lock()
	first0 := jsonRx.events[1]
	rollback := jsonRx.events[5]
	failed := jsonRx.events[10]
	jsonRx.mu.Unlock()
	if first0["site"] != "blog" || first0["commit"] != first || first0["message"] != "First version" || first0["deploy"] == "" || !strings.HasPrefix(first0["url"], "http://blog.test:") {
		t.Errorf("deploy_succeeded event: %v", first0)
	}
	if rollback["deploy"] != first0["deploy"] || rollback["previous_deploy"] == "" {
		t.Errorf("rolled_back event: %v, want the first deploy live again", rollback)
	}
	if !strings.Contains(failed["error"], "web") {
		t.Errorf("deploy_failed event: %v", failed)
	}
	slackRx.mu.Lock()
	texts := slices.Clone(slackRx.texts)
	slackRx.mu.Unlock()
	if len(texts) != 3 || !strings.Contains(texts[0], "blog") || !strings.Contains(strings.ToLower(texts[2]), "rolled back") {
		t.Errorf("slack messages: %q; want 2 deploys and a rollback", texts)
	}
}
