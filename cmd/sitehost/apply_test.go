package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// twoSites is a config of sites a and b (tool none), with extra YAML
// lines for each, for reload tests.
type twoSites struct {
	a, b *gittest.Repo
}

func newTwoSites(t *testing.T) twoSites {
	t.Helper()
	ts := twoSites{gittest.New(t, ""), gittest.New(t, "")}
	ts.a.Write("index.html", "<h1>site a</h1>")
	ts.a.Commit("a")
	ts.b.Write("index.html", "<h1>site b</h1>")
	ts.b.Commit("b")
	return ts
}

func (ts twoSites) yaml(aDomain, bDomain, aExtra, bExtra string) string {
	return "  - name: a\n    repo: " + ts.a.URL() + "\n    domains: [" + aDomain + "]\n    build: {tool: none" + aExtra + "}\n" +
		"  - name: b\n    repo: " + ts.b.URL() + "\n    domains: [" + bDomain + "]\n    build: {tool: none" + bExtra + "}\n"
}

// replaceSites swaps the sites block of a config written by testConfig.
func replaceSites(t *testing.T, file, sitesYAML string) string {
	t.Helper()
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(doc), "sites:\n")
	if !ok {
		t.Fatalf("no sites block in %s", file)
	}
	return head + "sites:\n" + sitesYAML
}

// apiConfig reads GET /api/v1/config.
func apiConfig(t *testing.T, srv *server) api.Config {
	t.Helper()
	var c api.Config
	apiGet(t, srv, "/api/v1/config", testToken, http.StatusOK, &c)
	return c
}

// serving is what a server answers for a set of hosts, and what it says of
// itself: the state a refused reload must leave as it was.
type serving struct {
	answers map[string]int
	sites   []string
	version string
	workers []site.Name
}

func servingState(t *testing.T, srv *server, hosts ...string) serving {
	t.Helper()
	st := serving{answers: map[string]int{}}
	for _, h := range hosts {
		st.answers[h] = get(t, srv, h, "/").status
	}
	var list api.SiteList
	apiGet(t, srv, "/api/v1/sites", testToken, http.StatusOK, &list)
	for _, s := range list.Sites {
		st.sites = append(st.sites, fmt.Sprintf("%s%v", s.Name, s.Domains))
	}
	if list.Config != nil {
		st.version = list.Config.Version
	}
	for _, s := range srv.loop.Status() {
		st.workers = append(st.workers, s.Site)
	}
	return st
}

func (a serving) String() string {
	return fmt.Sprintf("answers %v, sites %v, config %s, workers %v", a.answers, a.sites, a.version, a.workers)
}

// TestReloadRefusedWhole: configs that validate as YAML but cannot be
// applied — a site whose git credentials cannot be read added first with
// another site changed, a forge that cannot work with a file:// repo — are
// refused whole: no crash, nothing half-applied, the API still answers and
// says why; and validate and startup refuse the same files.
func TestReloadRefusedWhole(t *testing.T) {
	sites := newTwoSites(t)
	cfg := testConfig(t, t.TempDir(), sites.yaml("a.test", "b.test", "", ""))
	ts := startServerUntil(t, cfg, nil, serverOptions{})
	srv := ts.server
	syncSite(t, srv, "a")
	syncSite(t, srv, "b")
	before := servingState(t, srv, "a.test", "b.test", "c.test")

	badKey := "  - name: c\n    repo: ssh://git@git.example.com/c.git\n    domains: [c.test]\n    credentials: {ssh_key_file: /nonexistent/id_ed25519}\n"
	badForge := "  - name: c\n    repo: " + sites.a.URL() + "\n    domains: [c.test]\n    forge: {kind: github, token_env: GH_TOKEN}\n"
	for _, tc := range []struct {
		name, sites, wantKey string
	}{
		{"unreadable ssh key, listed first, another site changed", badKey + sites.yaml("a.test", "b.test", ", env: {X: y}", ""), "sites[0].credentials.ssh_key_file"},
		{"forge with a file repo", sites.yaml("a.test", "b.test", "", "") + badForge, "sites[2].forge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := replaceSites(t, cfg.File, tc.sites)
			err := srv.reloadFile(t.Context(), cfg.File, []byte(doc))
			if err == nil {
				t.Fatal("reload accepted a config that cannot be applied")
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("error %q does not name %s", err, tc.wantKey)
			}
			// Poll ticks, triggers and syncs still work on the running sites.
			if err := srv.loop.Trigger("a"); err != nil {
				t.Errorf("trigger after a refused reload: %v", err)
			}
			syncSite(t, srv, "b")
			if after := servingState(t, srv, "a.test", "b.test", "c.test"); after.String() != before.String() {
				t.Errorf("a refused reload changed what runs:\nbefore %s\nafter  %s", before, after)
			}
			c := apiConfig(t, srv)
			if c.Refused == nil || c.Refused.Step != "compile" || !slices.ContainsFunc(c.Refused.Problems, func(p string) bool { return strings.Contains(p, tc.wantKey) }) {
				t.Errorf("API does not report the refusal: %+v", c.Refused)
			}
			if c.Version != before.version {
				t.Errorf("live version %s, want %s", c.Version, before.version)
			}
			if !strings.Contains(ts.logs.String(), tc.wantKey) {
				t.Errorf("the refusal's problem is not logged")
			}
			out, _, err := cliRun(t, srv.adminLn.Addr().String(), testToken, "status")
			if err != nil || !strings.Contains(out, "was refused (") || !strings.Contains(out, tc.wantKey) {
				t.Errorf("sitehost status does not show the refusal: %v\n%s", err, out)
			}

			// validate and startup say the same about the same file.
			// (In a data dir of its own: a starting server clears its scratch.)
			path := filepath.Join(t.TempDir(), "sites.yaml")
			own := strings.Replace(doc, cfg.Server.DataDir, t.TempDir(), 1)
			if err := os.WriteFile(path, []byte(own), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := runCmd(t, "validate", "-c", path)
			if err == nil || !strings.Contains(stderr, tc.wantKey) {
				t.Errorf("validate accepts what reload refuses: %v\n%s", err, stderr)
			}
			_, stderr, err = runCmd(t, "serve", "-c", path)
			if err == nil || !strings.Contains(stderr, tc.wantKey) {
				t.Errorf("serve starts with what reload refuses: %v\n%s", err, stderr)
			}
		})
	}

	// A good reload afterwards applies and clears the refusal.
	doc := replaceSites(t, cfg.File, sites.yaml("a.test", "b2.test", "", ""))
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if c := apiConfig(t, srv); c.Refused != nil || c.Version != fileVersion(cfg.File, []byte(doc)).id {
		t.Errorf("after a good reload: %+v", c)
	}
	if r := get(t, srv, "b2.test", "/"); r.status != 200 {
		t.Errorf("b2.test after a good reload: %d", r.status)
	}
}

