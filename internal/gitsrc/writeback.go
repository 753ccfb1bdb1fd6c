package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/sitehost/sitehost/internal/site"
)

// DefaultNotesRef is where PushNote records publishes when notesRef is
// empty; `git notes --ref=sitehost show <commit>` reads it.
const DefaultNotesRef = "refs/notes/sitehost"

// ErrPushRejected is wrapped by PushTag and PushNote errors when the remote
// refused the update (a hook, a protected ref, a permission problem, or a
// notes ref that kept moving): retrying as is will not help.
var ErrPushRejected = errors.New("gitsrc: push rejected")

// noteRetries is how often PushNote refetches and rebuilds after the
// remote notes ref moved under it.
const noteRetries = 3

// PushTag points the lightweight tag name (e.g. "sitehost/blog/live", or
// "refs/tags/sitehost/blog/live") at commit on the remote, force-updating
// it. The commit must be in the cache (fetched); the push sends whatever
// history the remote lacks.
func (r *Repo) PushTag(ctx context.Context, name string, commit site.Commit) error {
	ref := name
	if !strings.HasPrefix(ref, "refs/tags/") {
		ref = "refs/tags/" + name
	}
	if err := plumbing.ReferenceName(ref).Validate(); err != nil {
		return fmt.Errorf("pushing tag %q: %w", name, err)
	}
	c, err := getCommit(r.st, commit)
	if err != nil {
		return fmt.Errorf("pushing tag %s: %w", name, err)
	}
	if err := r.push(ctx, config.RefSpec("+"+c.Hash.String()+":"+ref)); err != nil {
		return fmt.Errorf("pushing tag %s to %s: %w", name, r.maskedURL(), err)
	}
	r.log.InfoContext(ctx, "pushed tag", "tag", name, "commit", c.Hash.String())
	return nil
}

// PushNote adds (or replaces) a git note on commit under notesRef
// (default DefaultNotesRef; a short name such as "sitehost" means
// refs/notes/sitehost) with text, and pushes the notes ref.
//
// It fetches the remote notes ref first and builds on it, so notes written
// by other machines are kept; when the push is rejected because the notes
// ref moved meanwhile, it refetches and retries (up to 3 times). The notes
// commit is git's format: its tree maps the commit's full hex SHA (flat,
// no fanout; existing fanout directories are kept and a replaced note is
// removed from them) to a blob with text, which gets a final newline as
// `git notes add -m` would. Its parent is the previous notes commit and
// its author and committer "sitehost <sitehost@localhost>". Writing the
// same text again pushes nothing.
func (r *Repo) PushNote(ctx context.Context, notesRef string, commit site.Commit, text string) error {
	return r.pushNote(ctx, notesRef, commit, text, nil)
}

// pushNote is PushNote with a hook run before each push attempt, which
// tests use to move the remote notes ref in between.
func (r *Repo) pushNote(ctx context.Context, notesRef string, commit site.Commit, text string, beforePush func(attempt int)) error {
	ref, err := notesRefName(notesRef)
	if err != nil {
		return fmt.Errorf("pushing note on %s: %w", commit, err)
	}
	c, err := getCommit(r.st, commit)
	if err != nil {
		return fmt.Errorf("pushing note on %s: %w", commit, err)
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("pushing note on %s: empty note", commit)
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	for attempt := 0; ; attempt++ {
		pushed, err := r.pushNoteOnce(ctx, ref, c.Hash, text, func() {
			if beforePush != nil {
				beforePush(attempt)
			}
		})
		if err == nil {
			if pushed {
				r.log.InfoContext(ctx, "pushed note", "ref", ref, "commit", c.Hash.String(), "attempts", attempt+1)
			}
			return nil
		}
		if !errors.Is(err, errRefMoved) || attempt == noteRetries {
			if errors.Is(err, errRefMoved) {
				err = fmt.Errorf("%w after %d attempts: %w", ErrPushRejected, attempt+1, err)
			}
			return fmt.Errorf("pushing note on %s to %s %s: %w", commit, r.maskedURL(), ref, err)
		}
		r.log.DebugContext(ctx, "notes ref moved, retrying", "ref", ref, "attempt", attempt+1, "err", err)
	}
}

// errRefMoved marks a push that lost a race for the notes ref.
var errRefMoved = errors.New("remote notes ref moved")

// pushNoteOnce fetches ref, commits the note on top and pushes it; pushed
// is false when the note was already there with that text.
func (r *Repo) pushNoteOnce(ctx context.Context, ref string, commit plumbing.Hash, text string, beforePush func()) (pushed bool, err error) {
	local := plumbing.ReferenceName(localRefName(ref))
	var parent *object.Commit
	err = r.fetch(ctx, config.RefSpec("+"+ref+":"+local.String()))
	switch {
	case err == nil:
		lr, err := r.repo.Reference(local, true)
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", local, err)
		}
		if parent, err = object.GetCommit(r.st, lr.Hash()); err != nil {
			return false, fmt.Errorf("reading notes commit %s: %w", lr.Hash(), err)
		}
	case errors.Is(err, git.NoMatchingRefSpecError{}) || errors.Is(err, transport.ErrEmptyRemoteRepository):
		// No notes yet (or they were deleted): start a new history.
		if err := r.st.RemoveReference(local); err != nil {
			return false, fmt.Errorf("removing stale %s: %w", local, err)
		}
	default:
		return false, fmt.Errorf("fetching %s: %w", ref, err)
	}

	blob, err := r.writeBlob([]byte(text))
	if err != nil {
		return false, err
	}
	var entries []object.TreeEntry
	if parent != nil {
		t, err := object.GetTree(r.st, parent.TreeHash)
		if err != nil {
			return false, fmt.Errorf("reading notes tree %s: %w", parent.TreeHash, err)
		}
		if entries, _, err = r.withoutNote(t, commit.String()); err != nil {
			return false, err
		}
	}
	entries = append(entries, object.TreeEntry{Name: commit.String(), Mode: filemode.Regular, Hash: blob})
	tree, err := r.writeTree(entries)
	if err != nil {
		return false, err
	}
	if parent != nil && parent.TreeHash == tree {
		return false, nil // the same note is already there
	}

	sig := object.Signature{Name: "sitehost", Email: "sitehost@localhost", When: time.Now()}
	nc := &object.Commit{
		Author:    sig,
		Committer: sig,
		TreeHash:  tree,
		Message:   "Notes added by sitehost\n",
	}
	if parent != nil {
		nc.ParentHashes = []plumbing.Hash{parent.Hash}
	}
	obj := r.st.NewEncodedObject()
	if err := nc.Encode(obj); err != nil {
		return false, fmt.Errorf("encoding notes commit: %w", err)
	}
	h, err := r.st.SetEncodedObject(obj)
	if err != nil {
		return false, fmt.Errorf("writing notes commit: %w", err)
	}

	beforePush()
	// Not forced: go-git refuses when the remote ref is no longer our
	// parent, and receive-pack checks the old value atomically.
	if err := r.push(ctx, config.RefSpec(h.String()+":"+ref)); err != nil {
		if isRefMoved(err) {
			return false, fmt.Errorf("%w: %w", errRefMoved, err)
		}
		return false, err
	}
	if err := r.st.SetReference(plumbing.NewHashReference(local, h)); err != nil {
		return false, fmt.Errorf("updating %s: %w", local, err)
	}
	return true, nil
}

