package dashboard

import (
	"bytes"
	"errors"
	"html"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/site"
)

func TestOverview(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())
	res := get(t, h, "/", login(t, h))
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	mustContain(t, "overview", res.body,
		"<title>Sites · sitehost</title>",
		`<a href="/sites/blog">blog</a>`, `<a href="/sites/docs">docs</a>`,
		`<span class="badge state-synced">Synced</span>`, `<span class="badge state-failed">Failed</span>`,
		`<span class="badge state-progressing">Progressing</span>`,
		// production's live commit: short sha, subject, author, relative time
		`<code class="sha" title="`+string(blogSHA)+`">4f2a9c8</code>`, liveSubject, "Ana Lima",
		`<time datetime="2026-03-14T11:57:00Z" title="2026-03-14 11:57:00 UTC">3 minutes ago</time>`,
		"Document the CLI", "26 hours ago",
		// domains: the primary to the site's URL, the others on their own host
		`<a href="https://blog.example.org/">blog.example.org</a>`,
		`<a href="https://www.blog.example.org/">www.blog.example.org</a>`,
		// previews and branch deploys, with their states
		`<a href="https://pr-7--blog.preview.example.net/">pr-7</a>`,
		`<a href="https://branch-staging--blog.preview.example.net/">branch-staging</a>`,
		// the failed site's error, first line only
		`<p class="error-line">building site: hugo: exit status 1: ERROR render of &#34;/docs/install&#34; failed:`,
		"data-refresh",
	)
	mustNotContain(t, "overview", res.body, "Error: error building site", "No sites configured")
	if strings.Index(res.body, "/sites/blog") > strings.Index(res.body, "/sites/docs") {
		t.Error("sites are not in the Source's order")
	}
	line := regexp.MustCompile(`<p class="error-line">([^<]*)</p>`).FindStringSubmatch(res.body)
	if line == nil || len([]rune(html.UnescapeString(line[1]))) != 200 || !strings.HasSuffix(line[1], "…") {
		t.Errorf("error line not cut to ~200 characters: %v", line)
	}
}

func TestOverviewEmpty(t *testing.T) {
	src := newFakeSource()
	src.sites = nil
	h, _ := newTestHandler(src)
	res := get(t, h, "/", login(t, h))
	mustContain(t, "empty overview", res.body, "No sites configured", "sites.yaml")
}

func TestDomainLinksKeepPort(t *testing.T) {
	got := domainLinks("http://blog.localhost:8080/", []string{"blog.localhost", "www.blog.localhost"})
	want := []link{{"blog.localhost", "http://blog.localhost:8080/"}, {"www.blog.localhost", "http://www.blog.localhost:8080/"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("domainLinks = %v, want %v", got, want)
	}
	if got := domainLinks("", []string{"a.example"}); got[0].URL != "" {
		t.Errorf("no site URL: %v, want text only", got)
	}
}

func TestSitePage(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())
	c := login(t, h)
	res := get(t, h, "/sites/blog", c)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	mustContain(t, "site page", res.body,
		"<title>blog · sitehost</title>",
		"https://github.com/example/blog.git", "<code>main</code>",
		`<form method="post" action="/sites/blog/sync">`, "Sync now",
		// channels: name, state, live commit, URL and live deploy
		`<td>pr-7</td>`, "Try a darker header", `<a href="/sites/blog/deploys/`+string(prID)+`"><code>`+string(prID)+`</code></a>`,
		`<td>branch-staging</td>`,
		// the deploy history, newest first
		`<span class="badge state-building">building</span>`, `<span class="badge state-live">live</span>`,
		`<span class="badge state-ready">ready</span>`, `<span class="badge state-failed">failed</span>`,
		`<a href="/sites/blog/deploys/`+string(liveID)+`#log">log</a>`,
		`<a href="https://`+string(liveID)+`--blog.preview.example.net/">open</a>`,
		"Fix typo in about page", "1.2 s", "980 ms", "3 hours ago", "<td>reused</td>",
		"building site: hugo: exit status 1: ERROR failed to load config",
	)
	mustNotContain(t, "site page", res.body, "Sync requested.")
	rows := strings.Count(res.body[strings.Index(res.body, `id="deploy-history"`):], "<tr>") - 1
	if rows != 5 {
		t.Errorf("deploy history has %d rows, want 5", rows)
	}
	if strings.Index(res.body, string(buildingID)) > strings.Index(res.body, string(readyID)) {
		t.Error("deploy history is not newest first")
	}

	docs := get(t, h, "/sites/docs", c)
	mustContain(t, "failed site page", docs.body, `<section class="error-box">`,
		"can&#39;t evaluate field name in type string\nError: error building site")
}

func TestSync(t *testing.T) {
	src := newFakeSource()
	h, _ := newTestHandler(src)
	c := login(t, h)
	res := postForm(t, h, "/sites/docs/sync", nil, c)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/sites/docs?sync=requested" {
		t.Fatalf("sync: %d to %q, want 303 to /sites/docs?sync=requested", res.StatusCode, res.Header.Get("Location"))
	}
	if got := src.triggered(); len(got) != 1 || got[0] != "docs" {
		t.Errorf("Trigger calls %v, want [docs]", got)
	}
	page := get(t, h, "/sites/docs?sync=requested", c)
	mustContain(t, "site page after sync", page.body, `<p class="notice" role="status">Sync requested.</p>`)

	missing := postForm(t, h, "/sites/nope/sync", nil, c)
	if missing.StatusCode != http.StatusNotFound {
		t.Errorf("sync of an unknown site: %d, want 404", missing.StatusCode)
	}
	mustContain(t, "404 page", missing.body, "There is no site named nope.")
}

