package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestStatusCommand: `sitehost status` shows each channel's state with the
// live and desired commits — Pinned with both when they differ — and says
// plainly when the token is wrong or the server is not there.
func TestStatusCommand(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "one")
	first := repo.Commit("one")
	repo.Write("index.html", "two")
	repo.Commit("two") // production stays pinned at the first
	cfg := testConfig(t, t.TempDir(), `  - name: blog
    repo: `+repo.URL()+`
    domains: [blog.test]
    build: {tool: none}
    pin: `+first+`
`)
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "blog")
	admin := srv.adminLn.Addr().String()
	status := func(token string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		env := map[string]string{"SITEHOST_ADMIN": admin, "SITEHOST_API_TOKEN": token}
		err := run(t.Context(), append([]string{"status"}, args...), func(k string) string { return env[k] }, &out, &errOut)
		return out.String(), err
	}
	out, err := status(testToken)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "SITE") {
		t.Fatalf("output:\n%s", out)
	}
	fields := strings.Fields(lines[1])
	if want := []string{"blog", "production", "Pinned", first[:7], first[:7]}; strings.Join(fields[:5], " ") != strings.Join(want, " ") {
		t.Errorf("row %q, want it to start %q", lines[1], want)
	}
	if out, err := status(testToken, "--json", "blog"); err != nil || !strings.Contains(out, `"state": "Pinned"`) {
		t.Errorf("--json: %v\n%s", err, out)
	}
	if _, err := status("wrong"); err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Errorf("wrong token: %v", err)
	}
	admin = "127.0.0.1:1"
	if _, err := status(testToken); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("no server: %v", err)
	}
}

// TestClientCommandsAgainstServer runs the client commands against the
// real admin API (the golden tests use a fake of it): a sync that
// publishes, the history, the build log; a sync that fails exits 1 with
// Hugo's error, and the failed build is in the history with its log.
func TestClientCommandsAgainstServer(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	srv := startServer(t, testConfig(t, t.TempDir(), siteYAML(repo.URL())), nil)
	env := map[string]string{"SITEHOST_ADMIN": srv.adminLn.Addr().String(), "SITEHOST_API_TOKEN": testToken}
	cli := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	out, errOut, err := cli("sync", "blog")
	if err != nil || !strings.Contains(out, "production") || !strings.Contains(out, "Synced") {
		t.Fatalf("sync: %v\n%s%s", err, out, errOut)
	}
	out, _, err = cli("deploys", "blog")
	if err != nil || !strings.Contains(out, "live (production)") || !strings.Contains(out, "Initial site") {
		t.Errorf("deploys: %v\n%s", err, out)
	}
	out, _, err = cli("logs", "blog")
	if err != nil || !strings.Contains(out, "Building with Hugo v") || !strings.Contains(out, "Live on production") {
		t.Errorf("logs: %v\n%s", err, out)
	}
	out, _, err = cli("logs", "-f", "blog")
	if err != nil || !strings.Contains(out, "Live on production") {
		t.Errorf("logs -f of a finished build: %v\n%s", err, out)
	}

	repo.Write("layouts/page.html", "{{ define \"main\" }}\n{{ .NoSuchMethod }}\n{{ end }}\n")
	repo.Commit("Break the page layout")
	out, errOut, err = cli("sync", "blog")
	if err == nil || !strings.Contains(errOut, "layouts/page.html") {
		t.Errorf("sync of a broken commit: err %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	out, _, err = cli("deploys", "--json", "blog")
	var list api.DeployList
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Deploys) != 2 || list.Deploys[0].State != site.OutcomeFailed {
		t.Errorf("deploys --json: %v\n%s", err, out)
	}
	if _, _, err := cli("logs", "-f", "blog"); err == nil {
		t.Error("logs -f of the failed build exited 0")
	}
	if _, errOut, err := cli("deploys", "nosuch"); err == nil || !strings.Contains(errOut+err.Error(), `no site named "nosuch"`) {
		t.Errorf("deploys of an unknown site: %v %s", err, errOut)
	}
}
