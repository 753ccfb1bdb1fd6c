package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestHistoryAfterRevertAndRestart: commit, change, git revert, then a
// restart. The new server tells the same story the old one did, from the
// bucket: the revert is an event of its own (reused, at the revert's
// commit, making the first deploy live again), and the channel is live at
// the revert's commit, not at the commit the deploy was built from.
func TestHistoryAfterRevertAndRestart(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	first := site.Commit(repo.Git(repo.Work, "rev-parse", "HEAD"))
	data := t.TempDir()
	sites := `  - name: blog
    repo: ` + repo.URL() + `
    domains: [blog.test]
    build: {tool: none}
`
	srv := startServerUntil(t, testConfig(t, data, sites), nil, serverOptions{})
	syncSite(t, srv.server, "blog")
	repo.Write("content/_index.md", "---\ntitle: Home\n---\nVersion two.\n")
	second := site.Commit(repo.Commit("Change the home page"))
	syncSite(t, srv.server, "blog")
	reverted := site.Commit(repo.Revert("HEAD"))
	syncSite(t, srv.server, "blog")
	before, _ := srv.loop.SiteStatus("blog")
	if before.LiveCommit != reverted {
		t.Fatalf("live at %s before the restart, want the revert %s", before.LiveCommit.Short(), reverted.Short())
	}
	srv.stop(t)

	restarted := startServer(t, testConfig(t, data, sites), nil)
	syncSite(t, restarted, "blog")
	var list api.DeployList
	apiGet(t, restarted, "/api/v1/sites/blog/deploys", testToken, http.StatusOK, &list)
	type row struct {
		event  string
		commit site.Commit
		deploy site.DeployID
	}
	var got []row
	for _, d := range list.Deploys {
		got = append(got, row{d.Event, d.Commit.SHA, d.ID})
	}
	if len(got) != 3 || got[0] != (row{"reused", reverted, before.LiveDeploy}) || got[1].event != "built" || got[1].commit != second ||
		got[2] != (row{"built", first, before.LiveDeploy}) {
		t.Fatalf("history after the restart: %+v\nwant reused %s → %s, built %s, built %s → %s",
			got, reverted.Short(), before.LiveDeploy, second.Short(), first.Short(), before.LiveDeploy)
	}
	if d := list.Deploys[0]; d.State != site.OutcomeLive || d.Previous != got[1].deploy || !strings.HasPrefix(d.Commit.Subject, "Revert ") {
		t.Errorf("the revert's entry = %+v; want live, replacing the second deploy, with the revert's subject", d)
	}

	var s api.Site
	apiGet(t, restarted, "/api/v1/sites/blog", testToken, http.StatusOK, &s)
	if ch := s.Channels[0]; ch.LiveCommit != reverted || ch.Live == nil || ch.Live.SHA != reverted || !strings.HasPrefix(ch.Live.Subject, "Revert ") {
		t.Errorf("production channel = %+v (live %+v); want live at the revert %s", ch, ch.Live, reverted.Short())
	}

	admin := "http://" + restarted.adminLn.Addr().String()
	out, stderr, err := cliRun(t, admin, testToken, "deploys", "blog")
	if err != nil {
		t.Fatalf("sitehost deploys: %v\n%s", err, stderr)
	}
	t.Logf("sitehost deploys blog:\n%s", out)
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.Contains(lines[1], "reused") || !strings.Contains(lines[1], reverted.Short()) || !strings.Contains(lines[1], "Revert ") {
		t.Errorf("sitehost deploys: the first row does not show the revert (reused, %s):\n%s", reverted.Short(), out)
	}

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, admin+"/sites/blog", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	channels := string(page)
	if i, j := strings.Index(channels, `id="channels"`), strings.Index(channels, `id="deploy-history"`); i >= 0 && j > i {
		channels = channels[i:j]
	}
	if !strings.Contains(channels, reverted.Short()) || strings.Contains(channels, first.Short()) {
		t.Errorf("dashboard channel table does not show production live at the revert %s:\n%s", reverted.Short(), channels)
	}
}
