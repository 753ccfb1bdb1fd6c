package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/site"
)

// bareRemote clones the fixture into a bare repository that tests push
// to, and returns its path.
func (f *fixture) bareRemote() string {
	f.t.Helper()
	bare := filepath.Join(f.t.TempDir(), "remote.git")
	f.git("clone", "-q", "--bare", f.dir, bare)
	return bare
}

// bareGit runs git against the bare repository.
func (f *fixture) bareGit(bare string, args ...string) string {
	f.t.Helper()
	return f.git(append([]string{"--git-dir=" + bare}, args...)...)
}

// noteOf returns `git notes --ref=sitehost show <commit>` in bare.
func (f *fixture) noteOf(bare string, commit site.Commit) string {
	f.t.Helper()
	return f.bareGit(bare, "notes", "--ref=sitehost", "show", string(commit))
}

func TestPushTag(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	f.write("index.md", "two")
	c2 := f.commit("two")
	bare := f.bareRemote()
	ctx := context.Background()

	for _, url := range []string{"file://" + bare, bare} {
		t.Run(url, func(t *testing.T) {
			r := f.open(Options{URL: url})
			mustFetch(t, r, "main")
			lsTag := func() string {
				return f.git("ls-remote", bare, "refs/tags/sitehost/blog/live")
			}

			if err := r.PushTag(ctx, "sitehost/blog/live", c1); err != nil {
				t.Fatal(err)
			}
			if got, want := lsTag(), string(c1)+"\trefs/tags/sitehost/blog/live"; got != want {
				t.Errorf("after PushTag(c1) ls-remote = %q, want %q", got, want)
			}
			if err := r.PushTag(ctx, "refs/tags/sitehost/blog/live", c2); err != nil {
				t.Fatal(err)
			}
			if got, want := lsTag(), string(c2)+"\trefs/tags/sitehost/blog/live"; got != want {
				t.Errorf("after PushTag(c2) ls-remote = %q, want %q", got, want)
			}
			// Moving it back is not a fast-forward: the tag is forced.
			if err := r.PushTag(ctx, "sitehost/blog/live", c1); err != nil {
				t.Fatal(err)
			}
			if err := r.PushTag(ctx, "sitehost/blog/live", c1); err != nil {
				t.Errorf("PushTag to the same commit: %v", err)
			}
			if got := lsTag(); !strings.HasPrefix(got, string(c1)) {
				t.Errorf("after moving back ls-remote = %q, want %s", got, c1)
			}
			if typ := f.bareGit(bare, "cat-file", "-t", "refs/tags/sitehost/blog/live"); typ != "commit" {
				t.Errorf("tag is a %s, want a lightweight tag (commit)", typ)
			}

			for name, wantErr := range map[string]string{"bad..name": "invalid reference name", "-x": "invalid reference name"} {
				if err := r.PushTag(ctx, name, c1); err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Errorf("PushTag(%q) = %v, want %q", name, err, wantErr)
				}
			}
			missing := site.Commit(strings.Repeat("ab", 20))
			if err := r.PushTag(ctx, "x", missing); err == nil || !strings.Contains(err.Error(), "object not found") {
				t.Errorf("PushTag(uncached commit) = %v, want object not found", err)
			}
		})
	}
}

// TestPushTagSendsHistory pushes a commit the remote lacks.
func TestPushTagSendsHistory(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	f.commit("one")
	bare := f.bareRemote()
	f.write("index.md", "two")
	f.write("sub/page.md", "page")
	c2 := f.commit("two")

	dir := filepath.Join(t.TempDir(), "cache")
	r := f.open(Options{Dir: dir, URL: f.url()})
	mustFetch(t, r, "main")
	r.Close()
	r = f.open(Options{Dir: dir, URL: "file://" + bare})
	if err := r.PushTag(context.Background(), "live", c2); err != nil {
		t.Fatal(err)
	}
	if got := f.bareGit(bare, "rev-parse", "live"); got != string(c2) {
		t.Errorf("live = %s, want %s", got, c2)
	}
	f.bareGit(bare, "fsck", "--strict", "--no-dangling")
	if got := f.bareGit(bare, "show", "live:sub/page.md"); got != "page" {
		t.Errorf("pushed content = %q", got)
	}
}

