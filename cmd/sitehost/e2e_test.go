package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/build/hugochild"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

func siteYAML(repo string) string {
	return `  - name: blog
    repo: ` + repo + `
    domains: [blog.test, www.blog.test]
`
}

func syncSite(t *testing.T, srv *server, name site.Name) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := srv.loop.Sync(ctx, name); err != nil {
		t.Fatal(err)
	}
}

func status(t *testing.T, srv *server, name site.Name) string {
	st, _ := srv.loop.SiteStatus(name)
	b, _ := json.Marshal(st)
	return string(b)
}

// TestCommitToLive walks the foundation end to end with real git and a real
// Hugo build: commit → live, change → live, broken template → the old
// deploy keeps serving, revert → the earlier deploy is live again without
// a build, restart → serves at once.
func TestCommitToLive(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	data := t.TempDir()
	cfg := testConfig(t, data, siteYAML(repo.URL()))
	running := startServerUntil(t, cfg, nil, serverOptions{})
	srv := running.server
	port := portOf(srv.httpLn.Addr())

	// 1. The first commit goes live on its domain.
	syncSite(t, srv, "blog")
	home := get(t, srv, "blog.test", "/")
	if home.status != 200 || !strings.Contains(home.body, "Version one of the home page") {
		t.Fatalf("home after first sync: %d %q\nstatus: %s", home.status, home.body, status(t, srv, "blog"))
	}
	// The base URL is the channel's public URL, and git info has real dates.
	if !strings.Contains(home.body, "base=http://blog.test:"+port+"/") {
		t.Errorf("base URL not the production URL: %q", home.body)
	}
	if !strings.Contains(home.body, "lastmod=2024-03-01") {
		t.Errorf("enableGitInfo: want lastmod from the commit date 2024-03-01 in %q", home.body)
	}
	if got := srv.loop.Builds(); got != 1 {
		t.Errorf("builds after first commit = %d, want 1", got)
	}
	first, _ := srv.loop.SiteStatus("blog")

	// 2. A change, announced through the generic webhook, goes live.
	repo.Write("content/_index.md", "---\ntitle: Home\n---\nVersion two of the home page.\n")
	c2 := repo.Commit("Second version")
	hook := postJSON(t, "http://"+srv.adminLn.Addr().String()+"/hooks/generic", testToken, `{"site":"blog"}`)
	if hook != http.StatusAccepted {
		t.Fatalf("generic hook: %d, want 202", hook)
	}
	waitFor(t, func() bool { return strings.Contains(get(t, srv, "blog.test", "/").body, "Version two") })
	if st, _ := srv.loop.SiteStatus("blog"); st.LiveCommit != site.Commit(c2) || st.State != site.Synced {
		t.Errorf("status after second commit: %+v, want live %s Synced", st, c2)
	}
	if !strings.Contains(get(t, srv, "blog.test", "/").body, "lastmod=2024-03-02") {
		t.Errorf("lastmod did not follow the new commit")
	}

	// 3. A broken template: the build fails, the previous deploy serves on,
	// and the status names the template's file and line.
	repo.Write("layouts/page.html", "{{ define \"main\" }}\n<h1>{{ .Title }}</h1>\n{{ .NoSuchMethod }}\n{{ end }}\n")
	broken := repo.Commit("Break the page template")
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if st.State != site.Failed || st.FailedAt != site.Commit(broken) {
		t.Fatalf("status after broken commit: %+v, want Failed at %s", st, broken)
	}
	if !strings.HasPrefix(st.Error, "layouts/page.html:3:3: ") {
		t.Errorf("error should name layouts/page.html:3, got %q", st.Error)
	}
	if st.LiveCommit != site.Commit(c2) {
		t.Errorf("live commit after failure = %s, want %s", st.LiveCommit, c2)
	}
	if body := get(t, srv, "blog.test", "/").body; !strings.Contains(body, "Version two") {
		t.Errorf("previous deploy no longer serving: %q", body)
	}
	// A failed commit is not rebuilt in a loop.
	builds := srv.loop.Builds()
	syncSite(t, srv, "blog")
	if srv.loop.Builds() != builds {
		t.Errorf("the failing commit was rebuilt")
	}

	// 4. Revert both commits: the tree equals the first commit's, so its
	// deploy goes live again without a Hugo build.
	builds = srv.loop.Builds()
	reverted := repo.Revert("HEAD", "HEAD~1")
	syncSite(t, srv, "blog")
	if got := srv.loop.Builds(); got != builds {
		t.Errorf("revert caused %d builds, want 0", got-builds)
	}
	st, _ = srv.loop.SiteStatus("blog")
	if st.State != site.Synced || st.LiveCommit != site.Commit(reverted) || st.LiveDeploy != first.LiveDeploy {
		t.Errorf("after revert: %+v; want Synced at %s with the first deploy %s", st, reverted, first.LiveDeploy)
	}
	if body := get(t, srv, "blog.test", "/").body; !strings.Contains(body, "Version one") {
		t.Errorf("revert not live: %q", body)
	}

	// 5. The admin API shows the live commit, deploy and status.
	var sites api.SiteList
	apiGet(t, srv, "/api/v1/sites", testToken, http.StatusOK, &sites)
	if len(sites.Sites) != 1 || sites.Sites[0].LiveCommit != site.Commit(reverted) || sites.Sites[0].State != site.Synced || sites.Sites[0].LiveDeploy != first.LiveDeploy {
		t.Errorf("GET /api/v1/sites = %+v", sites)
	}
	apiGet(t, srv, "/api/v1/sites", "wrong", http.StatusUnauthorized, nil)
	apiGet(t, srv, "/api/v1/sites", "", http.StatusUnauthorized, nil)

	// 6. A restart on the same data_dir and address serves at once,
	// without building (on another port the base URL would differ, and
	// the site would rightly be built again).
	running.stop(t)
	again := testConfig(t, srv.cfg.Server.DataDir, siteYAML(repo.URL()))
	doc, err := os.ReadFile(again.File)
	if err != nil {
		t.Fatal(err)
	}
	doc = []byte(strings.Replace(string(doc), `http: "127.0.0.1:0"`, `http: "127.0.0.1:`+port+`"`, 1))
	if err := os.WriteFile(again.File, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err = config.Load(again.File); err != nil {
		t.Fatal(err)
	}
	restarted := startServer(t, again, nil)
	if body := get(t, restarted, "blog.test", "/").body; !strings.Contains(body, "Version one") {
		t.Errorf("restarted server does not serve at once: %q", body)
	}
	syncSite(t, restarted, "blog")
	if n := restarted.loop.Builds(); n != 0 {
		t.Errorf("restart rebuilt %d times", n)
	}
}

// TestServing checks the HTTP behaviour of a published Hugo site.
func TestServing(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	srv := startServer(t, testConfig(t, t.TempDir(), siteYAML(repo.URL())), nil)
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	port := portOf(srv.httpLn.Addr())

	tests := []struct {
		name, host, path string
		hdr              []string
		status           int
		header           map[string]string
		body             string
	}{
		{"home", "blog.test", "/", nil, 200, map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "public, max-age=0, must-revalidate"}, "<h1>E2E Blog</h1>"},
		{"host is case-insensitive with port", "BLOG.test:" + port, "/", nil, 200, nil, "E2E Blog"},
		{"directory index", "blog.test", "/posts/first/", nil, 200, nil, "Hello from the first post"},
		{"no trailing slash redirects", "blog.test", "/posts/first?x=1", nil, 301, map[string]string{"Location": "/posts/first/?x=1"}, ""},
		{"static file", "blog.test", "/css/site.css", nil, 200, map[string]string{"Content-Type": "text/css; charset=utf-8"}, "color: #222"},
		{"custom 404", "blog.test", "/nope", nil, 404, map[string]string{"Content-Type": "text/html; charset=utf-8"}, "Custom not found page"},
		{"alias redirects to primary", "www.blog.test:" + port, "/posts/?q=1", nil, 301, map[string]string{"Location": "http://blog.test:" + port + "/posts/?q=1"}, ""},
		{"permalink", string(st.LiveDeploy) + "--blog.localhost", "/", nil, 200, map[string]string{"X-Robots-Tag": "noindex"}, "E2E Blog"},
		{"unknown permalink", "0000000000000000--blog.localhost", "/", nil, 404, nil, ""},
		{"unknown host", "nope.test", "/", nil, 404, nil, "no site is served at this host"},
		{"unknown site preview", "pr-1--nosuch.localhost", "/", nil, 404, nil, "no site"},
		{"range", "blog.test", "/css/site.css", []string{"Range", "bytes=0-3"}, 206, map[string]string{"Content-Range": "bytes 0-3/22"}, "body"},
		{"dot-dot stays inside", "blog.test", "/../../etc/passwd", nil, 404, nil, "Custom not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, srv, tt.host, tt.path, tt.hdr...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (body %q)", r.status, tt.status, r.body)
			}
			for k, v := range tt.header {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(r.body, tt.body) {
				t.Errorf("body %q does not contain %q", r.body, tt.body)
			}
		})
	}

	t.Run("etag and 304", func(t *testing.T) {
		r := get(t, srv, "blog.test", "/css/site.css")
		etag := r.header.Get("ETag")
		if len(etag) != 66 {
			t.Fatalf("ETag %q is not a quoted sha256", etag)
		}
		if r := get(t, srv, "blog.test", "/css/site.css", "If-None-Match", etag); r.status != 304 {
			t.Errorf("conditional GET: %d, want 304", r.status)
		}
	})
	t.Run("methods", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+srv.httpLn.Addr().String()+"/", nil)
		req.Host = "blog.test"
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

