package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestReload: a new config swaps in while serving — a new site starts and
// is served, a changed domain is rerouted, an untouched site keeps its
// worker — and an invalid one is refused with its problems logged.
func TestReload(t *testing.T) {
	one, two := gittest.New(t, ""), gittest.New(t, "")
	one.Write("index.html", "<h1>one</h1>")
	one.Commit("one")
	two.Write("index.html", "<h1>two</h1>")
	two.Commit("two")
	site1 := func(domain string) string {
		return "  - name: one\n    repo: " + one.URL() + "\n    domains: [" + domain + "]\n    build: {tool: none}\n"
	}
	site2 := "  - name: two\n    repo: " + two.URL() + "\n    domains: [two.test]\n    build: {tool: none}\n"
	cfg := testConfig(t, t.TempDir(), site1("one.test"))
	ts := startServerUntil(t, cfg, nil, serverOptions{})
	t.Cleanup(func() { ts.stop(t) })
	srv := ts.server
	syncSite(t, srv, "one")
	builds := srv.loop.Builds()

	// A valid edit: a site added, none changed.
	doc, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	next := string(doc) + site2
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(next)); err != nil {
		t.Fatal(err)
	}
	syncSite(t, srv, "two")
	if r := get(t, srv, "two.test", "/"); r.status != 200 || !strings.Contains(r.body, "two") {
		t.Errorf("new site: %d %q", r.status, r.body)
	}
	if st, _ := srv.loop.SiteStatus("one"); st.Builds != 1 || st.State != site.Synced {
		t.Errorf("site one restarted: %+v", st)
	}
	if got := srv.loop.Builds() - builds; got != 1 {
		t.Errorf("%d builds after adding a site, want 1", got)
	}

	// A changed domain: rerouted, the old one unknown.
	changed := strings.Replace(next, "[one.test]", "[uno.test]", 1)
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(changed)); err != nil {
		t.Fatal(err)
	}
	syncSite(t, srv, "one")
	if r := get(t, srv, "uno.test", "/"); r.status != 200 || !strings.Contains(r.body, "one") {
		t.Errorf("renamed domain: %d %q", r.status, r.body)
	}
	if r := get(t, srv, "one.test", "/"); r.status != 404 {
		t.Errorf("old domain: %d, want 404", r.status)
	}

	// An invalid edit is refused, every problem logged, and nothing changes.
	bad := strings.Replace(changed, "name: two", "name: Two!", 1) + "    bogus: key\n"
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(bad)); err == nil {
		t.Fatal("an invalid config was accepted")
	}
	logs := ts.logs.String()
	for _, want := range []string{"config reload refused", "sites[1].name", "bogus: unknown key"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if r := get(t, srv, "two.test", "/"); r.status != 200 {
		t.Errorf("after a refused reload: two.test %d", r.status)
	}

	// Removing a site stops serving it; its deploys stay in the store.
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(strings.Replace(changed, site2, "", 1))); err != nil {
		t.Fatal(err)
	}
	if r := get(t, srv, "two.test", "/"); r.status != 404 {
		t.Errorf("removed site still served: %d", r.status)
	}
	if _, err := srv.publisher.Pointer(t.Context(), "two", site.Production); err != nil {
		t.Errorf("removed site's deploy: %v", err)
	}
}

// TestConfigWatch: `sitehost serve` follows its config file — an editor's
// rename-save adding a site is applied without a restart, and an invalid
// save is refused while the running config keeps serving.
func TestConfigWatch(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "<h1>watched</h1>")
	repo.Commit("one")
	cfg := testConfig(t, t.TempDir(), "  - name: one\n    repo: "+repo.URL()+"\n    domains: [one.test]\n    build: {tool: none}\n")
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerUntil(t, cfg, nil, serverOptions{ConfigData: data, ConfigPoll: time.Hour})
	t.Cleanup(func() { ts.stop(t) })
	syncSite(t, ts.server, "one")

	save := func(doc string) { // write a temp file and rename it over, as editors do
		tmp := cfg.File + ".swp"
		if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg.File); err != nil {
			t.Fatal(err)
		}
	}
	save(string(data) + "  - name: two\n    repo: " + repo.URL() + "\n    domains: [two.test]\n    build: {tool: none}\n")
	waitFor(t, func() bool { return get(t, ts.server, "two.test", "/").status == 200 })

	save(string(data) + "  - name: two\n    repo: nowhere\n")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "config reload refused") })
	if !strings.Contains(ts.logs.String(), "sites[1].repo") {
		t.Errorf("the refused config's problem is not logged:\n%s", ts.logs)
	}
	if r := get(t, ts.server, "two.test", "/"); r.status != 200 {
		t.Errorf("after an invalid save: %d, want the running config to keep serving", r.status)
	}
}