func TestPushNote(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	f.write("index.md", "two")
	c2 := f.commit("two")
	bare := f.bareRemote()
	ctx := context.Background()

	a := f.open(Options{URL: "file://" + bare})
	mustFetch(t, a, "main")
	if err := a.PushNote(ctx, "", c1, "published blog deploy d1"); err != nil {
		t.Fatal(err)
	}
	if got := f.noteOf(bare, c1); got != "published blog deploy d1" {
		t.Errorf("note on c1 = %q", got)
	}

	// Another machine's cache, which never saw the notes, keeps them.
	b := f.open(Options{URL: bare})
	mustFetch(t, b, "main")
	if err := b.PushNote(ctx, "sitehost", c2, "published blog deploy d2\n"); err != nil {
		t.Fatal(err)
	}
	if got := f.noteOf(bare, c1); got != "published blog deploy d1" {
		t.Errorf("note on c1 after b's push = %q", got)
	}
	if got := f.noteOf(bare, c2); got != "published blog deploy d2" {
		t.Errorf("note on c2 = %q", got)
	}

	// a's notes are stale now; it fetches b's before replacing its own.
	if err := a.PushNote(ctx, "refs/notes/sitehost", c1, "rolled back to d1"); err != nil {
		t.Fatal(err)
	}
	if got := f.noteOf(bare, c1); got != "rolled back to d1" {
		t.Errorf("replaced note on c1 = %q", got)
	}
	if got := f.noteOf(bare, c2); got != "published blog deploy d2" {
		t.Errorf("note on c2 after a's replace = %q", got)
	}
	// The same text again pushes nothing.
	if err := a.PushNote(ctx, "", c1, "rolled back to d1"); err != nil {
		t.Fatal(err)
	}

	if got := f.bareGit(bare, "rev-list", "--count", "refs/notes/sitehost"); got != "3" {
		t.Errorf("notes history has %s commits, want 3", got)
	}
	if got := f.bareGit(bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "refs/notes/sitehost"); got != "sitehost <sitehost@localhost>|sitehost <sitehost@localhost>" {
		t.Errorf("notes commit signature = %q", got)
	}
	wantList := fmt.Sprint(len(strings.Fields(f.bareGit(bare, "notes", "--ref=sitehost", "list"))))
	if wantList != "4" { // two "<note blob> <commit>" pairs
		t.Errorf("git notes list has %s fields, want 4", wantList)
	}
	if got := f.bareGit(bare, "log", "--format=%H %N", "--notes=sitehost", "-2", "main"); !strings.Contains(got, string(c1)+" rolled back to d1") {
		t.Errorf("git log --notes = %q", got)
	}
	f.bareGit(bare, "fsck", "--strict", "--no-dangling")

	// A separate notes ref does not mix with the default one.
	if err := b.PushNote(ctx, "other", c2, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if got := f.bareGit(bare, "notes", "--ref=other", "show", string(c2)); got != "elsewhere" {
		t.Errorf("refs/notes/other note = %q", got)
	}

	for _, tt := range []struct {
		ref    string
		commit site.Commit
		text   string
		want   string
	}{
		{"refs/heads/main", c1, "x", "outside refs/notes/"},
		{"bad..ref", c1, "x", "invalid reference name"},
		{"", c1, " \n", "empty note"},
		{"", site.Commit(strings.Repeat("ab", 20)), "x", "object not found"},
		{"", "main", "x", "not a full SHA"},
	} {
		if err := a.PushNote(ctx, tt.ref, tt.commit, tt.text); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("PushNote(%q, %s, %q) = %v, want %q", tt.ref, tt.commit, tt.text, err, tt.want)
		}
	}
}