// TestBuildSandbox: what a repo or its templates reach outside the tree is
// never published, and server secrets never reach a build.
func TestBuildSandbox(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	const outsideSecret = "OUTSIDE-FILE-SECRET-7f3a"
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte(outsideSecret), 0o644); err != nil {
		t.Fatal(err)
	}
	const serverSecret = "SERVER-ENV-SECRET-91bc"
	t.Setenv("SITEHOST_TEST_SERVER_SECRET", serverSecret)

	repo := gittest.New(t, "testdata/blog")
	// Symlinks to files and directories outside the repo.
	for link, target := range map[string]string{
		"static/hostname":   "/etc/hostname",
		"static/secret.txt": filepath.Join(outside, "secret.txt"),
		"static/outside":    outside,
		"content/leak.md":   filepath.Join(outside, "secret.txt"),
	} {
		if err := os.Symlink(target, filepath.Join(repo.Work, link)); err != nil {
			t.Fatal(err)
		}
	}
	// Templates that read outside the site.
	repo.Write("layouts/home.html", `{{ define "main" }}<h1>{{ site.Title }}</h1>
abs=[{{ readFile "`+filepath.Join(outside, "secret.txt")+`" }}]
rel=[{{ readFile "../../../../../../../../`+strings.TrimPrefix(filepath.Join(outside, "secret.txt"), "/")+`" }}]
host=[{{ readFile "/etc/hostname" }}]
{{ end }}`)
	repo.Commit("Try to leak files")

	data := t.TempDir()
	srv := startServer(t, testConfig(t, data, siteYAML(repo.URL())), map[string]string{"SITEHOST_TEST_SERVER_SECRET": serverSecret})
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if st.State != site.Synced {
		t.Fatalf("site with symlinks should still build: %+v", st)
	}
	home := get(t, srv, "blog.test", "/")
	if !strings.Contains(home.body, "abs=[]") || !strings.Contains(home.body, "rel=[]") || !strings.Contains(home.body, "host=[]") {
		t.Errorf("readFile outside the site returned content: %q", home.body)
	}
	for _, p := range []string{"/hostname", "/secret.txt", "/outside/secret.txt", "/leak/"} {
		if r := get(t, srv, "blog.test", p); r.status != 404 {
			t.Errorf("%s: %d, want 404 (symlink published)", p, r.status)
		}
	}
	hostname, _ := os.ReadFile("/etc/hostname")
	if f := storeContains(t, data, outsideSecret); f != "" {
		t.Errorf("outside file content published in %s", f)
	}
	if h := strings.TrimSpace(string(hostname)); len(h) >= 6 {
		if f := storeContains(t, filepath.Join(data, "store", "blobs"), h); f != "" {
			t.Errorf("/etc/hostname content published in %s", f)
		}
	}

	// getenv of a server secret: denied, the build fails, nothing leaks.
	repo.Write("layouts/home.html", `{{ define "main" }}secret=[{{ getenv "SITEHOST_TEST_SERVER_SECRET" }}]{{ end }}`)
	repo.Commit("Try to read a server secret")
	syncSite(t, srv, "blog")
	if f := storeContains(t, data, serverSecret); f != "" {
		t.Errorf("server secret published in %s", f)
	}
	if body := get(t, srv, "blog.test", "/").body; strings.Contains(body, serverSecret) {
		t.Errorf("server secret served: %q", body)
	}

	// A module mount of an absolute path outside the checkout is refused.
	repo.Write("layouts/home.html", `{{ define "main" }}ok{{ end }}`)
	repo.Write("hugo.toml", "title = \"E2E Blog\"\n[[module.mounts]]\nsource = \""+outside+"\"\ntarget = \"static/escaped\"\n[[module.mounts]]\nsource = \"static\"\ntarget = \"static\"\n")
	repo.Commit("Mount a host directory")
	syncSite(t, srv, "blog")
	st, _ = srv.loop.SiteStatus("blog")
	if st.State != site.Failed || !strings.Contains(st.Error, "outside the site") {
		t.Errorf("absolute mount: status %+v, want Failed naming the mount", st)
	}
	if f := storeContains(t, data, outsideSecret); f != "" {
		t.Errorf("mounted outside file published in %s", f)
	}
}

