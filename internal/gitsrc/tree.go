package gitsrc

import (
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/sitehost/sitehost/internal/site"
)

// CommitInfo is a cached commit's metadata.
type CommitInfo struct {
	Commit  site.Commit
	Tree    string    // root tree hash
	Subject string    // git's %s: the first paragraph on one line
	Message string    // the full message
	Author  string    // author name
	Email   string    // author email
	Time    time.Time // author time, in the author's zone
	// Committed is the committer time: when the commit was last made or
	// rebased, which says how fresh a head is better than Time does.
	Committed time.Time
}

// CommitInfo returns the metadata of a commit in the cache.
func (r *Repo) CommitInfo(commit site.Commit) (CommitInfo, error) {
	c, err := getCommit(r.st, commit)
	if err != nil {
		return CommitInfo{}, err
	}
	return CommitInfo{
		Commit:  commit,
		Tree:    c.TreeHash.String(),
		Subject: gitSubject(c.Message),
		Message: c.Message,
		Author:  c.Author.Name,
		Email:   c.Author.Email,
		Time:    c.Author.When,

		Committed: c.Committer.When,
	}, nil
}

// TreeHash returns the tree hash of the directory p ("" or "." for the
// root) at commit, or an error wrapping ErrPathNotFound.
func (r *Repo) TreeHash(commit site.Commit, p string) (string, error) {
	c, err := getCommit(r.st, commit)
	if err != nil {
		return "", err
	}
	h, err := subtree(r.st, c.TreeHash, p)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func getCommit(s storer.EncodedObjectStorer, commit site.Commit) (*object.Commit, error) {
	if !isSHA(string(commit)) {
		return nil, fmt.Errorf("reading commit %q: not a full SHA", commit)
	}
	c, err := object.GetCommit(s, plumbing.NewHash(strings.ToLower(string(commit))))
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", commit, err)
	}
	return c, nil
}

// splitPath turns a user path into tree elements: nil for the root.
// Absolute paths and ".." are rejected rather than cleaned away.
func splitPath(p string) ([]string, error) {
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\x00") {
		return nil, fmt.Errorf("%w: %q is not a relative path", ErrPathNotFound, p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return nil, fmt.Errorf("%w: %q leaves the repository", ErrPathNotFound, p)
		}
	}
	p = path.Clean(p)
	if p == "." {
		return nil, nil
	}
	return strings.Split(p, "/"), nil
}

// subtree returns the hash of directory p under root.
func subtree(s storer.EncodedObjectStorer, root plumbing.Hash, p string) (plumbing.Hash, error) {
	elems, err := splitPath(p)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	h, ok, err := lookupTree(s, root, elems)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if !ok {
		return plumbing.ZeroHash, fmt.Errorf("%w: no directory %q", ErrPathNotFound, p)
	}
	return h, nil
}

// lookupTree walks elems down from root; ok is false if some element is
// missing or not a directory.
func lookupTree(s storer.EncodedObjectStorer, root plumbing.Hash, elems []string) (plumbing.Hash, bool, error) {
	h := root
	for _, e := range elems {
		t, err := object.GetTree(s, h)
		if err != nil {
			return plumbing.ZeroHash, false, fmt.Errorf("reading tree %s: %w", h, err)
		}
		found := false
		for _, ent := range t.Entries {
			if ent.Name == e && ent.Mode == filemode.Dir {
				h, found = ent.Hash, true
				break
			}
		}
		if !found {
			return plumbing.ZeroHash, false, nil
		}
	}
	return h, true, nil
}

// ReadFile returns the content and blob hash of the regular file p at
// commit, reading at most max bytes (more is an error wrapping
// ErrTooLarge); a missing file is an error wrapping ErrPathNotFound.
func (r *Repo) ReadFile(commit site.Commit, p string, max int64) ([]byte, string, error) {
	c, err := getCommit(r.st, commit)
	if err != nil {
		return nil, "", err
	}
	elems, err := splitPath(p)
	if err != nil || len(elems) == 0 {
		return nil, "", fmt.Errorf("%w: %q is not a file path", ErrPathNotFound, p)
	}
	dir, ok, err := lookupTree(r.st, c.TreeHash, elems[:len(elems)-1])
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", fmt.Errorf("%w: no file %q", ErrPathNotFound, p)
	}
	t, err := object.GetTree(r.st, dir)
	if err != nil {
		return nil, "", fmt.Errorf("reading tree %s: %w", dir, err)
	}
	for _, ent := range t.Entries {
		if ent.Name != elems[len(elems)-1] || (ent.Mode != filemode.Regular && ent.Mode != filemode.Executable) {
			continue
		}
		blob, err := object.GetBlob(r.st, ent.Hash)
		if err != nil {
			return nil, "", fmt.Errorf("reading %s: %w", p, err)
		}
		if blob.Size > max {
			return nil, "", fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, p, max)
		}
		rd, err := blob.Reader()
		if err != nil {
			return nil, "", fmt.Errorf("reading %s: %w", p, err)
		}
		defer rd.Close()
		data, err := io.ReadAll(io.LimitReader(rd, max))
		if err != nil {
			return nil, "", fmt.Errorf("reading %s: %w", p, err)
		}
		return data, ent.Hash.String(), nil
	}
	return nil, "", fmt.Errorf("%w: no file %q", ErrPathNotFound, p)
}
