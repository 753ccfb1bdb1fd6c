// Package gittest makes real git repositories for tests: a bare repository
// and a working clone that pushes to it, driven by the git command with an
// isolated configuration and fixed dates. Tests only.
package gittest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Require skips without a git binary, except in CI, where a skipped test
// would prove nothing.
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is required in CI: ", err)
		}
		t.Skip("git not installed")
	}
}

// Repo is a bare repository plus a working clone on branch main.
type Repo struct {
	t    testing.TB
	Bare string
	Work string
	n    int
	now  bool
}

// Now dates the commits made from here on with the current time, for tests
// that care how old a head is.
func (r *Repo) Now() { r.now = true }

// New makes a repository; with from != "" its files are the first commit.
func New(t testing.TB, from string) *Repo {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	r := &Repo{t: t, Bare: filepath.Join(dir, "site.git"), Work: filepath.Join(dir, "work")}
	r.Git("", "init", "-q", "--bare", "-b", "main", r.Bare)
	r.Git("", "clone", "-q", r.Bare, r.Work)
	r.Git(r.Work, "checkout", "-q", "-b", "main")
	if from != "" {
		if err := os.CopyFS(r.Work, os.DirFS(from)); err != nil {
			t.Fatal(err)
		}
		r.Commit("Initial site")
	}
	return r
}

// URL is the bare repository's file:// URL.
func (r *Repo) URL() string { return "file://" + r.Bare }

// Git runs git in dir; commit n is dated 2024-03-n, so history is stable
// (Now makes the next commits current instead).
func (r *Repo) Git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	date := fmt.Sprintf("2024-03-%02dT12:00:00Z", min(max(r.n, 1), 28))
	if r.now {
		date = time.Now().UTC().Format(time.RFC3339)
	}
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Author", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Author", "GIT_COMMITTER_EMAIL=ada@example.com",
		"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes a file in the working clone.
func (r *Repo) Write(rel, content string) {
	r.t.Helper()
	p := filepath.Join(r.Work, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// Commit commits everything in the working clone, pushes, and returns the SHA.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	r.n++
	r.Git(r.Work, "add", "-A")
	r.Git(r.Work, "commit", "-q", "--allow-empty", "-m", msg)
	r.Git(r.Work, "push", "-q", "origin", "HEAD")
	return r.Git(r.Work, "rev-parse", "HEAD")
}

// Revert reverts commits (newest first), pushes, and returns the new SHA.
func (r *Repo) Revert(commits ...string) string {
	r.t.Helper()
	r.n++
	r.Git(r.Work, append([]string{"revert", "--no-edit"}, commits...)...)
	r.Git(r.Work, "push", "-q", "origin", "HEAD")
	return r.Git(r.Work, "rev-parse", "HEAD")
}