// TestPushNoteRace moves the remote notes ref between PushNote's fetch and
// its push: it refetches and retries, then gives up after 3 retries.
func TestPushNoteRace(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	f.write("index.md", "two")
	c2 := f.commit("two")
	bare := f.bareRemote()
	ctx := context.Background()
	a := f.open(Options{URL: "file://" + bare})
	b := f.open(Options{URL: "file://" + bare})
	mustFetch(t, a, "main")
	mustFetch(t, b, "main")

	calls := 0
	err := a.pushNote(ctx, "", c1, "from a", func(attempt int) {
		calls++
		if attempt == 0 {
			if err := b.PushNote(ctx, "", c2, "from b"); err != nil {
				t.Fatal(err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("push attempts = %d, want 2", calls)
	}
	if got := f.noteOf(bare, c1); got != "from a" {
		t.Errorf("note on c1 = %q", got)
	}
	if got := f.noteOf(bare, c2); got != "from b" {
		t.Errorf("note on c2 = %q", got)
	}

	calls = 0
	err = a.pushNote(ctx, "", c1, "from a again", func(attempt int) {
		calls++
		if err := b.PushNote(ctx, "", c2, fmt.Sprintf("from b %d", attempt)); err != nil {
			t.Fatal(err)
		}
	})
	if !errors.Is(err, ErrPushRejected) || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Errorf("PushNote losing every race = %v, want ErrPushRejected after 4 attempts", err)
	}
	if calls != 4 {
		t.Errorf("push attempts = %d, want 4", calls)
	}
	if got := f.noteOf(bare, c1); got != "from a" {
		t.Errorf("note on c1 after lost races = %q", got)
	}
}

// TestPushNoteFanout replaces a note that git stored in a fanout
// directory, as git does for repositories with many notes.
func TestPushNoteFanout(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	f.write("index.md", "two")
	c2 := f.commit("two")
	bare := f.bareRemote()

	// refs/notes/sitehost: <c1[:2]>/<c1[2:]> -> "old", plus a flat note on c2 by git.
	old := strings.TrimSpace(string(f.gitIn("old\n", "--git-dir="+bare, "hash-object", "-w", "--stdin")))
	sub := strings.TrimSpace(string(f.gitIn("100644 blob "+old+"\t"+string(c1[2:])+"\n", "--git-dir="+bare, "mktree")))
	root := strings.TrimSpace(string(f.gitIn("040000 tree "+sub+"\t"+string(c1[:2])+"\n", "--git-dir="+bare, "mktree")))
	nc := f.bareGit(bare, "commit-tree", "-m", "fanout", root)
	f.bareGit(bare, "update-ref", "refs/notes/sitehost", nc)
	f.bareGit(bare, "notes", "--ref=sitehost", "add", "-m", "by git", string(c2))
	if got := f.noteOf(bare, c1); got != "old" {
		t.Fatalf("fixture note = %q", got)
	}

	r := f.open(Options{URL: bare})
	mustFetch(t, r, "main")
	if err := r.PushNote(context.Background(), "", c1, "new"); err != nil {
		t.Fatal(err)
	}
	if got := f.noteOf(bare, c1); got != "new" {
		t.Errorf("note on c1 = %q", got)
	}
	if got := f.noteOf(bare, c2); got != "by git" {
		t.Errorf("note on c2 = %q", got)
	}
	want := []string{string(c1), string(c2)}
	slices.Sort(want)
	if got := f.bareGit(bare, "ls-tree", "-r", "--name-only", "refs/notes/sitehost"); got != strings.Join(want, "\n") {
		t.Errorf("notes tree = %q, want flat %q", got, want)
	}
	f.bareGit(bare, "fsck", "--strict", "--no-dangling")
}

func TestPushRejected(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	bare := f.bareRemote()
	r := f.open(Options{URL: "file://" + bare})
	mustFetch(t, r, "main")

	calls := filepath.Join(t.TempDir(), "calls")
	hook := "#!/bin/sh\necho call >> " + calls + "\necho 'read-only mirror' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bare, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err := r.PushTag(ctx, "live", c1)
	if !errors.Is(err, ErrPushRejected) || !strings.Contains(err.Error(), "pre-receive hook declined (remote: read-only mirror)") ||
		!strings.HasPrefix(err.Error(), "pushing tag live to file://") {
		t.Errorf("PushTag to a rejecting remote = %v", err)
	}
	err = r.PushNote(ctx, "", c1, "x")
	if !errors.Is(err, ErrPushRejected) || !strings.Contains(err.Error(), "read-only mirror") {
		t.Errorf("PushNote to a rejecting remote = %v", err)
	}
	data, _ := os.ReadFile(calls)
	if n := strings.Count(string(data), "call"); n != 2 {
		t.Errorf("hook ran %d times, want 2 (a rejection is not retried)", n)
	}

	// A remote that is gone.
	if err := os.RemoveAll(bare); err != nil {
		t.Fatal(err)
	}
	if err := r.PushTag(ctx, "live", c1); err == nil || errors.Is(err, ErrPushRejected) {
		t.Errorf("PushTag to a missing remote = %v, want a non-rejection error", err)
	}
	if err := r.PushNote(ctx, "", c1, "x"); err == nil {
		t.Error("PushNote to a missing remote succeeded")
	}
}

func TestPushCredentialsMasked(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	dir := filepath.Join(t.TempDir(), "cache")
	r := f.open(Options{Dir: dir})
	mustFetch(t, r, "main")
	r.Close()
	r = f.open(Options{Dir: dir, URL: "https://user:secret@127.0.0.1:1/x.git"})
	ctx := context.Background()
	for name, err := range map[string]error{
		"PushTag":  r.PushTag(ctx, "live", c1),
		"PushNote": r.PushNote(ctx, "", c1, "x"),
	} {
		if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "https://***@127.0.0.1:1/x.git") {
			t.Errorf("%s error = %v; want masked URL", name, err)
		}
	}
}