// TestReloadFailingStep injects a failure at each step of applying a
// config: nothing changes — routes, workers, the live version — and the
// API names the step.
func TestReloadFailingStep(t *testing.T) {
	sites := newTwoSites(t)
	cfg := testConfig(t, t.TempDir(), sites.yaml("a.test", "b.test", "", ""))
	var failing atomic.Pointer[string]
	ts := startServerUntil(t, cfg, nil, serverOptions{failStep: func(step string) error {
		if p := failing.Load(); p != nil && *p == step {
			return errors.New("injected failure")
		}
		return nil
	}})
	srv := ts.server
	syncSite(t, srv, "a")
	syncSite(t, srv, "b")
	before := servingState(t, srv, "a.test", "b.test", "c.test", "b2.test")

	// Every kind of change at once: a site added, one changed, a domain moved.
	next := replaceSites(t, cfg.File, sites.yaml("a.test", "b2.test", ", env: {X: y}", "")+
		"  - name: c\n    repo: "+sites.b.URL()+"\n    domains: [c.test]\n    build: {tool: none}\n")
	for _, step := range srv.applySteps() {
		t.Run(step.name, func(t *testing.T) {
			failing.Store(&step.name)
			if err := srv.reloadFile(t.Context(), cfg.File, []byte(next)); err == nil {
				t.Fatal("the reload succeeded despite the failure")
			}
			if after := servingState(t, srv, "a.test", "b.test", "c.test", "b2.test"); after.String() != before.String() {
				t.Errorf("a refused reload changed what runs:\nbefore %s\nafter  %s", before, after)
			}
			if c := apiConfig(t, srv); c.Refused == nil || c.Refused.Step != step.name || !strings.Contains(c.Refused.Error, "injected failure") {
				t.Errorf("API refusal: %+v", c.Refused)
			}
		})
	}
	failing.Store(nil)
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(next)); err != nil {
		t.Fatal(err)
	}
	syncSite(t, srv, "c")
	for host, want := range map[string]int{"a.test": 200, "b.test": 404, "b2.test": 200, "c.test": 200} {
		if r := get(t, srv, host, "/"); r.status != want {
			t.Errorf("%s after the reload: %d, want %d", host, r.status, want)
		}
	}
}