// isRefMoved tells a lost race (go-git's client-side fast-forward check,
// or receive-pack's old-value check) from other push failures.
func isRefMoved(err error) bool {
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref", "stale info"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// notesRefName expands a notes ref as `git notes --ref` does.
func notesRefName(ref string) (string, error) {
	switch {
	case ref == "":
		ref = DefaultNotesRef
	case strings.HasPrefix(ref, "refs/notes/"):
	case strings.HasPrefix(ref, "refs/"):
		return "", fmt.Errorf("notes ref %q is outside refs/notes/", ref)
	default:
		ref = "refs/notes/" + ref
	}
	if err := plumbing.ReferenceName(ref).Validate(); err != nil {
		return "", fmt.Errorf("notes ref %q: %w", ref, err)
	}
	return ref, nil
}

// withoutNote returns t's entries minus any note for hex, looking into
// fanout directories ("ab/cdef...") too; changed says whether one was
// removed. Rewritten subtrees are stored.
func (r *Repo) withoutNote(t *object.Tree, hex string) (entries []object.TreeEntry, changed bool, err error) {
	for _, e := range t.Entries {
		switch {
		case e.Mode != filemode.Dir && e.Name == hex:
			changed = true
			continue
		case e.Mode == filemode.Dir && len(e.Name) < len(hex) && strings.HasPrefix(hex, e.Name):
			sub, err := object.GetTree(r.st, e.Hash)
			if err != nil {
				return nil, false, fmt.Errorf("reading notes tree %s: %w", e.Hash, err)
			}
			subEntries, subChanged, err := r.withoutNote(sub, hex[len(e.Name):])
			if err != nil {
				return nil, false, err
			}
			if subChanged {
				changed = true
				if len(subEntries) == 0 {
					continue
				}
				if e.Hash, err = r.writeTree(subEntries); err != nil {
					return nil, false, err
				}
			}
		}
		entries = append(entries, e)
	}
	return entries, changed, nil
}

func (r *Repo) writeBlob(data []byte) (plumbing.Hash, error) {
	obj := r.st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing note blob: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return plumbing.ZeroHash, fmt.Errorf("writing note blob: %w", err)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing note blob: %w", err)
	}
	h, err := r.st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing note blob: %w", err)
	}
	return h, nil
}

// writeTree stores a tree with entries in git's order (directories sort
// as if their name ended in '/').
func (r *Repo) writeTree(entries []object.TreeEntry) (plumbing.Hash, error) {
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	obj := r.st.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encoding notes tree: %w", err)
	}
	h, err := r.st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing notes tree: %w", err)
	}
	return h, nil
}

// push sends refspecs to origin. A refusal reported by the remote (a hook,
// a permission, a protected ref) wraps ErrPushRejected and carries what
// the remote printed, e.g. the hook's reason.
func (r *Repo) push(ctx context.Context, specs ...config.RefSpec) error {
	var remoteSaid limitedBuffer
	err := r.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: remoteName,
		RefSpecs:   specs,
		Auth:       r.auth,
		Progress:   &remoteSaid,
	})
	switch {
	case err == nil || errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case strings.HasPrefix(err.Error(), "command error on ") || strings.HasPrefix(err.Error(), "unpack error"):
		if said := strings.Join(strings.Fields(remoteSaid.String()), " "); said != "" {
			err = fmt.Errorf("%w (remote: %s)", err, said)
		}
		return masked(fmt.Errorf("%w: %w", ErrPushRejected, err))
	}
	return masked(err)
}

// limitedBuffer keeps the first 512 bytes written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 512 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
