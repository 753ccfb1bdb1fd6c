package gitsrc

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/site"
)

func TestResolve(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	f.git("tag", "v1.0.0")                    // lightweight
	f.git("tag", "-a", "-m", "release", "v2") // annotated
	f.git("tag", "dup")                       // loses to branch "dup"
	f.write("index.md", "two")
	c2 := f.commit("two")
	f.git("branch", "dup")
	f.git("update-ref", "refs/pull/7/head", string(c1))

	for _, url := range []string{f.url(), f.dir} {
		t.Run(url, func(t *testing.T) {
			r := f.open(Options{URL: url})
			ctx := context.Background()
			for ref, want := range map[string]site.Commit{
				"main":             c2,
				"refs/heads/main":  c2,
				"HEAD":             c2,
				"v1.0.0":           c1,
				"refs/tags/v1.0.0": c1,
				"v2":               c1,
				"refs/tags/v2":     c1,
				"dup":              c2,
				"refs/tags/dup":    c1,
				"refs/pull/7/head": c1,
				"0123456789abcdef0123456789ABCDEF01234567": "0123456789abcdef0123456789abcdef01234567",
			} {
				got, err := r.Resolve(ctx, ref)
				if err != nil || got != want {
					t.Errorf("Resolve(%q) = %q, %v; want %q", ref, got, err, want)
				}
			}
			_, err := r.Resolve(ctx, "nope")
			if !errors.Is(err, ErrRefNotFound) || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), f.dir) {
				t.Errorf("Resolve(nope) error = %v; want ErrRefNotFound naming ref and URL", err)
			}
			refs, err := r.ListRefs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if refs["refs/pull/7/head"] != c1 || refs["refs/tags/v2"] != c1 || refs["refs/heads/main"] != c2 {
				t.Errorf("ListRefs = %v", refs)
			}
		})
	}
}

func TestFetchIncremental(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	f.git("tag", "-a", "-m", "release", "v1")
	r := f.open(Options{URL: f.url()})

	if got := mustFetch(t, r, "main"); got != c1 {
		t.Fatalf("Fetch(main) = %s, want %s", got, c1)
	}
	f.write("index.md", "two")
	c2 := f.commit("two")
	if got := mustFetch(t, r, "main"); got != c2 {
		t.Fatalf("second Fetch(main) = %s, want %s", got, c2)
	}
	mustFetch(t, r, "main") // already up to date is fine
	for _, c := range []site.Commit{c1, c2} {
		if _, err := r.CommitInfo(c); err != nil {
			t.Errorf("CommitInfo(%s) after fetch: %v", c, err)
		}
	}
	if got := mustFetch(t, r, "v1"); got != c1 {
		t.Errorf("Fetch(v1) = %s, want peeled %s", got, c1)
	}

	// A commit only on an unfetched branch arrives via a SHA fetch.
	f.git("checkout", "-q", "-b", "feature")
	f.write("feature.md", "f")
	cf := f.commit("feature")
	f.git("update-ref", "refs/pull/7/head", string(cf))
	f.git("checkout", "-q", "main")
	if got := mustFetch(t, r, string(cf)); got != cf {
		t.Errorf("Fetch(sha) = %s, want %s", got, cf)
	}
	if got := mustFetch(t, r, "refs/pull/7/head"); got != cf {
		t.Errorf("Fetch(refs/pull/7/head) = %s, want %s", got, cf)
	}

	ctx := context.Background()
	for _, ref := range []string{"nope", strings.Repeat("ab", 20)} {
		_, err := r.Fetch(ctx, ref)
		if !errors.Is(err, ErrRefNotFound) || !strings.Contains(err.Error(), "fetching "+ref+" from ") {
			t.Errorf("Fetch(%q) error = %v; want ErrRefNotFound", ref, err)
		}
	}
}

func TestFetchCommitInfo(t *testing.T) {
	f := newFixture(t)
	f.zone = "+0200"
	f.write("index.md", "one")
	c := f.commit("Add index\n\nWith a body.\n")
	r := f.open(Options{})
	mustFetch(t, r, "main")
	info, err := r.CommitInfo(c)
	if err != nil {
		t.Fatal(err)
	}
	if info.Commit != c || info.Tree != f.git("rev-parse", string(c)+"^{tree}") ||
		info.Subject != "Add index" || info.Message != "Add index\n\nWith a body.\n" ||
		info.Author != "Ada Author" || info.Email != "ada@example.com" ||
		info.Time.Format(gitDateLayout) != "2024-03-01 15:00:00 +0200" {
		t.Errorf("CommitInfo = %+v", info)
	}
}

func TestOpenUpdatesURL(t *testing.T) {
	a, b := newFixture(t), newFixture(t)
	a.write("a", "a")
	a.commit("a")
	b.write("b", "b")
	cb := b.commit("b")
	dir := filepath.Join(t.TempDir(), "cache")
	a.open(Options{Dir: dir, URL: a.url()}).Close()
	r := b.open(Options{Dir: dir, URL: b.url()})
	if got, err := r.Resolve(context.Background(), "main"); err != nil || got != cb {
		t.Errorf("Resolve after URL change = %s, %v; want %s", got, err, cb)
	}
}

func TestCredentialsMasked(t *testing.T) {
	f := newFixture(t)
	r := f.open(Options{URL: "https://user:secret@127.0.0.1:1/x.git"})
	ctx := context.Background()
	_, err := r.Resolve(ctx, "main")
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "https://***@127.0.0.1:1/x.git") {
		t.Errorf("Resolve error = %v; want masked URL", err)
	}
	_, err = r.Fetch(ctx, "main")
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.HasPrefix(err.Error(), "fetching main from https://***@") {
		t.Errorf("Fetch error = %v; want masked URL", err)
	}
	if got := MaskCredentials("clone ssh://git:tok@h/x and https://tok@h/y"); got != "clone ssh://***@h/x and https://***@h/y" {
		t.Errorf("MaskCredentials = %q", got)
	}
}

func TestResolveEmptyRemote(t *testing.T) {
	f := newFixture(t) // no commits
	r := f.open(Options{})
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "main"); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Resolve on empty remote = %v, want ErrRefNotFound", err)
	}
	if _, err := r.Fetch(ctx, "main"); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Fetch on empty remote = %v, want ErrRefNotFound", err)
	}
	if refs, err := r.ListRefs(ctx); err != nil || len(refs) != 0 {
		t.Errorf("ListRefs on empty remote = %v, %v", refs, err)
	}
}
