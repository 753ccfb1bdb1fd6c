package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/hugorelease/releasetest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestHugoVersionPerSite: a site that uses what Hugo v0.156.0 removed
// builds with the release it asks for — by HUGO_VERSION in its
// netlify.toml, with Netlify's contexts, or by build.hugo_version in
// sites.yaml, which wins — fetched once from a release mirror laid out as
// Hugo's GitHub releases, with a real older Hugo in it.
func TestHugoVersionPerSite(t *testing.T) {
	old := releasetest.Hugo(t, releasetest.OldHugo)
	mirror := releasetest.NewMirror(t, map[string]string{releasetest.OldHugo: old})

	repo := gittest.New(t, "testdata/blog")
	repo.Git(repo.Work, "push", "-q", "origin", "HEAD:refs/heads/staging")
	repo.Write("assets/main.scss", "$accent: #0a7;\nbody { a { color: $accent; } }\n")
	// resources.ToCSS was removed in v0.156.0: only the old release has it.
	layout := `{{ define "main" }}hugo=[{{ hugo.Version }}] greeting=[{{ site.Params.greeting }}] base=[{{ site.BaseURL }}]
{{ if lt hugo.Version "0.156.0" }}{{ $css := resources.Get "main.scss" | resources.ToCSS }}<link rel=stylesheet href="{{ $css.RelPermalink }}">{{ end }}
{{ end }}`
	repo.Write("layouts/home.html", layout)
	repo.Write("layouts/index.html", layout) // what releases before v0.146 look up first
	repo.Write("netlify.toml", fmt.Sprintf(`[build]
  command = "hugo --gc --minify"
[build.environment]
  HUGO_VERSION = "%s"
  HUGO_PARAMS_GREETING = "from netlify.toml"
  HUGO_BASEURL = "https://wrong.example/"
  NODE_VERSION = "18"
[context.branch-deploy.environment]
  HUGO_VERSION = "%s"
[context.changes.environment]
  HUGO_VERSION = "%s"
`, releasetest.OldHugo, build.HugoVersion, build.HugoVersion))
	repo.Commit("Pin Hugo in netlify.toml, as on Netlify")
	repo.Git(repo.Work, "push", "-q", "origin", "HEAD:refs/heads/staging")

	// A second repository without netlify.toml: sites.yaml alone names the
	// old release.
	plain := gittest.New(t, "testdata/blog")
	plain.Write("assets/main.scss", "$accent: #0a7;\nbody { a { color: $accent; } }\n")
	plain.Write("layouts/home.html", layout)
	plain.Write("layouts/index.html", layout)
	plain.Commit("Style with resources.ToCSS")

	sites := `  - name: old
    repo: ` + plain.URL() + `
    domains: [old.test]
    build: { hugo_version: "` + releasetest.OldHugo + `" }
  - name: blog
    repo: ` + repo.URL() + `
    domains: [blog.test]
    branches: [staging]
    webhook: { secret_env: TEST_HOOK_SECRET }
  - name: pinned
    repo: ` + repo.URL() + `
    domains: [pinned.test]
    build: { hugo_version: "v` + build.HugoVersion + `" }
`
	cfg := testConfig(t, t.TempDir(), sites, "  build:\n    hugo_releases: \""+mirror.URL+"\"\n")
	srv := startServer(t, cfg, map[string]string{"TEST_TOKEN": testToken, "TEST_HOOK_SECRET": testHookSecret})
	syncSite(t, srv, "blog")
	syncSite(t, srv, "pinned")
	syncSite(t, srv, "old")

	// Production: netlify.toml's [build.environment] names the old release.
	home := get(t, srv, "blog.test", "/")
	if home.status != 200 || !strings.Contains(home.body, "hugo=["+releasetest.OldHugo+"]") {
		t.Fatalf("production: %d %q\n%s", home.status, home.body, status(t, srv, "blog"))
	}
	if css := get(t, srv, "blog.test", "/main.css"); css.status != 200 || !strings.Contains(css.body, "#0a7") {
		t.Errorf("main.css from LibSass in the fetched release: %d %q", css.status, css.body)
	}
	// netlify.toml's build environment reaches Hugo as on Netlify (HUGO_*
	// is config), except what sitehost decides: the base URL stays ours.
	if !strings.Contains(home.body, "greeting=[from netlify.toml]") || !strings.Contains(home.body, "base=[http://blog.test:") {
		t.Errorf("production without netlify.toml's HUGO_PARAMS_GREETING, or with its HUGO_BASEURL: %q", home.body)
	}
	// A branch deploy: [context.branch-deploy.environment] wins.
	if br := get(t, srv, "staging--blog.localhost", "/"); br.status != 200 || !strings.Contains(br.body, "hugo=["+build.HugoVersion+"]") {
		t.Errorf("branch deploy: %d %q", br.status, br.body)
	}
	// sites.yaml's build.hugo_version wins over netlify.toml.
	if p := get(t, srv, "pinned.test", "/"); p.status != 200 || !strings.Contains(p.body, "hugo=["+build.HugoVersion+"]") {
		t.Errorf("pinned site: %d %q", p.status, p.body)
	}
	if o := get(t, srv, "old.test", "/"); o.status != 200 || !strings.Contains(o.body, "hugo=["+releasetest.OldHugo+"]") {
		t.Errorf("build.hugo_version in sites.yaml: %d %q", o.status, o.body)
	}
	if css := get(t, srv, "old.test", "/main.css"); css.status != 200 || !strings.Contains(css.body, "#0a7") {
		t.Errorf("old.test main.css: %d %q", css.status, css.body)
	}
	// Fetched once per machine: the checksums file and the tarball.
	if n := mirror.Requests(); n != 2 {
		t.Errorf("mirror answered %d requests, want 2", n)
	}

	// The status and the deploy say which Hugo built it.
	var st api.Site
	apiGet(t, srv, "/api/v1/sites/blog", testToken, 200, &st)
	hugoOf := map[site.Channel]string{}
	for _, c := range st.Channels {
		hugoOf[c.Name] = c.Hugo
		if !strings.Contains(c.Sandbox, "landlock") && os.Getenv("CI") == "true" {
			t.Errorf("channel %s: sandbox %q, want the mechanisms in force", c.Name, c.Sandbox)
		}
	}
	if hugoOf[site.Production] != releasetest.OldHugo || hugoOf[site.Branch("staging")] != build.HugoVersion {
		t.Errorf("status says hugo %v", hugoOf)
	}
	var d api.DeployDetail
	apiGet(t, srv, "/api/v1/sites/blog/deploys/"+string(st.LiveDeploy), testToken, 200, &d)
	if d.Build.Hugo != releasetest.OldHugo {
		t.Errorf("deploy says hugo %q", d.Build.Hugo)
	}
	log := getText(t, srv, "/api/v1/sites/blog/deploys/"+string(st.LiveDeploy)+"/log", testToken)
	for _, want := range []string{
		"Building with Hugo v" + releasetest.OldHugo + " (a release, asked for by HUGO_VERSION in netlify.toml",
		"Environment from netlify.toml: HUGO_PARAMS_GREETING\n",
		"Not passed from netlify.toml: HUGO_BASEURL (sitehost decides it); NODE_VERSION (not a Hugo setting)\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("build log lacks %q:\n%s", want, log)
		}
	}
	// Whichever site's build came first fetched it; the others used it.
	if !strings.Contains(log, "Fetched Hugo v"+releasetest.OldHugo) && !strings.Contains(log, "Using Hugo v"+releasetest.OldHugo+" fetched before") {
		t.Errorf("build log does not say where Hugo came from:\n%s", log)
	}

	// A pull request from branch "changes" (the payload's head ref): its
	// preview gets deploy-preview and that branch's own context, as on
	// Netlify, so [context.changes] wins over [build.environment].
	head := pushPR(repo, 3, "content/_index.md", "---\ntitle: Home\n---\nPreview.\n")
	if code := sendGitHub(t, srv, "pull_request", githubPayload(t, "pull_request.opened.json", repo.URL(), 3, head)); code != http.StatusAccepted {
		t.Fatalf("opened webhook: %d, want 202", code)
	}
	waitFor(t, func() bool { return strings.Contains(get(t, srv, "pr-3--blog.localhost", "/").body, "hugo=[") })
	if pr := get(t, srv, "pr-3--blog.localhost", "/"); !strings.Contains(pr.body, "hugo=["+build.HugoVersion+"]") {
		t.Errorf("preview of a pull request from branch changes: %q, want the Hugo its [context.changes] names", pr.body)
	}

	// A version that does not exist: the site's to fix, and what is live
	// keeps serving.
	repo.Write("netlify.toml", "[build.environment]\n  HUGO_VERSION = \"0.123.99\"\n")
	repo.Commit("Pin a Hugo that does not exist")
	syncSite(t, srv, "blog")
	s, _ := srv.loop.SiteStatus("blog")
	if s.State != site.Failed || !strings.Contains(s.Error, "hugo v0.123.99 does not exist") {
		t.Errorf("unknown version: %+v", s)
	}
	if home := get(t, srv, "blog.test", "/"); !strings.Contains(home.body, "hugo=["+releasetest.OldHugo+"]") {
		t.Errorf("live deploy lost: %q", home.body)
	}
}

// getText GETs an admin API path that answers text.
func getText(t *testing.T, srv *server, path, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.adminLn.Addr().String()+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return string(body)
}
