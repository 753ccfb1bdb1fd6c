package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/sitehost/sitehost/internal/site"
)

// remoteRefs is an ls-remote answer: ref name to commit, tags peeled.
type remoteRefs struct {
	hashes  map[string]plumbing.Hash
	symrefs map[string]string // e.g. HEAD -> refs/heads/main
}

// Resolve asks the remote what ref points to. ref is a branch name, a tag
// name, a full ref ("refs/pull/7/head"), "HEAD", a semver range such as
// "v1.*" or "^1.2" (see IsRange and MatchRange: the newest matching tag)
// or a 40-hex commit SHA, which is returned without network access.
// Branches win over tags. Annotated tags resolve to the tagged commit.
func (r *Repo) Resolve(ctx context.Context, ref string) (site.Commit, error) {
	if isSHA(ref) {
		return site.Commit(strings.ToLower(ref)), nil
	}
	refs, err := r.lsRemote(ctx)
	if err != nil {
		return "", fmt.Errorf("resolving %s from %s: %w", ref, r.maskedURL(), err)
	}
	_, h, err := r.resolveIn(ctx, refs, ref)
	if err != nil {
		return "", fmt.Errorf("resolving %s from %s: %w", ref, r.maskedURL(), err)
	}
	return site.Commit(h.String()), nil
}

// resolveIn finds ref in an ls-remote answer and returns the remote ref to
// fetch: a range picks the newest matching tag, anything else goes
// through lookup.
func (r *Repo) resolveIn(ctx context.Context, refs remoteRefs, ref string) (string, plumbing.Hash, error) {
	if !IsRange(ref) {
		name, h, ok := refs.lookup(ref)
		if !ok {
			return "", plumbing.ZeroHash, ErrRefNotFound
		}
		return name, h, nil
	}
	var tags []string
	for name := range refs.hashes {
		if tag, ok := strings.CutPrefix(name, "refs/tags/"); ok {
			tags = append(tags, tag)
		}
	}
	tag, err := MatchRange(ref, tags)
	if err != nil {
		return "", plumbing.ZeroHash, err
	}
	name := "refs/tags/" + tag
	r.log.DebugContext(ctx, "resolved range", "range", ref, "tag", tag)
	return name, refs.hashes[name], nil
}

// ListRefs returns the remote's refs (full name to commit, tags peeled,
// HEAD included when advertised), e.g. to poll pull request heads.
func (r *Repo) ListRefs(ctx context.Context) (map[string]site.Commit, error) {
	refs, err := r.lsRemote(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing refs of %s: %w", r.maskedURL(), err)
	}
	out := make(map[string]site.Commit, len(refs.hashes))
	for name, h := range refs.hashes {
		out[name] = site.Commit(h.String())
	}
	return out, nil
}

// Fetch makes the commit ref points to present in the cache with full
// history (Hugo's git info needs it), fetching only that ref's refspec;
// a semver range fetches the tag Resolve would pick.
// A SHA ref fetches all heads and tags unless the commit is already cached.
func (r *Repo) Fetch(ctx context.Context, ref string) (site.Commit, error) {
	start := time.Now()
	c, err := r.fetchRef(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("fetching %s from %s: %w", ref, r.maskedURL(), err)
	}
	r.log.DebugContext(ctx, "fetched", "ref", ref, "commit", string(c), "took", time.Since(start))
	return c, nil
}

func (r *Repo) fetchRef(ctx context.Context, ref string) (site.Commit, error) {
	if isSHA(ref) {
		h := plumbing.NewHash(strings.ToLower(ref))
		if _, err := object.GetCommit(r.st, h); err == nil {
			return site.Commit(h.String()), nil
		}
		err := r.fetch(ctx, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
		if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return "", err
		}
		if _, err := object.GetCommit(r.st, h); err != nil {
			return "", ErrRefNotFound
		}
		return site.Commit(h.String()), nil
	}

	refs, err := r.lsRemote(ctx)
	if err != nil {
		return "", err
	}
	name, _, err := r.resolveIn(ctx, refs, ref)
	if err != nil {
		return "", err
	}
	local := localRefName(name)
	if err := r.fetch(ctx, config.RefSpec("+"+name+":"+local)); err != nil {
		if errors.Is(err, git.NoMatchingRefSpecError{}) {
			return "", fmt.Errorf("%w: %w", ErrRefNotFound, err) // deleted since ls-remote
		}
		return "", err
	}
	// Read back what was fetched: the ref may have moved since ls-remote.
	lr, err := r.repo.Reference(plumbing.ReferenceName(local), true)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", local, err)
	}
	h, err := peel(r.st, lr.Hash())
	if err != nil {
		return "", err
	}
	return site.Commit(h.String()), nil
}

