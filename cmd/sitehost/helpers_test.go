package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/config"
)

// TestMain lets the test binary play the build child and the git shim, as
// the real binary does: the builder re-executes os.Executable().
func TestMain(m *testing.M) {
	if code, ok := child(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// requireGit skips without a git binary, except in CI, where a skipped test
// would prove nothing.
func requireGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is required in CI: ", err)
		}
		t.Skip("git not installed")
	}
}

// gitRepo is a real bare repository plus a working clone that pushes to it.
type gitRepo struct {
	t    testing.TB
	bare string
	work string
	n    int
}

func newGitRepo(t testing.TB, from string) *gitRepo {
	t.Helper()
	requireGit(t)
	dir := t.TempDir()
	g := &gitRepo{t: t, bare: filepath.Join(dir, "site.git"), work: filepath.Join(dir, "work")}
	g.run("", "init", "-q", "--bare", "-b", "main", g.bare)
	g.run("", "clone", "-q", g.bare, g.work)
	g.run(g.work, "checkout", "-q", "-b", "main")
	if from != "" {
		if err := os.CopyFS(g.work, os.DirFS(from)); err != nil {
			t.Fatal(err)
		}
		g.commit("Initial site")
	}
	return g
}

func (g *gitRepo) URL() string { return "file://" + g.bare }

func (g *gitRepo) run(dir string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	date := fmt.Sprintf("2024-03-%02dT12:00:00Z", max(g.n, 1))
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Author", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Author", "GIT_COMMITTER_EMAIL=ada@example.com",
		"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (g *gitRepo) write(rel, content string) {
	g.t.Helper()
	p := filepath.Join(g.work, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// commit commits everything in the work tree and pushes it; it returns the SHA.
func (g *gitRepo) commit(msg string) string {
	g.t.Helper()
	g.n++
	g.run(g.work, "add", "-A")
	g.run(g.work, "commit", "-q", "-m", msg)
	g.run(g.work, "push", "-q", "origin", "main")
	return g.run(g.work, "rev-parse", "HEAD")
}

// revert reverts commits (newest first) and pushes; it returns the new SHA.
func (g *gitRepo) revert(commits ...string) string {
	g.t.Helper()
	g.n++
	g.run(g.work, append([]string{"revert", "--no-edit"}, commits...)...)
	g.run(g.work, "push", "-q", "origin", "main")
	return g.run(g.work, "rev-parse", "HEAD")
}

// testConfig writes a sites.yaml for one site on loopback :0 listeners.
func testConfig(t testing.TB, dataDir, sitesYAML string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	doc := fmt.Sprintf(`server:
  data_dir: %q
  http: "127.0.0.1:0"
  admin: "127.0.0.1:0"
  preview_domain: localhost
  poll_interval: 0s
  api_token_env: TEST_TOKEN
sites:
%s`, dataDir, sitesYAML)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("test config: %v\n%s", err, doc)
	}
	return cfg
}

const testToken = "test-token-123"

// startServer runs a server until the test ends.
func startServer(t testing.TB, cfg *config.Config, env map[string]string) *server {
	t.Helper()
	getenv := func(k string) string {
		if k == "TEST_TOKEN" {
			return testToken
		}
		return env[k]
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := newServer(cfg, serverOptions{Getenv: getenv, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return srv
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type response struct {
	status int
	header http.Header
	body   string
}

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// get requests path from the server's HTTP listener with the given Host.
func get(t testing.TB, srv *server, host, path string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.httpLn.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(body)}
}

// storeContains reports whether any stored object holds needle.
func storeContains(t testing.TB, root, needle string) string {
	t.Helper()
	var found string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), needle) {
			found = p
		}
		return nil
	})
	return found
}
