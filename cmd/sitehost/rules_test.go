package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestNetlifyRules publishes a Netlify site from a monorepo — _redirects
// and _headers in the site's folder, netlify.toml at the repository root —
// and serves it as Netlify would, with precompressed variants.
func TestNetlifyRules(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("netlify.toml", "[[redirects]]\nfrom = \"/docs/*\"\nto = \"/manual/:splat\"\nstatus = 302\n")
	repo.Write("web/index.html", "<h1>home</h1>"+strings.Repeat("<p>a page long enough to be worth compressing</p>\n", 60))
	repo.Write("web/manual/intro.html", "intro")
	repo.Write("web/404.html", "not here")
	repo.Write("web/_redirects", "/old /manual/intro 301\n/blog/* /posts/:splat 302\n/broken\n/china/* /china/cn-zh/:splat 302 Language=zh\n")
	repo.Write("web/_headers", "/*\n  X-Frame-Options: DENY\n  Transfer-Encoding: chunked\n")
	first := repo.Commit("Netlify site")

	sites := `  - name: blog
    repo: ` + repo.URL() + `
    path: web
    domains: [blog.test]
    build: {tool: none}
  - name: strict
    repo: ` + repo.URL() + `
    path: web
    domains: [strict.test]
    build: {tool: none}
    rules: {strict: true}
`
	srv := startServer(t, testConfig(t, t.TempDir(), sites), map[string]string{"TEST_TOKEN": testToken})
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	if st.State != site.Synced {
		t.Fatalf("blog: %s", status(t, srv, "blog"))
	}

	tests := []struct {
		path     string
		hdr      []string
		status   int
		location string
		header   map[string]string
	}{
		{path: "/old", status: 301, location: "/manual/intro"},
		{path: "/blog/2024/x?a=1", status: 302, location: "/posts/2024/x?a=1"},
		{path: "/docs/setup", status: 302, location: "/manual/setup"}, // root netlify.toml
		{path: "/", hdr: []string{"Accept-Encoding", "br"}, status: 200, header: map[string]string{
			"Content-Encoding": "br", "Vary": "Accept-Encoding", "X-Frame-Options": "DENY", "Transfer-Encoding": "",
		}},
		{path: "/", hdr: []string{"Accept-Encoding", "identity"}, status: 200, header: map[string]string{"Content-Encoding": ""}},
		{path: "/manual/intro", status: 200, header: map[string]string{"X-Frame-Options": "DENY"}},
		{path: "/china/x", hdr: []string{"Accept-Language", "zh"}, status: 302, location: "/china/cn-zh/x"},
		// Already under the target: Netlify does not redirect (it would loop).
		{path: "/china/cn-zh/x", hdr: []string{"Accept-Language", "zh"}, status: 404},
		{path: "/_redirects", status: 404},
		{path: "/_headers", status: 404},
	}
	for _, tt := range tests {
		r := get(t, srv, "blog.test", tt.path, tt.hdr...)
		if r.status != tt.status || r.header.Get("Location") != tt.location {
			t.Errorf("%s = %d Location %q, want %d %q", tt.path, r.status, r.header.Get("Location"), tt.status, tt.location)
		}
		for k, v := range tt.header {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tt.path, k, got, v)
			}
		}
	}

	// The deploy lists its rule errors with their lines, in the API and the
	// build log.
	var detail api.DeployDetail
	apiGet(t, srv, "/api/v1/sites/blog/deploys/"+string(st.LiveDeploy), testToken, 200, &detail)
	var where []string
	for _, e := range detail.Rules.Errors {
		where = append(where, e.Source+":"+strconv.Itoa(e.Line))
	}
	if detail.Rules.Redirects != 4 || strings.Join(where, " ") != "_redirects:3 _headers:3" {
		t.Errorf("deploy rules: %d redirects, errors at %q; want 4 and _redirects:3 _headers:3", detail.Rules.Redirects, where)
	}
	if log, err := srv.publisher.Log(t.Context(), "blog", st.LiveDeploy); err != nil || !strings.Contains(string(log), "rules: _redirects:3: ") {
		t.Errorf("build log has no rule error (%v):\n%s", err, log)
	}

	// With rules.strict the same commit is not published.
	if _, err := srv.loop.Sync(t.Context(), "strict"); err != nil {
		t.Fatal(err)
	}
	sst, _ := srv.loop.SiteStatus("strict")
	if sst.State != site.Failed || !strings.Contains(sst.Error, "_redirects:3") {
		t.Errorf("strict site: %s", status(t, srv, "strict"))
	}
	if r := get(t, srv, "strict.test", "/"); r.status != 404 {
		t.Errorf("strict site serves %d, want nothing published", r.status)
	}

	// A change to the root netlify.toml alone makes a new deploy: the
	// site's folder is unchanged, but its rules are not.
	repo.Write("netlify.toml", "[[redirects]]\nfrom = \"/docs/*\"\nto = \"/handbook/:splat\"\nstatus = 302\n")
	second := repo.Commit("Rename the manual")
	syncSite(t, srv, "blog")
	st2, _ := srv.loop.SiteStatus("blog")
	if st2.LiveCommit != site.Commit(second) || st2.LiveDeploy == st.LiveDeploy {
		t.Fatalf("after the netlify.toml change: live %s deploy %s (was %s at %s)", st2.LiveCommit.Short(), st2.LiveDeploy, st.LiveDeploy, first[:7])
	}
	if r := get(t, srv, "blog.test", "/docs/setup"); r.header.Get("Location") != "/handbook/setup" {
		t.Errorf("/docs/setup → %q, want the new rule", r.header.Get("Location"))
	}
}
