package main

// Push→live and revert→live benchmarks (bench/README.md has the figures and
// how to read them). They run the whole server in process, against a real
// bare git repository and real Hugo builds in the child process, exactly as
// the end-to-end tests do. Run them with a fixed iteration count:
//
//	go test -run XXX -bench 'PushToLive|RevertToLive' -benchtime 10x -count 1 ./cmd/sitehost
//
// They use b.Loop, so the setup (repository, server, first build) runs once
// per benchmark and is not timed; -benchtime 10x gives the median of 10.
// Timings are reported, never asserted.

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

const (
	benchPosts = 200
	benchTags  = 20
	benchHost  = "blog.test"
)

// BenchmarkPushToLive measures commit pushed → new content served: the
// generic webhook is POSTed the moment the push returns, as a CI job would,
// and the edited page is polled every 5 ms until it shows the new text.
// After each iteration (timer stopped) the same tree is built once more by
// the same Hugo child the pipeline runs, with nothing else around it: the
// bare build the overhead is measured against.
func BenchmarkPushToLive(b *testing.B) {
	repo := gittest.New(b, "")
	writeBenchSite(b, repo.Work)
	repo.Commit("Generated site")

	data := b.TempDir()
	cfg := testConfig(b, data, siteYAML(repo.URL()))
	srv := startServer(b, cfg, nil)
	benchSync(b, srv) // the first build: not timed

	sc := cfg.Sites[0]
	builder, err := build.New(build.Options{})
	if err != nil {
		b.Fatal(err)
	}
	bareCache := filepath.Join(b.TempDir(), "hugo-cache") // kept between builds, as the pipeline's is
	bare := func(i int, commit string) time.Duration {
		dir := filepath.Join(b.TempDir(), fmt.Sprintf("bare-%d", i))
		src := filepath.Join(dir, "src")
		benchCopyTree(b, repo.Work, src)
		req := build.Request{
			Site: "bench", Src: src, Out: filepath.Join(dir, "out"), BaseURL: srv.channelURL(sc.Name, site.Production),
			CacheDir: bareCache,
			Settings: build.Settings{Tool: sc.Build.Tool, Environment: sc.Build.Environment, Minify: sc.Build.MinifyOn(), Env: sc.Build.Env},
			// The same git history the pipeline's build reads, through the same shim.
			Git: &build.GitHistory{Dir: filepath.Join(data, "git", string(sc.Name)), Commit: commit},
		}
		start := time.Now()
		_, err := builder.Build(context.Background(), req)
		d := time.Since(start)
		if err != nil {
			b.Fatalf("bare hugo build: %v", err)
		}
		os.RemoveAll(dir)
		return d
	}
	// One bare build before measuring, so both sides start with a warm
	// Hugo cache and page cache.
	bare(-1, repo.Git(repo.Work, "rev-parse", "HEAD"))

	var live, hugo, inPipeline []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		n := (i * 37) % benchPosts
		marker := fmt.Sprintf("bench-push-%d-%d", i, time.Now().UnixNano())
		repo.Write(benchPostPath(n), benchPost(n, marker))
		commit := repo.Commit(fmt.Sprintf("Edit post %d (%s)", n, marker))
		b.StartTimer()

		start := time.Now()
		benchHook(b, srv)
		benchWaitServed(b, srv, benchPostURL(n), marker, commit)
		live = append(live, time.Since(start))

		b.StopTimer()
		st := benchWaitSynced(b, srv, commit)
		m, err := srv.publisher.Manifest(context.Background(), sc.Name, st.LiveDeploy)
		if err != nil {
			b.Fatal(err)
		}
		inPipeline = append(inPipeline, m.Build.Duration)
		hugo = append(hugo, bare(i, commit))
		i++
		b.StartTimer()
	}
	b.StopTimer()

	b.ReportMetric(benchMS(benchMedian(live)), "ms-median/push-live")
	b.ReportMetric(benchMS(benchMedian(hugo)), "ms-median/hugo-build")
	b.ReportMetric(benchMS(benchMedian(live))-benchMS(benchMedian(hugo)), "ms-overhead")
	b.ReportMetric(benchMS(benchMedian(inPipeline)), "ms-median/pipeline-build")
	// The overhead without run-to-run noise in Hugo's own time: each push
	// minus the Hugo build inside that very push.
	outside := make([]time.Duration, len(live))
	for i := range live {
		outside[i] = live[i] - inPipeline[i]
	}
	b.ReportMetric(benchMS(benchMedian(outside)), "ms-median/outside-build")
	b.Logf("push→live (ms): %s", benchFmtMS(live))
	b.Logf("bare hugo (ms): %s", benchFmtMS(hugo))
	b.Logf("hugo in pipeline (ms): %s", benchFmtMS(inPipeline))
	b.Logf("builds: %d", srv.loop.Builds())
}

