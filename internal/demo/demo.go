// Package demo holds the example site that `sitehost demo` publishes, and
// makes a git repository of it so a first run needs no setup at all.
package demo

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

//go:embed all:site
var files embed.FS

// Site is the example Hugo site: theme-less, a few pages.
func Site() fs.FS {
	sub, err := fs.Sub(files, "site")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// CreateRepo makes dir a git repository on branch main holding the example
// site in one commit. An existing repository is left as it is (the user's
// commits survive a restart); created says which happened.
func CreateRepo(dir string) (created bool, err error) {
	if _, err := git.PlainOpen(dir); err == nil {
		return false, nil
	} else if !errors.Is(err, git.ErrRepositoryNotExists) {
		return false, fmt.Errorf("opening %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	if err := os.CopyFS(dir, Site()); err != nil {
		return false, fmt.Errorf("writing example site to %s: %w", dir, err)
	}
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		return false, fmt.Errorf("initialising git repo in %s: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return false, err
	}
	if err := wt.AddGlob("."); err != nil {
		return false, fmt.Errorf("adding files in %s: %w", dir, err)
	}
	sig := &object.Signature{Name: "sitehost demo", Email: "demo@sitehost.invalid", When: time.Now()}
	if _, err := wt.Commit("Add the example site", &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		return false, fmt.Errorf("committing example site: %w", err)
	}
	return true, nil
}

// Path is where the demo keeps its repo and data unless told otherwise.
func Path() string { return filepath.Join(os.TempDir(), "sitehost-demo") }
