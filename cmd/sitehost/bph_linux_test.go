package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/site"
)

// bphSites is the fleet size of BenchmarkBuildsPerHour; SITEHOST_BPH_SITES
// changes it (the issue asks for 50, which is long on a small machine).
// SITEHOST_BPH_SITE=bench makes every site the 200-post benchmark site of
// bench_test.go instead of a small one.
const bphSites = 50

// BenchmarkBuildsPerHour: a fleet of small Hugo sites (one repository, so
// one push concerns them all) on one MinIO bucket, built by 1, 2 and 3
// builder processes (role builder, build concurrency 1 each). Every
// iteration pushes a commit, asks every site to sync through the first
// builder's API (markers the owners take) and times push → every site's
// production pointer at the new commit. bench/README.md has the figures.
//
//	go test -tags extended -run XXX -bench BuildsPerHour -benchtime 1x -timeout 60m ./cmd/sitehost
func BenchmarkBuildsPerHour(b *testing.B) {
	n := bphSites
	if v := os.Getenv("SITEHOST_BPH_SITES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("SITEHOST_BPH_SITES=%q: want a positive number", v)
		}
	}
	write := writeSmallHugoSite
	switch v := os.Getenv("SITEHOST_BPH_SITE"); v {
	case "", "small":
	case "bench":
		write = writeBenchSiteVersion
	default:
		b.Fatalf("SITEHOST_BPH_SITE=%q: want small or bench", v)
	}
	m := miniotest.Start(b)
	for _, builders := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("builders=%d", builders), func(b *testing.B) {
			benchBuildsPerHour(b, m, n, builders, write)
		})
	}
}

func benchBuildsPerHour(b *testing.B, m *miniotest.Server, n, builders int, write func(testing.TB, string, int)) {
	bucket := m.Bucket(b)
	repo := gittest.New(b, "")
	write(b, repo.Work, 0)
	v := repo.Commit("v0")
	sites := hugoSitesYAML(n, repo.URL())
	// Polling off: builds come from the sync markers alone, so n sites
	// polling git every second do not eat the CPU being measured.
	server := "  role: builder\n  poll_interval: 0s\n  lease_time: 5s\n  build: {concurrency: 1}\n"
	var ps []*builderProcess
	for range builders {
		ps = append(ps, startFleetProcess(b, m, m.Endpoint, bucket, sites, server))
	}
	fb := &fleetBucket{tb: b, client: m.Client(b), bucket: bucket, n: n}
	allLive := func(c string) func() bool { return fb.live(site.Commit(c), n) }
	// Not timed: each owner's first build of every site, and the leases
	// settled, so no site changes hands during a round.
	waitUntil(b, 30*time.Minute, allLive(v))
	waitUntil(b, 5*time.Minute, fb.spread(builders))

	b.Logf("%d builders, %d sites: load before the rounds %s", builders, n, loadavg())
	var took, hugo, attempt []time.Duration
	round := 0
	for b.Loop() {
		round++
		b.StopTimer()
		write(b, repo.Work, round)
		b.StartTimer()
		v = repo.Commit(fmt.Sprintf("v%d", round))
		pushed := time.Now()
		from := make([]int, len(ps))
		for i, p := range ps {
			from[i] = len(p.out.String())
		}
		for i := range n {
			syncVia(b, ps[0].admin, fmt.Sprintf("s%02d", i))
		}
		waitUntil(b, 30*time.Minute, allLive(v))
		took = append(took, time.Since(pushed))
		b.StopTimer()
		h, a := roundTimes(b, ps, from, site.Commit(v).Short())
		hugo, attempt = append(hugo, h...), append(attempt, a...)
		built := logged(ps, "building", site.Commit(v).Short())
		for i := range n {
			if s := fmt.Sprintf("s%02d", i); built[s] != 1 {
				b.Errorf("%s built %d times for %s, want once", s, built[s], v[:7])
			}
		}
		b.StartTimer()
	}
	var total time.Duration
	for _, d := range took {
		total += d
	}
	per := total / time.Duration(len(took))
	b.ReportMetric(per.Seconds(), "s/round")
	b.ReportMetric(float64(n)/per.Hours(), "builds/hour")
	b.ReportMetric(float64(n), "sites")
	b.ReportMetric(benchMS(benchMedian(hugo)), "ms-median/hugo-build")
	b.ReportMetric(benchMS(benchMedian(attempt)), "ms-median/attempt")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d builders, %d sites: rounds %v, load after %s", builders, n, took, loadavg())
}

