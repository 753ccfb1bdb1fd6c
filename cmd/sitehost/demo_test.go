package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/gittest"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo runs `sitehost demo` as a user would and follows its printed
// instructions: the site is served, a commit goes live, a revert goes live
// without a build.
func TestDemo(t *testing.T) {
	gittest.Require(t)
	dir := t.TempDir()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--dir", dir, "--http", "127.0.0.1:0"}, func(string) string { return "" }, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v\n%s", err, stderr.String())
		}
	}()

	var out string
	waitFor(t, func() bool { out = stdout.String(); return strings.Contains(out, "Stop with Ctrl-C") })
	siteURL := regexp.MustCompile(`Your site:\s+(http://localhost:\d+/)`).FindStringSubmatch(out)
	status := regexp.MustCompile(`curl -H '(Authorization: Bearer [0-9a-f]+)' (http://\S+/api/v1/sites)`).FindStringSubmatch(out)
	repoDir := filepath.Join(dir, "site")
	if siteURL == nil || status == nil || !strings.Contains(out, "cd "+repoDir) {
		t.Fatalf("demo instructions incomplete:\n%s", out)
	}
	// The site's domain is localhost; dial 127.0.0.1 with that Host, so the
	// test does not depend on how localhost resolves here.
	page := func() string {
		req, _ := http.NewRequest(http.MethodGet, strings.Replace(siteURL[1], "localhost", "127.0.0.1", 1), nil)
		req.Host = strings.TrimSuffix(strings.TrimPrefix(siteURL[1], "http://"), "/")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + "\n" + string(b)
	}
	waitFor(t, func() bool { return strings.Contains(page(), "Welcome!") })
	if p := page(); !strings.Contains(p, "Last change: <code>") || !strings.Contains(p, "Add the example site") {
		t.Errorf("git info missing from the demo page:\n%s", p)
	}

	gitCmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repoDir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=Demo User", "GIT_AUTHOR_EMAIL=demo@example.com",
			"GIT_COMMITTER_NAME=Demo User", "GIT_COMMITTER_EMAIL=demo@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	index := filepath.Join(repoDir, "content", "_index.md")
	body, _ := os.ReadFile(index)
	if err := os.WriteFile(index, bytes.Replace(body, []byte("Welcome!"), []byte("Hello from git!"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd("commit", "-qam", "Say hello")
	waitFor(t, func() bool { return strings.Contains(page(), "Hello from git!") })

	builds := func() int {
		req, _ := http.NewRequest(http.MethodGet, status[2], nil)
		k, v, _ := strings.Cut(status[1], ": ")
		req.Header.Set(k, v)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sites api.SiteList
		if err := json.NewDecoder(resp.Body).Decode(&sites); err != nil || len(sites.Sites) != 1 {
			t.Fatalf("status API: %v %+v", err, sites)
		}
		return sites.Sites[0].Builds
	}
	before := builds()
	gitCmd("revert", "--no-edit", "HEAD")
	waitFor(t, func() bool { return strings.Contains(page(), "Welcome!") })
	if after := builds(); after != before {
		t.Errorf("the revert built %d times; it should reuse the first deploy", after-before)
	}
}