// BenchmarkRevertToLive measures a revert pushed → the earlier content
// served. Every iteration reverts HEAD, so the site alternates between two
// trees that were both built before: none may be built again.
func BenchmarkRevertToLive(b *testing.B) {
	repo := gittest.New(b, "")
	writeBenchSite(b, repo.Work)
	repo.Commit("Generated site")

	cfg := testConfig(b, b.TempDir(), siteYAML(repo.URL()))
	srv := startServer(b, cfg, nil)
	benchSync(b, srv)

	// A second tree, built once and live: the first revert goes back from it.
	const n = 42
	markers := [2]string{benchMarker(n), "bench-revert-changed"}
	repo.Write(benchPostPath(n), benchPost(n, markers[1]))
	repo.Commit("Change post 42")
	benchSync(b, srv)
	builds := srv.loop.Builds()

	var live []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		commit := repo.Revert("HEAD")
		want := markers[i%2] // odd iterations revert the revert
		b.StartTimer()

		start := time.Now()
		benchHook(b, srv)
		benchWaitServed(b, srv, benchPostURL(n), want, commit)
		live = append(live, time.Since(start))

		b.StopTimer()
		benchWaitSynced(b, srv, commit)
		if got := srv.loop.Builds(); got != builds {
			b.Fatalf("revert %d built %d times: a tree built before must be reused", i, got-builds)
		}
		i++
		b.StartTimer()
	}
	b.StopTimer()

	b.ReportMetric(benchMS(benchMedian(live)), "ms-median/revert-live")
	b.Logf("revert→live (ms): %s", benchFmtMS(live))
}