// roundTimes reads, from the output of ps after the offsets from, the
// Hugo build time of each deploy ("uploaded") and the whole attempt of
// each site going live at commit ("live": fetch to pointer written). It
// fails the benchmark if a build of commit was not a Hugo build.
func roundTimes(tb testing.TB, ps []*builderProcess, from []int, commit string) (hugo, attempt []time.Duration) {
	tb.Helper()
	for i, p := range ps {
		for line := range strings.Lines(p.out.String()[from[i]:]) {
			var l struct{ Msg, Commit, Tool, Build, Took string }
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			switch {
			case l.Msg == "building" && l.Commit == commit && l.Tool != "hugo":
				tb.Fatalf("built %s with tool %q, want hugo", commit, l.Tool)
			case l.Msg == "uploaded":
				if d, err := time.ParseDuration(l.Build); err == nil {
					hugo = append(hugo, d)
				}
			case l.Msg == "live" && l.Commit == commit:
				if d, err := time.ParseDuration(l.Took); err == nil {
					attempt = append(attempt, d)
				}
			}
		}
	}
	return hugo, attempt
}

// loadavg is the machine's load (1, 5, 15 min) from /proc/loadavg: the
// machine may be shared, and the figures mean little without it.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// syncVia asks for a sync of site s through the admin API at addr,
// without waiting for it.
func syncVia(tb testing.TB, addr, s string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/sites/"+s+"/sync", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		tb.Fatalf("sync %s: %d, want 202", s, resp.StatusCode)
	}
}

// hugoSitesYAML is n Hugo sites s00… on one repository.
func hugoSitesYAML(n int, repo string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%02d\n    repo: %s\n    domains: [s%02d.test]\n", i, repo, i)
	}
	return b.String()
}

// writeBenchSiteVersion writes the benchmark site into dir at version v:
// the whole site at 0, then one post edited per version.
func writeBenchSiteVersion(tb testing.TB, dir string, v int) {
	tb.Helper()
	if v == 0 {
		writeBenchSite(tb, dir)
		return
	}
	i := v % benchPosts
	if err := os.WriteFile(filepath.Join(dir, benchPostPath(i)), []byte(benchPost(i, fmt.Sprintf("bph-%d", v))), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// writeSmallHugoSite writes a theme-less Hugo site of 10 pages, each
// saying version v, into dir: a site whose build is mostly Hugo's fixed
// cost, so the benchmark measures the fleet rather than Hugo.
func writeSmallHugoSite(tb testing.TB, dir string, version int) {
	tb.Helper()
	v := fmt.Sprintf("v%d", version)
	files := map[string]string{
		"hugo.toml":            "title = \"Small\"\ndisableKinds = [\"taxonomy\", \"term\", \"RSS\", \"sitemap\"]\n",
		"layouts/home.html":    `<h1>{{ site.Title }}</h1>{{ .Content }}<ul>{{ range site.RegularPages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}</ul>` + "\n",
		"layouts/page.html":    `<h1>{{ .Title }}</h1>{{ .Content }}` + "\n",
		"layouts/section.html": `<h1>{{ .Title }}</h1><ul>{{ range .Pages }}<li>{{ .Title }}</li>{{ end }}</ul>` + "\n",
		"content/_index.md":    "---\ntitle: Home\n---\nVersion " + v + ".\n",
	}
	for i := range 10 {
		files[fmt.Sprintf("content/posts/p%02d.md", i)] = fmt.Sprintf("---\ntitle: Page %d\n---\nPage %d of version %s.\n", i, i, v)
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
