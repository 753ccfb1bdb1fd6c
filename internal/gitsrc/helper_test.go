package gitsrc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/site"
)

// fixture is a real git repository built with the git CLI, with an
// isolated config and a fake clock so hashes are reproducible.
type fixture struct {
	t     testing.TB
	dir   string
	clock time.Time
	zone  string // timezone for the next commits, e.g. "+0200"
	env   []string
}

func requireGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git is required in CI: %v", err)
		}
		t.Skipf("git not installed: %v", err)
	}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	requireGit(t)
	f := &fixture{
		t:     t,
		dir:   filepath.Join(t.TempDir(), "repo"),
		clock: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
		zone:  "+0000",
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			f.env = append(f.env, kv)
		}
	}
	f.env = append(f.env,
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Author", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Cy Committer", "GIT_COMMITTER_EMAIL=cy@example.com",
	)
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.git("init", "-q", "-b", "main")
	return f
}

// git runs git in the fixture and returns stdout with the final newline
// trimmed.
func (f *fixture) git(args ...string) string {
	f.t.Helper()
	return strings.TrimSuffix(string(f.gitRaw(args...)), "\n")
}

func (f *fixture) gitRaw(args ...string) []byte {
	f.t.Helper()
	return f.gitIn("", args...)
}

// gitIn runs git with stdin and returns its raw stdout.
func (f *fixture) gitIn(stdin string, args ...string) []byte {
	f.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Dir = f.dir
	date := fmt.Sprintf("%d %s", f.clock.Unix(), f.zone)
	cmd.Env = append(f.env, "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		f.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func (f *fixture) write(name, content string) {
	f.t.Helper()
	p := filepath.Join(f.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// commit stages everything and commits it.
func (f *fixture) commit(msg string, extra ...string) site.Commit {
	f.t.Helper()
	f.git("add", "-A")
	return f.commitIndex(msg, extra...)
}

// commitIndex commits what is staged, one hour after the previous commit.
func (f *fixture) commitIndex(msg string, extra ...string) site.Commit {
	f.t.Helper()
	f.clock = f.clock.Add(time.Hour)
	f.git(append([]string{"commit", "-q", "--allow-empty", "-m", msg}, extra...)...)
	return f.head()
}

func (f *fixture) head() site.Commit { return site.Commit(f.git("rev-parse", "HEAD")) }

func (f *fixture) url() string { return "file://" + f.dir }

// open opens a cache repo for the fixture in a fresh directory.
func (f *fixture) open(opts Options) *Repo {
	f.t.Helper()
	if opts.URL == "" {
		opts.URL = f.dir
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(f.t.TempDir(), "cache")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := Open(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { r.Close() })
	return r
}

func mustFetch(t testing.TB, r *Repo, ref string) site.Commit {
	t.Helper()
	c, err := r.Fetch(context.Background(), ref)
	if err != nil {
		t.Fatalf("Fetch(%q): %v", ref, err)
	}
	return c
}