// TestSCSSDartSass: a site asking for transpiler dartsass fails, saying
// how to enable it, on a server without Dart Sass; with
// server.build.dart_sass set it builds, the CSS made by Dart Sass (math.div
// and the module system, which LibSass lacks).
func TestSCSSDartSass(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	repo.Write("assets/main.scss", "@use \"sass:math\";\n.box { width: math.div(10px, 2); }\n")
	repo.Write("layouts/home.html", "{{ define \"main\" }}{{ $css := resources.Get \"main.scss\" | css.Sass (dict \"transpiler\" \"dartsass\" \"targetPath\" \"main.css\") }}<link rel=stylesheet href=\"{{ $css.RelPermalink }}\">{{ end }}\n")
	repo.Commit("Style with Dart Sass")

	// No dart_sass and no PATH (the test server's environment is empty).
	srv := startServer(t, testConfig(t, t.TempDir(), siteYAML(repo.URL())), nil)
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if st.State != site.Failed || !strings.Contains(st.Error, "transpiler dartsass") || !strings.Contains(st.Error, "server.build.dart_sass") {
		t.Fatalf("without Dart Sass: %+v; want a failure naming the transpiler and the setting", st)
	}

	sass := requireDartSass(t)
	ts := startServerUntil(t, testConfig(t, t.TempDir(), siteYAML(repo.URL()), "  build: {dart_sass: "+strconv.Quote(sass)+"}\n"), nil, serverOptions{})
	syncSite(t, ts.server, "blog")
	if st, _ := ts.loop.SiteStatus("blog"); st.State != site.Synced {
		t.Fatalf("status %+v", st)
	}
	if got := get(t, ts.server, "blog.test", "/main.css"); got.status != 200 || !strings.Contains(got.body, "width: 5px") {
		t.Errorf("main.css: %d %q", got.status, got.body)
	}
	if !strings.Contains(ts.logs.String(), "Dart Sass for builds") {
		t.Errorf("the server does not log the Dart Sass it found")
	}
}