// TestReloadBurst: 50 rapid saves alternating valid and invalid configs,
// with requests in flight, end on the last valid config; no answer is an
// error, and no API answer mixes two configs.
func TestReloadBurst(t *testing.T) {
	sites := newTwoSites(t)
	version := func(n int) string {
		return sites.yaml(fmt.Sprintf("a%d.test", n), fmt.Sprintf("b%d.test", n), "", "")
	}
	cfg := testConfig(t, t.TempDir(), version(0))
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerUntil(t, cfg, nil, serverOptions{ConfigData: data, ConfigPoll: time.Hour})
	srv := ts.server
	syncSite(t, srv, "a")
	syncSite(t, srv, "b")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests atomic.Int64
	var mu sync.Mutex
	var problems []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				requests.Add(1)
				if w%2 == 0 {
					req, _ := http.NewRequest(http.MethodGet, "http://"+srv.httpLn.Addr().String()+"/", nil)
					req.Host = fmt.Sprintf("a%d.test", i%51)
					resp, err := client.Do(req)
					if err != nil {
						report("data plane: %v", err)
						continue
					}
					resp.Body.Close()
					if resp.StatusCode >= 500 {
						report("data plane %s: %d", req.Host, resp.StatusCode)
					}
					continue
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+srv.adminLn.Addr().String()+"/api/v1/sites", nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := client.Do(req)
				if err != nil {
					report("API: %v", err)
					continue
				}
				var list api.SiteList
				err = json.NewDecoder(resp.Body).Decode(&list)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || len(list.Sites) != 2 {
					report("API: %d %v %d sites", resp.StatusCode, err, len(list.Sites))
					continue
				}
				da, db := strings.TrimPrefix(list.Sites[0].Domains[0], "a"), strings.TrimPrefix(list.Sites[1].Domains[0], "b")
				if da != db {
					report("API answer mixes two configs: %v and %v", list.Sites[0].Domains, list.Sites[1].Domains)
				}
			}
		})
	}

	save := func(doc string) { // an editor's rename-save
		tmp := cfg.File + ".swp"
		if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg.File); err != nil {
			t.Fatal(err)
		}
	}
	var last string
	for i := 1; i <= 50; i++ {
		doc := replaceSites(t, cfg.File, version(i))
		if i%2 == 1 {
			doc += "    bogus: key\n" // invalid
		} else {
			last = doc
		}
		save(doc)
	}
	want := fileVersion(cfg.File, []byte(last)).id
	waitFor(t, func() bool { return srv.configState.get().Version == want })
	close(stop)
	wg.Wait()
	t.Logf("%d requests in flight during the burst", requests.Load())
	for _, p := range problems {
		t.Error(p)
	}
	for host, code := range map[string]int{"a50.test": 200, "b50.test": 200, "a48.test": 404, "a0.test": 404} {
		if r := get(t, srv, host, "/"); r.status != code {
			t.Errorf("%s at the end: %d, want %d", host, r.status, code)
		}
	}
}

// TestConfigRepoRetry: in config-repo mode, a commit whose apply fails is
// applied again, and goes live once the cause is gone.
func TestConfigRepoRetry(t *testing.T) {
	sites := newTwoSites(t)
	cfg := testConfig(t, t.TempDir(), sites.yaml("a.test", "b.test", "", ""))
	doc, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	file := cfg.File
	cfgRepo := gittest.New(t, "")
	cfgRepo.Write("sites.yaml", string(doc))
	cfgRepo.Commit("config")
	opts, cfg := followConfigRepo(t, cfgRepo.URL(), "sites.yaml")
	cr := opts.ConfigRepo
	var broken atomic.Bool
	opts.failStep = func(step string) error {
		if step == "workers" && broken.Load() {
			return errors.New("storage is down")
		}
		return nil
	}
	ts := startServerUntil(t, cfg, nil, opts)
	srv := ts.server
	syncSite(t, srv, "a")

	broken.Store(true)
	cfgRepo.Write("sites.yaml", replaceSites(t, file, sites.yaml("a.test", "b2.test", "", "")))
	pushed := cfgRepo.Commit("move b")
	cr.poke()
	waitFor(t, func() bool {
		c := srv.configState.get()
		return c.Refused != nil && c.Refused.Version == pushed
	})
	if r := get(t, srv, "b2.test", "/"); r.status != 404 {
		t.Errorf("a refused commit is served: %d", r.status)
	}

	broken.Store(false)
	cr.poke() // a poll tick: the repository has not moved, the commit is tried again
	waitFor(t, func() bool { return srv.configState.get().Version == pushed })
	syncSite(t, srv, "b")
	if r := get(t, srv, "b2.test", "/"); r.status != 200 {
		t.Errorf("after the retry: b2.test %d", r.status)
	}
	if c := apiConfig(t, srv); c.Source != "git" || c.Refused != nil {
		t.Errorf("config after the retry: %+v", c)
	}
}

func srvTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

