package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/gittest"
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