// requireDartSass is the Dart Sass CI installs (.ci/run exports its path);
// the test skips locally without it.
func requireDartSass(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SITEHOST_DART_SASS")
	if p == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI installs Dart Sass and sets SITEHOST_DART_SASS (.ci/run)")
		}
		t.Skip("no Dart Sass: set SITEHOST_DART_SASS (as .ci/run does)")
	}
	return p
}

func postJSON(t *testing.T, url, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func apiGet(t *testing.T, srv *server, path, token string, want int, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.adminLn.Addr().String()+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d", path, resp.StatusCode, want)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBuildTimeoutHolds: a template that never ends (here, eight billion
// iterations) is killed at server.build.timeout with everything it
// started; the failure says it timed out, and the live deploy serves on.
func TestBuildTimeoutHolds(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL()), "  build: {timeout: 15s}\n")
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "blog")
	live, _ := srv.loop.SiteStatus("blog")

	repo.Write("layouts/home.html", "{{ define \"main\" }}{{ range seq 2000 }}{{ range seq 2000 }}{{ range seq 2000 }}{{ end }}{{ end }}{{ end }}{{ end }}\n")
	hang := repo.Commit("A home page that never finishes")
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if st.State != site.Failed || st.FailedAt != site.Commit(hang) || !strings.Contains(st.Error, "timed out after 15s") {
		t.Fatalf("after the hanging commit: %+v; want Failed at %s, timed out after 15s", st, hang)
	}
	if st.LiveDeploy != live.LiveDeploy {
		t.Errorf("live deploy %s, want %s still", st.LiveDeploy, live.LiveDeploy)
	}
	if got := get(t, srv, "blog.test", "/"); got.status != 200 || !strings.Contains(got.body, "Version one") {
		t.Errorf("the live deploy no longer serves: %d %q", got.status, got.body)
	}
}

// TestSCSSLibSass: a site that transpiles SCSS with toCSS (Hugo's default
// transpiler, LibSass) builds with sitehost's extended build, as the
// README's commands make it; a build without it fails with a message
// saying how to get it.
func TestSCSSLibSass(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	repo.Write("assets/main.scss", "$accent: #0a7;\nbody { a { color: $accent; } }\n")
	repo.Write("layouts/home.html", "{{ define \"main\" }}{{ $css := resources.Get \"main.scss\" | toCSS }}<link rel=stylesheet href=\"{{ $css.RelPermalink }}\">{{ end }}\n")
	repo.Commit("Style with SCSS")
	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL()))
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if !hugochild.Extended() {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs the tests with -tags extended (LibSass): the README's test command says so")
		}
		if st.State != site.Failed || !strings.Contains(st.Error, "-tags extended") {
			t.Fatalf("without LibSass: %+v; want a failure saying how to get it", st)
		}
		t.Skip("this test binary has no LibSass (go test -tags extended): the hint was checked")
	}
	if st.State != site.Synced {
		t.Fatalf("status %+v", st)
	}
	if got := get(t, srv, "blog.test", "/main.css"); got.status != 200 || !strings.Contains(got.body, "body a") || !strings.Contains(got.body, "#0a7") {
		t.Errorf("main.css: %d %q", got.status, got.body)
	}
}