// TestReloadRebuildsChangedSettings: a reload that changes what a site's
// commit builds to — its domain (the base URL) or its build env — builds
// the live commit again; git did not move, but what is served must follow
// the config, as the API already does.
func TestReloadRebuildsChangedSettings(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL()))
	srv := startServer(t, cfg, nil)
	port := portOf(srv.httpLn.Addr())
	syncSite(t, srv, "blog")
	if body := get(t, srv, "blog.test", "/").body; !strings.Contains(body, "base=http://blog.test:"+port+"/") {
		t.Fatalf("first deploy: %q", body)
	}
	builds := srv.loop.Builds()

	next := replaceSites(t, cfg.File, "  - name: blog\n    repo: "+repo.URL()+"\n    domains: [docs.test]\n")
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(next)); err != nil {
		t.Fatal(err)
	}
	syncSite(t, srv, "blog")
	if body := get(t, srv, "docs.test", "/").body; !strings.Contains(body, "base=http://docs.test:"+port+"/") {
		t.Errorf("after the domain changed: %q, want the new base URL", body)
	}
	if got := srv.loop.Builds(); got != builds+1 {
		t.Errorf("builds %d → %d, want one for the new base URL", builds, got)
	}

	// Back to the first domain: that deploy was built before, so it is
	// reused, not built.
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(replaceSites(t, cfg.File, siteYAML(repo.URL())))); err != nil {
		t.Fatal(err)
	}
	syncSite(t, srv, "blog")
	if body := get(t, srv, "blog.test", "/").body; !strings.Contains(body, "base=http://blog.test:"+port+"/") {
		t.Errorf("back on the first domain: %q", body)
	}
	if got := srv.loop.Builds(); got != builds+1 {
		t.Errorf("builds %d, want %d: the first deploy is reused", got, builds+1)
	}
	// A settled site stays as it is: no build on the next sync.
	syncSite(t, srv, "blog")
	if got := srv.loop.Builds(); got != builds+1 {
		t.Errorf("builds %d after a sync with nothing changed, want %d", got, builds+1)
	}
}

// TestGitRewrite: server.git.rewrite stands a mirror in for the URL the
// config names (here a host that does not exist), and a reload that
// changes the rule applies without a restart.
func TestGitRewrite(t *testing.T) {
	ts := newTwoSites(t)
	const named = "https://git.example.invalid/acme/"
	rule := func(to string) string {
		return "  git:\n    rewrite:\n      - {from: \"" + named + "\", to: \"" + to + "\"}\n"
	}
	site := "  - name: a\n    repo: " + named + "site.git\n    domains: [a.test]\n    build: {tool: none}\n"
	mirrorOf := func(r *gittest.Repo) string { return strings.TrimSuffix(r.URL(), path.Base(r.URL())) }
	// The rule maps the prefix to the folder holding a's repository…
	if path.Base(ts.a.URL()) != "site.git" {
		t.Fatalf("gittest names its bare repositories %s; this test wants site.git", path.Base(ts.a.URL()))
	}
	cfg := testConfig(t, t.TempDir(), site, rule(mirrorOf(ts.a)))
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "a")
	if got := get(t, srv, "a.test", "/"); got.status != 200 || !strings.Contains(got.body, "site a") {
		t.Fatalf("a through the rewrite: %d %q", got.status, got.body)
	}
	// …and a reload points it at b's: the site follows at once.
	doc, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(doc), mirrorOf(ts.a), mirrorOf(ts.b), 1)
	if err := srv.reloadFile(t.Context(), cfg.File, []byte(next)); err != nil {
		t.Fatal(err)
	}
	syncSite(t, srv, "a")
	if got := get(t, srv, "a.test", "/"); !strings.Contains(got.body, "site b") {
		t.Errorf("after the rule changed: %q, want b's content", got.body)
	}
}

// TestConfigRepoRewrite: server.git.rewrite of the applied config also
// applies to the config repository from the next poll: a mirror stands in
// for the URL --config-repo names.
func TestConfigRepoRewrite(t *testing.T) {
	sites := newTwoSites(t)
	origin, mirror := gittest.New(t, ""), gittest.New(t, "")
	rule := "  git:\n    rewrite:\n      - {from: \"" + origin.URL() + "\", to: \"" + mirror.URL() + "\"}\n"
	cfg := testConfig(t, t.TempDir(), sites.yaml("a.test", "b.test", "", ""), rule)
	doc, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	origin.Write("sites.yaml", string(doc))
	origin.Commit("config")
	// The mirror holds a newer config the origin never gets.
	mirror.Write("sites.yaml", replaceSites(t, cfg.File, sites.yaml("a.test", "mirrored.test", "", "")))
	newer := mirror.Commit("config from the mirror")

	opts, cfg := followConfigRepo(t, origin.URL(), "sites.yaml")
	srv := startServerWith(t, cfg, nil, opts)
	opts.ConfigRepo.poke()
	waitFor(t, func() bool { return srv.configState.get().Version == newer })
	syncSite(t, srv, "b")
	if r := get(t, srv, "mirrored.test", "/"); r.status != 200 {
		t.Errorf("the mirror's config is not applied: mirrored.test %d", r.status)
	}
}
