package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/site"
)

// scrape reads the admin listener's /metrics.
func scrape(t *testing.T, srv *server) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.adminLn.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// metric returns the value of the sample named exactly series, or -1.
func metric(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestMetricsAfterDeploy: after a real Hugo build goes live, a page is
// served, a webhook is delivered and another refused, /metrics says so.
func TestMetricsAfterDeploy(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	cfg := testConfig(t, t.TempDir(), siteYAML(repo.URL())+`    webhook: { secret_env: HOOK_SECRET }
`)
	srv := startServer(t, cfg, map[string]string{"HOOK_SECRET": testHookSecret})
	syncSite(t, srv, "blog")
	page := get(t, srv, "blog.test", "/")
	if page.status != 200 {
		t.Fatalf("home: %d", page.status)
	}
	get(t, srv, "blog.test", "/no-such-page/")
	get(t, srv, "nobody.test", "/")
	push, err := os.ReadFile("../../testdata/webhooks/github/push.branch-updated.woodpecker.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{"https://github.com/woodpecker-ci/woodpecker.git", "https://github.com/woodpecker-ci/woodpecker"} {
		push = bytes.ReplaceAll(push, []byte(old), []byte(repo.URL()))
	}
	if code := sendGitHub(t, srv, "push", push); code != http.StatusAccepted {
		t.Errorf("signed push: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.adminLn.Addr().String()+"/hooks/github", strings.NewReader("{}"))
	req.Header.Set("X-GitHub-Event", "push")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}

	text := scrape(t, srv)
	for series, want := range map[string]func(float64) bool{
		`sitehost_builds_total{result="success",site="blog"}`:                     func(v float64) bool { return v == 1 },
		`sitehost_build_duration_seconds_count{result="success",site="blog"}`:     func(v float64) bool { return v == 1 },
		`sitehost_publish_duration_seconds_count{site="blog"}`:                    func(v float64) bool { return v == 1 },
		`sitehost_publish_uploaded_bytes_total{site="blog"}`:                      func(v float64) bool { return v > 0 },
		`sitehost_http_requests_total{code="2xx",site="blog"}`:                    func(v float64) bool { return v >= 1 },
		`sitehost_http_requests_total{code="4xx",site="blog"}`:                    func(v float64) bool { return v == 1 },
		`sitehost_http_requests_total{code="4xx",site=""}`:                        func(v float64) bool { return v == 1 },
		`sitehost_http_response_bytes_total{site="blog"}`:                         func(v float64) bool { return v >= float64(len(page.body)) },
		`sitehost_webhook_deliveries_total{forge="github",result="accepted"}`:     func(v float64) bool { return v == 1 },
		`sitehost_webhook_deliveries_total{forge="github",result="bad_request"}`:  func(v float64) bool { return v == 1 },
		`sitehost_channel_state{channel="production",site="blog",state="Synced"}`: func(v float64) bool { return v == 1 },
		`sitehost_blob_cache_requests_total{result="miss"}`:                       func(v float64) bool { return v >= 1 },
	} {
		if v := metric(text, series); !want(v) {
			t.Errorf("%s = %v", series, v)
		}
	}
}

// TestAccessLog: one line per request with site, host, path, status,
// bytes and duration; a token in the query string never reaches the log.
func TestAccessLog(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "<h1>hello</h1>")
	repo.Commit("one")
	cfg := testConfig(t, t.TempDir(), `  - name: blog
    repo: `+repo.URL()+`
    domains: [blog.test]
    build: {tool: none}
`)
	ts := startServerUntil(t, cfg, nil, serverOptions{})
	syncSite(t, ts.server, "blog")
	get(t, ts.server, "blog.test", "/?utm_source=feed&access_token=hunter2secret")
	var line string
	waitFor(t, func() bool {
		for _, l := range strings.Split(ts.logs.String(), "\n") {
			if strings.Contains(l, "msg=request") && strings.Contains(l, "listener=http") {
				line = l
				return true
			}
		}
		return false
	})
	for _, want := range []string{"site=blog", "host=blog.test", `path="/?utm_source=feed&access_token=***"`, "status=200", "bytes=14", "duration=", "method=GET"} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line lacks %s:\n%s", want, line)
		}
	}
	if strings.Contains(ts.logs.String(), "hunter2secret") {
		t.Error("the token in the query string was logged")
	}
}