// writeBenchSite writes a theme-less Hugo site of benchPosts posts over
// benchTags tags into dir.
func writeBenchSite(tb testing.TB, dir string) {
	tb.Helper()
	files := map[string]string{
		"hugo.toml": `title = "Bench Blog"
enableGitInfo = true
[taxonomies]
  tag = "tags"
`,
		"layouts/baseof.html": `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ .Title }} · {{ site.Title }}</title>
<link rel="stylesheet" href="{{ "css/site.css" | relURL }}"></head>
<body><header><a href="{{ "/" | relURL }}">{{ site.Title }}</a> · <a href="{{ "posts/" | relURL }}">Posts</a> · <a href="{{ "tags/" | relURL }}">Tags</a></header>
<main>{{ block "main" . }}{{ end }}</main>
<footer>{{ with .GitInfo }}commit={{ .AbbreviatedHash }} lastmod={{ $.Lastmod.Format "2006-01-02" }}{{ end }}</footer>
</body></html>
`,
		"layouts/home.html": `{{ define "main" }}<h1>{{ site.Title }}</h1>{{ .Content }}
<ul>{{ range first 20 site.RegularPages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a> <time>{{ .Date.Format "2006-01-02" }}</time><p>{{ .Summary }}</p></li>{{ end }}</ul>{{ end }}
`,
		"layouts/page.html": `{{ define "main" }}<article><h1>{{ .Title }}</h1><time>{{ .Date.Format "January 2, 2006" }}</time>
<ul class="tags">{{ range .GetTerms "tags" }}<li><a href="{{ .RelPermalink }}">{{ .LinkTitle }}</a></li>{{ end }}</ul>
{{ .Content }}
<nav>{{ with .PrevInSection }}<a href="{{ .RelPermalink }}">{{ .Title }}</a>{{ end }} {{ with .NextInSection }}<a href="{{ .RelPermalink }}">{{ .Title }}</a>{{ end }}</nav></article>{{ end }}
`,
		"layouts/section.html": `{{ define "main" }}<h1>{{ .Title }}</h1>
<ul>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a> <time>{{ .Date.Format "2006-01-02" }}</time></li>{{ end }}</ul>{{ end }}
`,
		"layouts/taxonomy.html": `{{ define "main" }}<h1>{{ .Title }}</h1>
<ul>{{ range .Data.Terms.ByCount }}<li><a href="{{ .Page.RelPermalink }}">{{ .Page.Title }}</a> ({{ .Count }})</li>{{ end }}</ul>{{ end }}
`,
		"layouts/term.html": `{{ define "main" }}<h1>Tagged “{{ .Title }}”</h1>
<ul>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a><p>{{ .Summary }}</p></li>{{ end }}</ul>{{ end }}
`,
		"layouts/404.html":        `{{ define "main" }}<h1>Not found</h1>{{ end }}` + "\n",
		"content/_index.md":       "---\ntitle: Home\n---\nA generated blog for the push→live benchmarks.\n",
		"content/posts/_index.md": "---\ntitle: Posts\n---\n",
		"static/css/site.css": `body { font: 16px/1.5 system-ui, sans-serif; color: #222; max-width: 42rem; margin: 2rem auto; }
header, footer { color: #666; font-size: .9rem; }
a { color: #0645ad; }
ul.tags { list-style: none; padding: 0; display: flex; gap: .5rem; }
time { color: #888; }
`,
	}
	for i := range benchPosts {
		files[benchPostPath(i)] = benchPost(i, benchMarker(i))
	}
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func benchPostPath(i int) string { return fmt.Sprintf("content/posts/post-%03d.md", i) }
func benchPostURL(i int) string  { return fmt.Sprintf("/posts/post-%03d/", i) }
func benchMarker(i int) string   { return fmt.Sprintf("bench-original-%03d", i) }

var benchWords = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do
eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud
exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure in
reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat
cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum static
site git deploy build hugo content page server cache commit tree revert publish`)

// benchPost is post i: deterministic text (the same i always gives the same
// file) with marker as its last paragraph.
func benchPost(i int, marker string) string {
	r := rand.New(rand.NewPCG(uint64(i), 0x5174))
	var sb strings.Builder
	date := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC).AddDate(0, 0, i)
	t1, t2, t3 := i%benchTags, (i*7+3)%benchTags, (i*13+5)%benchTags
	fmt.Fprintf(&sb, "---\ntitle: \"Post %d: %s %s\"\ndate: %s\ntags: [\"tag-%02d\", \"tag-%02d\", \"tag-%02d\"]\n---\n\n",
		i, benchWords[r.IntN(len(benchWords))], benchWords[r.IntN(len(benchWords))], date.Format(time.RFC3339), t1, t2, t3)
	for p := range 3 + r.IntN(3) {
		if p == 1 {
			fmt.Fprintf(&sb, "## Section %d\n\n", p)
		}
		for w := range 50 + r.IntN(40) {
			if w > 0 {
				sb.WriteByte(' ')
			}
			word := benchWords[r.IntN(len(benchWords))]
			if r.IntN(25) == 0 {
				word = "**" + word + "**"
			}
			sb.WriteString(word)
		}
		sb.WriteString(".\n\n")
	}
	fmt.Fprintf(&sb, "- first point\n- second point\n\n%s\n", marker)
	return sb.String()
}

// benchSync runs a sync to completion and requires it to succeed.
func benchSync(b *testing.B, srv *server) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := srv.loop.Sync(ctx, "blog")
	if err != nil {
		b.Fatal(err)
	}
	if st.State != site.Synced {
		b.Fatalf("sync: %+v", st)
	}
}

// benchHook announces a push the way CI does: POST /hooks/generic.
func benchHook(b *testing.B, srv *server) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.adminLn.Addr().String()+"/hooks/generic", strings.NewReader(`{"site":"blog"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := noRedirects.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("generic hook: %d, want 202", resp.StatusCode)
	}
}

// benchWaitServed polls path every 5 ms until its body contains want. A failed
// sync of commit ends the benchmark at once instead of at the deadline.
func benchWaitServed(b *testing.B, srv *server, path, want, commit string) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := get(b, srv, benchHost, path)
		if r.status == http.StatusOK && strings.Contains(r.body, want) {
			return
		}
		if st, _ := srv.loop.SiteStatus("blog"); st.State == site.Failed && st.FailedAt == site.Commit(commit) {
			b.Fatalf("sync of %s failed: %s", commit, st.Error)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not serve %q within 2 minutes (status %d)", path, want, r.status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// benchWaitSynced waits until the loop has finished with commit, so the next
// iteration starts from an idle loop.
func benchWaitSynced(b *testing.B, srv *server, commit string) reconcile.Status {
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := srv.loop.SiteStatus("blog")
		if st.LiveCommit == site.Commit(commit) && st.State == site.Synced {
			return st
		}
		if time.Now().After(deadline) {
			b.Fatalf("loop not synced at %s: %+v", commit, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// copyTree copies the regular files of the work tree, without .git: the
// tree the pipeline exports.
func benchCopyTree(tb testing.TB, from, to string) {
	tb.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func benchMedian(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func benchMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func benchFmtMS(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.0f", benchMS(d))
	}
	return strings.Join(parts, " ")
}