func (r *Repo) fetch(ctx context.Context, specs ...config.RefSpec) error {
	err := r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   specs,
		Auth:       r.auth,
		Tags:       git.NoTags, // only what we asked for
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return masked(err)
}

// localRefName maps a remote ref to where the cache keeps it. Refs outside
// heads and tags go under refs/sitehost/ so they cannot clash with
// branch names (a branch "pull" would block refs/remotes/origin/pull/7/head).
func localRefName(name string) string {
	switch {
	case strings.HasPrefix(name, "refs/heads/"):
		return "refs/remotes/origin/" + strings.TrimPrefix(name, "refs/heads/")
	case strings.HasPrefix(name, "refs/tags/"):
		return name
	case name == "HEAD":
		return "refs/remotes/origin/HEAD"
	default:
		return "refs/sitehost/" + strings.TrimPrefix(name, "refs/")
	}
}

func (r *Repo) lsRemote(ctx context.Context) (remoteRefs, error) {
	rem, err := r.repo.Remote(remoteName)
	if err != nil {
		return remoteRefs{}, err
	}
	refs := remoteRefs{hashes: map[string]plumbing.Hash{}, symrefs: map[string]string{}}
	list, err := rem.ListContext(ctx, &git.ListOptions{Auth: r.auth, PeelingOption: git.AppendPeeled})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return refs, nil // no refs, so every lookup is ErrRefNotFound
	}
	if err != nil {
		return remoteRefs{}, masked(err)
	}
	var peeled []*plumbing.Reference
	for _, ref := range list {
		name := ref.Name().String()
		switch {
		case ref.Type() == plumbing.SymbolicReference:
			refs.symrefs[name] = ref.Target().String()
		case strings.HasSuffix(name, "^{}"):
			peeled = append(peeled, ref)
		default:
			refs.hashes[name] = ref.Hash()
		}
	}
	// The peeled entry of an annotated tag names the commit, not the tag.
	for _, ref := range peeled {
		refs.hashes[strings.TrimSuffix(ref.Name().String(), "^{}")] = ref.Hash()
	}
	for name, target := range refs.symrefs {
		if h, ok := refs.hashes[target]; ok {
			refs.hashes[name] = h
		}
	}
	return refs, nil
}

// lookup finds ref as git would for a fetch: full refs as given, short
// names as a branch first, then a tag. It returns the remote ref to fetch.
func (refs remoteRefs) lookup(ref string) (string, plumbing.Hash, bool) {
	candidates := []string{"refs/heads/" + ref, "refs/tags/" + ref}
	if ref == "HEAD" || strings.HasPrefix(ref, "refs/") {
		candidates = []string{ref}
	}
	for _, name := range candidates {
		if h, ok := refs.hashes[name]; ok {
			if target, ok := refs.symrefs[name]; ok {
				name = target
			}
			return name, h, true
		}
	}
	return "", plumbing.ZeroHash, false
}

// peel follows tag objects to the commit they tag.
func peel(s storer.EncodedObjectStorer, h plumbing.Hash) (plumbing.Hash, error) {
	for range 10 {
		obj, err := s.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("reading object %s: %w", h, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(s, obj)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("decoding tag %s: %w", h, err)
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("object %s is a %s, not a commit", h, obj.Type())
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("tag chain at %s too deep", h)
}

func isSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (r *Repo) maskedURL() string { return MaskCredentials(r.url) }
