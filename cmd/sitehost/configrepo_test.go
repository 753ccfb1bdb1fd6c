package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gittest"
)

// TestConfigRepo: with the platform's config in git, a pushed change to
// sites.yaml is applied without a restart — by poll, or at once on a
// webhook — and a broken push is refused while the running config serves.
func TestConfigRepo(t *testing.T) {
	siteRepo := gittest.New(t, "")
	siteRepo.Write("index.html", "<h1>from git</h1>")
	siteRepo.Commit("site")
	cfg := testConfig(t, t.TempDir(), "  - name: one\n    repo: "+siteRepo.URL()+"\n    domains: [one.test]\n    build: {tool: none}\n")
	doc, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	cfgRepo := gittest.New(t, "")
	cfgRepo.Write("platform/sites.yaml", string(doc))
	cfgRepo.Commit("config")

	opts, cfg := followConfigRepo(t, cfgRepo.URL(), "platform/sites.yaml")
	cr := opts.ConfigRepo
	ts := startServerUntil(t, cfg, map[string]string{"TEST_TOKEN": testToken}, opts)
	t.Cleanup(func() { ts.stop(t) })
	syncSite(t, ts.server, "one")

	// A push adding a domain, announced by the generic webhook.
	cfgRepo.Write("platform/sites.yaml", strings.Replace(string(doc), "[one.test]", "[one.test, eins.test]", 1))
	cfgRepo.Commit("alias")
	if code := postJSON(t, "http://"+ts.adminLn.Addr().String()+"/hooks/generic", testToken, `{"site":"_config"}`); code != 202 {
		t.Fatalf("config webhook: %d", code)
	}
	waitFor(t, func() bool { return get(t, ts.server, "eins.test", "/").status == 301 })

	// A broken push is refused; the site keeps serving.
	cfgRepo.Write("platform/sites.yaml", string(doc)+"  - name: BAD\n")
	cfgRepo.Commit("broken")
	cr.poke()
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "config reload refused") })
	if r := get(t, ts.server, "one.test", "/"); r.status != 200 || !strings.Contains(r.body, "from git") {
		t.Errorf("after a broken config push: %d %q", r.status, r.body)
	}
}

// followConfigRepo opens the config repository at url as serve
// --config-repo does and reads path at ref main: the server options that
// follow it from there, and the config read.
func followConfigRepo(t *testing.T, url, path string) (serverOptions, *config.Config) {
	t.Helper()
	cr, err := openConfigRepo(url, "main", path, t.TempDir(), "", srvTestLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	commit, data, err := cr.read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cr.seen = commit
	cfg, err := parseConfig(path, data, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return serverOptions{ConfigRepo: cr, ConfigData: data, ConfigPoll: time.Hour, Version: cr.version(commit)}, cfg
}