// TestDeployHistoryAndLog: the API lists the deploys of a site with their
// timings, and streams a build log that tells the story from fetch to
// live; a broken commit is in the history as failed, with Hugo's error.
func TestDeployHistoryAndLog(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	srv := startServer(t, testConfig(t, t.TempDir(), siteYAML(repo.URL())), nil)
	syncSite(t, srv, "blog")
	repo.Write("layouts/page.html", "{{ define \"main\" }}\n{{ .NoSuchMethod }}\n{{ end }}\n")
	repo.Commit("Break the home page")
	syncSite(t, srv, "blog")

	var list api.DeployList
	apiGet(t, srv, "/api/v1/sites/blog/deploys", testToken, http.StatusOK, &list)
	if len(list.Deploys) != 2 {
		t.Fatalf("history has %d entries, want 2: %+v", len(list.Deploys), list)
	}
	failed, live := list.Deploys[0], list.Deploys[1]
	if failed.State != site.OutcomeFailed || failed.Commit.Subject != "Break the home page" || !strings.Contains(failed.Error, "layouts/page.html") {
		t.Errorf("newest entry = %+v, want the failed build with Hugo's error", failed)
	}
	if live.State != site.OutcomeLive || live.URL == "" || live.Timings.Build <= 0 || live.Timings.Total < live.Timings.Build || live.Timings.Fetch <= 0 {
		t.Errorf("live entry = %+v, want live with a permalink and timings", live)
	}
	var detail api.DeployDetail
	apiGet(t, srv, "/api/v1/sites/blog/deploys/"+string(live.ID), testToken, http.StatusOK, &detail)
	if detail.Files == 0 || detail.Build.Hugo == "" || detail.Timings.Upload <= 0 {
		t.Errorf("detail = %+v", detail)
	}
	// The permalink serves the deploy.
	if u := strings.TrimPrefix(live.URL, "http://"); !strings.HasPrefix(u, string(live.ID)+"--blog.localhost:") {
		t.Errorf("permalink %q", live.URL)
	} else if page := get(t, srv, strings.Split(u, ":")[0], "/"); page.status != 200 || !strings.Contains(page.body, "Version one") {
		t.Errorf("permalink answers %d", page.status)
	}

	// The stream of the finished build: the whole story, then the end.
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.adminLn.Addr().String()+live.LogURL, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text strings.Builder
	var end api.LogEnd
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if event == api.EventEnd {
			json.Unmarshal([]byte(data), &end) //nolint:errcheck // checked below
			break
		}
		var c api.LogChunk
		json.Unmarshal([]byte(data), &c) //nolint:errcheck // checked below
		text.WriteString(c.Text)
	}
	log := text.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Deploying [0-9a-f]{7} \(main\) to production of blog$`),
		regexp.MustCompile(`(?m)^Fetched [0-9a-f]{7} in \S+: "`),
		regexp.MustCompile(`(?m)^Building with Hugo v`),
		regexp.MustCompile(`(?m)^Built in `),
		regexp.MustCompile(`(?m)^Uploaded deploy [0-9a-f]+ in \S+: \d+ files`),
		regexp.MustCompile(`(?m)^Live on production at http://blog.test:\d+/`),
	} {
		if !want.MatchString(log) {
			t.Errorf("build log lacks %s:\n%s", want, log)
		}
	}
	if end.State != site.OutcomeLive {
		t.Errorf("end event %+v, want live", end)
	}

	// The failed build's log has Hugo's error.
	req, _ = http.NewRequest(http.MethodGet, "http://"+srv.adminLn.Addr().String()+failed.LogURL, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if site.Outcome(resp2.Header.Get(api.LogState)) != site.OutcomeFailed || !strings.Contains(string(body), "Failed: ") {
		t.Errorf("failed build log (%s):\n%s", resp2.Header.Get(api.LogState), body)
	}
}

func TestReadyz(t *testing.T) {
	repo := gittest.New(t, "")
	repo.Write("index.html", "hi")
	repo.Commit("one")
	srv := startServer(t, testConfig(t, t.TempDir(), `  - name: blog
    repo: `+repo.URL()+`
    build: {tool: none}
`), nil)
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + srv.adminLn.Addr().String() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
