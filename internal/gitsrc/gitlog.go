package gitsrc

import (
	"bufio"
	"container/heap"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/sitehost/sitehost/internal/site"
)

// gitDateLayout is git's %ai/%ci (ISO 8601-like) date format.
const gitDateLayout = "2006-01-02 15:04:05 -0700"

// WriteGitLog writes exactly what
//
//	git -c diff.renames=0 -c log.showSignature=0 log --name-only --no-merges \
//	  --format=format:%x1e%H%x1f%h%x1f%s%x1f%aN%x1f%aE%x1f%ai%x1f%ci%x1f%b%x1d <commit> [-- <prefix>/]
//
// prints in a checkout of commit, reading the bare cache at gitDir, with
// prefix ("" or "." for the whole repo) stripped from file names. This is
// the output Hugo's enableGitInfo (github.com/bep/gitmap) parses.
//
// Like git it walks newest committer date first (ties in discovery order),
// honours the commit's root .mailmap, quotes unusual file names as
// core.quotePath does and, with a prefix, follows only a merge's parent
// that is unchanged under prefix (default history simplification). %h is
// always 7 characters.
func WriteGitLog(w io.Writer, gitDir string, commit site.Commit, prefix string) error {
	return writeGitLog(w, gitDir, commit, prefix, true)
}

// writeGitLog is WriteGitLog in either of gitmap's formats: with the body
// (GitLogFormat) or without (GitLogFormatNoBody).
func writeGitLog(w io.Writer, gitDir string, commit site.Commit, prefix string, body bool) error {
	if _, err := os.Stat(gitDir); err != nil {
		return fmt.Errorf("opening git cache: %w", err)
	}
	st := openStorage(gitDir)
	defer st.Close()
	elems, err := splitPath(prefix)
	if err != nil {
		return err
	}
	start, err := getCommit(st, commit)
	if err != nil {
		return err
	}
	mm, err := loadMailmap(st, start.TreeHash)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	l := &logWriter{st: st, elems: elems, mailmap: mm, w: bw, body: body}
	if err := l.run(start); err != nil {
		return fmt.Errorf("writing git log of %s: %w", commit.Short(), err)
	}
	return bw.Flush()
}

type logWriter struct {
	st      *filesystem.Storage
	elems   []string // prefix elements, nil for the whole repo
	mailmap mailmap
	w       *bufio.Writer
	body    bool // %x1f%b%x1d after the committer date
	shown   int
}

func (l *logWriter) run(start *object.Commit) error {
	seen := map[plumbing.Hash]bool{start.Hash: true}
	q := &commitQueue{}
	q.add(start)
	for q.Len() > 0 {
		c := heap.Pop(q).(queued).c
		parents, err := l.walkParents(c)
		if err != nil {
			return err
		}
		for _, p := range parents {
			if seen[p] {
				continue
			}
			seen[p] = true
			pc, err := object.GetCommit(l.st, p)
			if err != nil {
				return fmt.Errorf("reading parent %s of %s: %w", p, c.Hash, err)
			}
			q.add(pc)
		}
		if len(c.ParentHashes) > 1 {
			continue // --no-merges
		}
		files, err := l.changes(c)
		if err != nil {
			return err
		}
		if l.elems != nil && len(files) == 0 {
			continue // TREESAME under the pathspec
		}
		l.write(c, files)
	}
	return nil
}

// walkParents returns the parents git walks to. With a pathspec, a merge
// unchanged under it relative to some parent follows only the first such
// parent.
func (l *logWriter) walkParents(c *object.Commit) ([]plumbing.Hash, error) {
	if l.elems == nil || len(c.ParentHashes) < 2 {
		return c.ParentHashes, nil
	}
	own, err := l.sub(c.TreeHash)
	if err != nil {
		return nil, err
	}
	for _, p := range c.ParentHashes {
		pc, err := object.GetCommit(l.st, p)
		if err != nil {
			return nil, fmt.Errorf("reading parent %s of %s: %w", p, c.Hash, err)
		}
		ph, err := l.sub(pc.TreeHash)
		if err != nil {
			return nil, err
		}
		if ph == own {
			return []plumbing.Hash{p}, nil
		}
	}
	return c.ParentHashes, nil
}

// sub returns the prefix tree under root, or the zero hash if absent.
func (l *logWriter) sub(root plumbing.Hash) (plumbing.Hash, error) {
	h, ok, err := lookupTree(l.st, root, l.elems)
	if err != nil || !ok {
		return plumbing.ZeroHash, err
	}
	return h, nil
}

