package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/build/buildtest"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/npm/npmtest"
	"github.com/sitehost/sitehost/internal/site"
)

// lastLog is the log of the site's newest deploy attempt.
func lastLog(t *testing.T, srv *server, name site.Name) string {
	t.Helper()
	entries := srv.journal.Entries(name)
	if len(entries) == 0 {
		t.Fatal("no deploy attempts")
	}
	e, ok := srv.journal.Find(name, entries[0].Deploy)
	if !ok {
		t.Fatal("newest attempt not found")
	}
	return string(e.Log())
}

// TestTailwindSiteFromCommitToLive: a Tailwind v4 site with a
// package-lock.json goes live with its npm packages installed by the
// server (server.build.npm_registry: a counting proxy); a commit that
// leaves the lockfile alone builds again with no registry request; a
// lockfile naming a package the registry lacks fails the deploy with npm's
// message and the package, and the live deploy stays.
func TestTailwindSiteFromCommitToLive(t *testing.T) {
	node := buildtest.Node(t)
	_, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)
	repo := gittest.New(t, "")
	for name, content := range map[string]string{
		"hugo.toml": "baseURL = 'https://blog.test/'\ndisableKinds = ['page','rss','section','sitemap','taxonomy','term']\n" +
			"[security.exec]\nallow = ['^git$', '^node$', '^tailwindcss$']\n",
		"assets/css/main.css": "@import \"tailwindcss\";\n",
		"layouts/home.html": `<!doctype html><html><head>{{ with resources.Get "css/main.css" | css.TailwindCSS }}<link rel="stylesheet" href="{{ .RelPermalink }}">{{ end }}</head>` +
			`<body><h1 class="text-amber-600 tracking-widest">{{ .Site.Title }}</h1></body></html>` + "\n",
	} {
		repo.Write(name, content)
	}
	npmtest.Site(t, repo.Work, reg, npmExe, node, map[string]any{"devDependencies": map[string]string{
		"tailwindcss": "^4.1.0", "@tailwindcss/cli": "^4.1.0",
	}})
	repo.Commit("A Tailwind site")

	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL()),
		"  build:\n    node: "+node+"\n    npm: "+npmExe+"\n    npm_registry: "+reg.URL+"\n")
	srv := startServer(t, cfg, nil)
	syncSite(t, srv, "blog")
	css := get(t, srv, "blog.test", "/css/main.css")
	if css.status != 200 || !strings.Contains(css.body, ".text-amber-600") || !strings.Contains(css.body, ".tracking-widest") {
		t.Fatalf("/css/main.css: %d %.300q; status %s\n%s", css.status, css.body, status(t, srv, "blog"), lastLog(t, srv, "blog"))
	}
	if log := lastLog(t, srv, "blog"); !strings.Contains(log, "installed with npm ci (no install scripts)") {
		t.Errorf("log does not say npm installed:\n%s", log)
	} else if !strings.Contains(log, "npm: npm ci ran in: ") || strings.Contains(log, "ran in: unsandboxed") {
		t.Errorf("log does not say the sandbox npm ran in:\n%s", log)
	}

	// `sitehost build` installs and builds the same way.
	out := filepath.Join(t.TempDir(), "public")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"build", repo.Work, "-o", out, "-c", cfg.File, "--site", "blog", "--base-url", "https://blog.test/"}, os.Getenv, &stdout, &stderr); err != nil {
		t.Fatalf("sitehost build: %v\n%s", err, stderr.String())
	}
	if built := readFile(t, filepath.Join(out, "css", "main.css")); !strings.Contains(built, ".text-amber-600") {
		t.Errorf("sitehost build's CSS lacks the class: %.300q", built)
	}

	// Same lockfile, new content: a new build, no registry request.
	before := reg.Requests()
	repo.Write("layouts/home.html", strings.Replace(readFile(t, filepath.Join(repo.Work, "layouts/home.html")), "tracking-widest", "italic", 1))
	repo.Commit("Italic title")
	syncSite(t, srv, "blog")
	if n := reg.Requests() - before; n != 0 {
		t.Errorf("the build with an unchanged lockfile made %d registry requests: %v", n, reg.Paths())
	}
	if log := lastLog(t, srv, "blog"); !strings.Contains(log, "the install cached for this lockfile") {
		t.Errorf("log does not say the install was cached:\n%s", log)
	}
	if css := get(t, srv, "blog.test", "/css/main.css"); !strings.Contains(css.body, ".italic") {
		t.Fatalf("/css/main.css after the change: %.300q; status %s", css.body, status(t, srv, "blog"))
	}

	// A package the registry does not have.
	const missing = "sitehost-no-such-package-77e1"
	var lock map[string]any
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(repo.Work, "package-lock.json"))), &lock); err != nil {
		t.Fatal(err)
	}
	lock["packages"].(map[string]any)["node_modules/"+missing] = map[string]any{"version": "1.0.0", "dev": true}
	lock["packages"].(map[string]any)[""].(map[string]any)["devDependencies"].(map[string]any)[missing] = "1.0.0"
	data, _ := json.MarshalIndent(lock, "", "  ")
	repo.Write("package-lock.json", string(data))
	var pkg map[string]any
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(repo.Work, "package.json"))), &pkg); err != nil {
		t.Fatal(err)
	}
	pkg["devDependencies"].(map[string]any)[missing] = "1.0.0"
	data, _ = json.MarshalIndent(pkg, "", "  ")
	repo.Write("package.json", string(data))
	repo.Commit("Depend on a package that does not exist")
	syncSite(t, srv, "blog")
	st, _ := srv.loop.SiteStatus("blog")
	t.Logf("failed as: %s", st.Error)
	if st.State != site.Failed || !strings.Contains(st.Error, "E404") || !strings.Contains(st.Error, missing) {
		t.Errorf("status = %s, want failed with E404 and %s", status(t, srv, "blog"), missing)
	}
	if css := get(t, srv, "blog.test", "/css/main.css"); !strings.Contains(css.body, ".italic") {
		t.Errorf("the live deploy changed: %.300q", css.body)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