func TestDeployPage(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())
	c := login(t, h)
	res := get(t, h, "/sites/blog/deploys/"+string(liveID), c)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	mustContain(t, "deploy page", res.body,
		"<title>Deploy "+string(liveID)+" · blog · sitehost</title>",
		`<span id="deploy-state" class="badge state-live">live</span>`,
		string(blogSHA), liveSubject, "Ana Lima", "production",
		// timings
		"<th>Queue</th><td class=\"num\">12 ms</td>", "<th>Fetch</th><td class=\"num\">340 ms</td>",
		"<th>Build</th><td class=\"num\">634 ms</td>", "<th>Upload</th><td class=\"num\">230 ms</td>",
		"<th>Publish</th><td class=\"num\">18 ms</td>", "<th>Total</th><td class=\"num\">1.2 s</td>",
		// files, bytes and the build
		"61 files, 2.3 MB", "0.165.0&#43;extended", "<code>https://blog.example.org/</code>", "187.0 MB",
		// rules
		"4 redirect rules, 2 header rules, 1 problem:", "<code>_redirects:3</code>: unknown status 309",
		`<a class="button" href="https://`+string(liveID)+`--blog.preview.example.net/">Open permalink</a>`,
		`<a href="/api/v1/sites/blog/deploys/`+string(liveID)+`/log">raw log</a>`,
		`<pre id="log" class="log">Start building sites`, "Total in 1184 ms",
	)
	mustNotContain(t, "finished deploy page", res.body, "data-stream", `http-equiv="refresh"`)

	building := get(t, h, "/sites/blog/deploys/"+string(buildingID), c)
	mustContain(t, "building deploy page", building.body,
		`<noscript><meta http-equiv="refresh" content="3"></noscript>`,
		`<pre id="log" class="log" data-stream="/api/v1/sites/blog/deploys/`+string(buildingID)+`/log">Start building sites`,
		`<span id="deploy-state" class="badge state-building">building</span>`)

	failed := get(t, h, "/sites/docs/deploys/"+string(docsFailID), c)
	mustContain(t, "failed deploy page", failed.body, `<section class="error-box">`, "executing &#34;main&#34; at &lt;.Params.author.name&gt;")

	noLog := get(t, h, "/sites/blog/deploys/"+string(readyID), c)
	if noLog.StatusCode != 200 {
		t.Errorf("deploy without a log: %d, want 200", noLog.StatusCode)
	}
	mustContain(t, "deploy page without a log", noLog.body, "No build log was recorded")
}

func TestNotFound(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())
	c := login(t, h)
	for target, want := range map[string]string{
		"/nope":                                 "There is no such page.",
		"/sites/nope":                           "There is no site named nope.",
		"/sites/blog/deploys/ffffffffffffffff":  "There is no deploy ffffffffffffffff of site blog.",
		"/sites/nope/deploys/" + string(liveID): "There is no deploy",
		"/assets/nope.css":                      "There is no such file.",
	} {
		res := get(t, h, target, c)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q, want HTML", target, ct)
		}
		mustContain(t, target, res.body, "<h1>Not found</h1>", want, `<a href="/">Back to the sites</a>`)
	}
}

func TestSourceFailure(t *testing.T) {
	src := newFakeSource()
	var logs bytes.Buffer
	h := New(Options{Source: src, Token: testToken, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := login(t, h)
	src.update(func(f *fakeSource) { f.err = errors.New("store: connection refused") })
	for _, target := range []string{"/", "/sites/blog", "/sites/blog/deploys/" + string(liveID)} {
		res := get(t, h, target, c)
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s with a failing source: %d, want 503", target, res.StatusCode)
		}
		mustContain(t, target, res.body, "Temporarily unavailable", "server log has the details")
		mustNotContain(t, target, res.body, "connection refused")
	}
	if res := postForm(t, h, "/sites/blog/sync", nil, c); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("sync with a failing source: %d, want 503", res.StatusCode)
	}
	mustContain(t, "log", logs.String(), "store: connection refused", "reading site list", "path=/sites/blog")
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{0, "just now"}, {59 * time.Second, "just now"}, {time.Minute, "1 minute ago"},
		{3 * time.Minute, "3 minutes ago"}, {time.Hour, "1 hour ago"}, {47 * time.Hour, "47 hours ago"},
		{72 * time.Hour, "3 days ago"}, {-5 * time.Minute, "in 5 minutes"}, {90 * 24 * time.Hour, "14 Dec 2025"},
	} {
		if got := relative(now, now.Add(-tc.ago)); got != tc.want {
			t.Errorf("relative(%v ago) = %q, want %q", tc.ago, got, tc.want)
		}
	}
	for ms, want := range map[int64]string{0: "—", 1: "1 ms", 999: "999 ms", 1234: "1.2 s", 59_940: "59.9 s",
		61_000: "1 min 1 s", 3_720_000: "1 h 2 min"} {
		if got := humanMS(ms); got != want {
			t.Errorf("humanMS(%d) = %q, want %q", ms, got, want)
		}
	}
	for state, want := range map[any]string{site.Synced: "state-synced", site.OutOfSync: "state-outofsync",
		site.OutcomeBuilding: "state-building", `x" onclick="y`: "state-xonclicky", "": "state-unknown"} {
		if got := stateClass(state); got != want {
			t.Errorf("stateClass(%q) = %q, want %q", state, got, want)
		}
	}
	if got := firstLine("\n  first\nsecond"); got != "first" {
		t.Errorf("firstLine = %q", got)
	}
	if got := firstLine(strings.Repeat("é", 300)); len([]rune(got)) != 200 || !strings.HasSuffix(got, "…") {
		t.Errorf("firstLine of 300 characters = %d characters", len([]rune(got)))
	}
}