// changes lists the files under prefix that differ from the first parent
// (all of them for a root commit), sorted, relative to prefix.
func (l *logWriter) changes(c *object.Commit) ([]string, error) {
	old := plumbing.ZeroHash
	if len(c.ParentHashes) > 0 {
		pc, err := object.GetCommit(l.st, c.ParentHashes[0])
		if err != nil {
			return nil, fmt.Errorf("reading parent of %s: %w", c.Hash, err)
		}
		if old, err = l.sub(pc.TreeHash); err != nil {
			return nil, err
		}
	}
	cur, err := l.sub(c.TreeHash)
	if err != nil {
		return nil, err
	}
	var files []string
	if err := diffTrees(l.st, old, cur, "", &files); err != nil {
		return nil, err
	}
	// Full-path byte order equals git's tree-walk order.
	sort.Strings(files)
	return files, nil
}

func (l *logWriter) write(c *object.Commit, files []string) {
	if l.shown > 0 {
		l.w.WriteByte('\n') // format: is a separator, not a terminator
	}
	l.shown++
	name, email := l.mailmap.lookup(c.Author.Name, c.Author.Email)
	subject, body := splitMessage(c.Message)
	h := c.Hash.String()
	fmt.Fprintf(l.w, "\x1e%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s",
		h, h[:7], subject, name, email,
		c.Author.When.Format(gitDateLayout), c.Committer.When.Format(gitDateLayout))
	if l.body {
		fmt.Fprintf(l.w, "\x1f%s\x1d", body)
	}
	if len(files) == 0 {
		return
	}
	l.w.WriteByte('\n') // blank line between log message and diff output
	for _, f := range files {
		l.w.WriteString(quotePath(f))
		l.w.WriteByte('\n')
	}
}

// diffTrees appends to out the paths (base-prefixed) of non-tree entries
// that differ between trees a and b; a zero hash is an empty tree.
func diffTrees(st *filesystem.Storage, a, b plumbing.Hash, base string, out *[]string) error {
	if a == b {
		return nil
	}
	ae, err := treeEntries(st, a)
	if err != nil {
		return err
	}
	be, err := treeEntries(st, b)
	if err != nil {
		return err
	}
	old := make(map[string]object.TreeEntry, len(ae))
	for _, e := range ae {
		old[e.Name] = e
	}
	all := func(e object.TreeEntry) error {
		if e.Mode == filemode.Dir {
			return diffTrees(st, plumbing.ZeroHash, e.Hash, base+e.Name+"/", out)
		}
		*out = append(*out, base+e.Name)
		return nil
	}
	for _, n := range be {
		o, ok := old[n.Name]
		delete(old, n.Name)
		var err error
		switch {
		case !ok:
			err = all(n)
		case o.Mode == filemode.Dir && n.Mode == filemode.Dir:
			err = diffTrees(st, o.Hash, n.Hash, base+n.Name+"/", out)
		case o.Mode == filemode.Dir || n.Mode == filemode.Dir:
			if err = all(o); err == nil {
				err = all(n)
			}
		case o.Hash != n.Hash || canonMode(o.Mode) != canonMode(n.Mode):
			*out = append(*out, base+n.Name)
		}
		if err != nil {
			return err
		}
	}
	for _, o := range old {
		if err := all(o); err != nil {
			return err
		}
	}
	return nil
}

func treeEntries(st *filesystem.Storage, h plumbing.Hash) ([]object.TreeEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	t, err := object.GetTree(st, h)
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", h, err)
	}
	return t.Entries, nil
}

// canonMode mirrors git's canon_mode: group-writable 100664 is 100644.
func canonMode(m filemode.FileMode) filemode.FileMode {
	if m == filemode.Deprecated {
		return filemode.Regular
	}
	return m
}

// queued is a commit waiting in the walk; seq breaks date ties in
// insertion order, as git's commit_list_insert_by_date does.
type queued struct {
	c   *object.Commit
	seq int
}

type commitQueue struct {
	items []queued
	next  int
}

func (q *commitQueue) add(c *object.Commit) {
	heap.Push(q, queued{c: c, seq: q.next})
	q.next++
}

func (q *commitQueue) Len() int { return len(q.items) }
func (q *commitQueue) Less(i, j int) bool {
	ti, tj := q.items[i].c.Committer.When.Unix(), q.items[j].c.Committer.When.Unix()
	if ti != tj {
		return ti > tj
	}
	return q.items[i].seq < q.items[j].seq
}
func (q *commitQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *commitQueue) Push(x any)    { q.items = append(q.items, x.(queued)) }
func (q *commitQueue) Pop() any {
	it := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return it
}
