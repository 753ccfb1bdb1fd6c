package gitsrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	format "github.com/go-git/go-git/v5/plumbing/format/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/keylock"
)

// ErrSubmoduleURL is a submodule URL that may not be fetched: a remote
// repository pointing the server at its own files or at a command.
var ErrSubmoduleURL = fault.Stalled(errors.New("gitsrc: submodule URL not allowed"))

// maxSubmoduleDepth bounds nesting, so a repository that (indirectly)
// includes itself cannot recurse forever.
const maxSubmoduleDepth = 8

// ModuleCache serialises fetches into the shared submodule caches, one
// lock per URL, so two sites with the same theme never fetch it into the
// same directory at once. Create one per process and pass it to every
// Open.
type ModuleCache struct {
	locks keylock.Locks // one fetch per URL at a time

	fetches atomic.Int64 // network fetches made, for tests
}

// NewModuleCache returns an empty ModuleCache.
func NewModuleCache() *ModuleCache {
	return &ModuleCache{}
}

// moduleDirName is the cache directory name for a submodule URL.
func moduleDirName(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:])[:16]
}

// isLocalURL reports whether url is file:// or a local path.
func isLocalURL(url string) bool {
	ep, err := transport.NewEndpoint(url)
	return err != nil || ep.Protocol == "file"
}

// resolveSubmoduleURL turns a .gitmodules URL into the URL to fetch, as
// git does: "./x" and "../x" are relative to the parent's remote URL, each
// "../" dropping its last path component. A remote parent may only name
// https, http, ssh, git or scp-like URLs; a local parent (tests, local
// setups) may also name local ones.
func resolveSubmoduleURL(parent, url string) (string, error) {
	if strings.HasPrefix(url, "./") || strings.HasPrefix(url, "../") {
		var err error
		if url, err = relativeURL(parent, url); err != nil {
			return "", err
		}
	}
	if isLocalURL(parent) {
		return url, nil
	}
	if strings.HasPrefix(url, "-") || strings.Contains(url, "::") {
		return "", errBadScheme // an option or a git transport helper such as ext::
	}
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSubmoduleURL, masked(err))
	}
	switch ep.Protocol {
	case "https", "http", "ssh", "git":
		return url, nil
	}
	return "", errBadScheme
}

var errBadScheme = fmt.Errorf("%w: a submodule of a remote repository must use an https, ssh or git URL", ErrSubmoduleURL)

func relativeURL(base, rel string) (string, error) {
	orig := rel
	base = strings.TrimRight(base, "/")
	// A URL's host (scheme://host) or an scp-like host: is as far up as
	// "../" may go, as in git.
	top := 0
	if i := strings.Index(base, "://"); i >= 0 {
		top = i + 3
		if j := strings.IndexByte(base[top:], '/'); j >= 0 {
			top += j
		} else {
			top = len(base)
		}
	}
	for {
		if r, ok := strings.CutPrefix(rel, "./"); ok {
			rel = r
			continue
		}
		r, ok := strings.CutPrefix(rel, "../")
		if !ok {
			break
		}
		rel = r
		// Drop the last component: after a "/", or after the ":" of an
		// scp-like URL (git@host:repo.git).
		i := strings.LastIndexAny(base, "/:")
		switch {
		case i < 0:
			base = "."
		case i < top || strings.HasSuffix(base, ":"):
			return "", fmt.Errorf("%w: %s goes above the root of %s", ErrSubmoduleURL, orig, MaskCredentials(base))
		case base[i] == ':':
			base = base[:i+1]
		default:
			base = base[:i]
		}
	}
	if strings.HasSuffix(base, ":") {
		return base + rel, nil
	}
	return base + "/" + rel, nil
}

// gitmodule is a .gitmodules entry.
type gitmodule struct {
	path, url, update string
}

// submodule exports the gitlink at repo path rp (output path rel) of the
// repository e reads, pinned at h.
func (e *exporter) submodule(ctx context.Context, h plumbing.Hash, rel, rp string) error {
	mods, err := e.modules()
	if err != nil {
		return err
	}
	// The first entry for the path wins, as it comes in the file.
	i := slices.IndexFunc(mods, func(m gitmodule) bool { return m.path == rp })
	switch {
	case i < 0 || mods[i].url == "":
		e.skip(ctx, rel, "submodule without .gitmodules entry")
		return nil
	case mods[i].update == "none":
		e.skip(ctx, rel, "submodule with update = none")
		return nil
	}
	sm := mods[i]
	url, err := resolveSubmoduleURL(e.url, sm.url)
	if err != nil {
		return fmt.Errorf("%s: submodule %s: %w", rel, MaskCredentials(sm.url), err)
	}
	where := fmt.Sprintf("%s: submodule %s@%s", rel, MaskCredentials(url), h.String()[:7])
	if e.depth >= maxSubmoduleDepth {
		return fmt.Errorf("%s: %w: submodules nested more than %d deep", where, ErrTooLarge, maxSubmoduleDepth)
	}
	m, err := e.run.repo.openModule(ctx, url, h)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer m.Close()
	c, err := object.GetCommit(m.st, h)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := e.run.root.Mkdir(rel, 0o755); err != nil {
		return err
	}
	sub := &exporter{run: e.run, st: m.st, url: url, rootTree: c.TreeHash, depth: e.depth + 1}
	return sub.tree(ctx, c.TreeHash, rel, "") // errors name their own paths
}

// modules parses .gitmodules from the root tree of the commit being
// exported (gitlink paths are relative to the repository root, whatever
// subpath is exported). No file is an empty list.
func (e *exporter) modules() ([]gitmodule, error) {
	if e.mods != nil {
		return e.mods, nil
	}
	t, err := object.GetTree(e.st, e.rootTree)
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", e.rootTree, err)
	}
	mods := []gitmodule{}
	f, err := t.File(".gitmodules")
	if err == nil {
		var s string
		if s, err = f.Contents(); err == nil {
			mods, err = parseGitmodules(s)
		}
		if err != nil {
			return nil, fault.Stalled(fmt.Errorf("reading .gitmodules: %w", err))
		}
	} else if !errors.Is(err, object.ErrFileNotFound) {
		return nil, fmt.Errorf("reading .gitmodules: %w", err)
	}
	e.mods = mods
	return mods, nil
}

func parseGitmodules(s string) ([]gitmodule, error) {
	cfg := format.New()
	if err := format.NewDecoder(strings.NewReader(s)).Decode(cfg); err != nil {
		return nil, err
	}
	mods := []gitmodule{}
	for _, ss := range cfg.Section("submodule").Subsections {
		p := ss.Option("path")
		if p == "" {
			continue
		}
		mods = append(mods, gitmodule{path: path.Clean(p), url: ss.Option("url"), update: ss.Option("update")})
	}
	return mods, nil
}

// modulePath reports whether .gitmodules names repo path rp. A
// .gitmodules that cannot be read names nothing here: it only fails an
// export that has a gitlink to look up.
func (e *exporter) modulePath(rp string) bool {
	if e.paths == nil {
		e.paths = map[string]bool{}
		if mods, err := e.modules(); err == nil {
			for _, m := range mods {
				e.paths[m.path] = true
			}
		}
	}
	return e.paths[rp]
}

// openModule opens the shared cache of url and makes sure commit h is in
// it: no network if it is, else all branches and tags, else h by SHA (a
// gitlink may pin a commit no branch holds any more). The URL is
// rewritten first: caches are keyed by what is fetched.
func (r *Repo) openModule(ctx context.Context, url string, h plumbing.Hash) (*Repo, error) {
	url = r.rewrites.Apply(url)
	unlock, err := r.modules.locks.Lock(ctx, url)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := Open(Options{
		URL:    url,
		Dir:    filepath.Join(r.moduleDir, moduleDirName(url)),
		Auth:   r.moduleAuth(url),
		Logger: r.log,
		Limits: r.limits,
	})
	if err != nil {
		return nil, err
	}
	has := func() bool { _, err := object.GetCommit(m.st, h); return err == nil }
	if has() {
		return m, nil
	}
	r.modules.fetches.Add(1)
	err = m.fetch(ctx, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
	if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		m.Close()
		err = fmt.Errorf("fetching: %w", err)
		if unreachable(err) {
			// The URL is the repository's, in .gitmodules: the site's to
			// fix, not a network blip to retry.
			err = fault.Stalled(err)
		}
		return nil, err
	}
	if has() {
		return m, nil
	}
	r.modules.fetches.Add(1)
	err = m.fetch(ctx, config.RefSpec("+"+h.String()+":refs/sitehost/pinned/"+h.String()))
	if err == nil && !has() {
		err = errors.New("not sent by the server")
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("%w: commit %s not on any branch or tag, and fetching it by SHA failed: %w", ErrRefNotFound, h, err)
	}
	return m, nil
}

// unreachable reports whether err says the repository does not exist or
// will not let us read it.
func unreachable(err error) bool {
	return errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, transport.ErrAuthenticationRequired) ||
		errors.Is(err, transport.ErrAuthorizationFailed) || errors.Is(err, transport.ErrInvalidAuthMethod)
}

// moduleAuth is the site's auth for a submodule on the same host as the
// site's repository, and none elsewhere.
func (r *Repo) moduleAuth(url string) transport.AuthMethod {
	site, err1 := transport.NewEndpoint(r.url)
	sub, err2 := transport.NewEndpoint(url)
	if err1 != nil || err2 != nil || !strings.EqualFold(site.Host, sub.Host) || site.Protocol == "file" {
		return nil
	}
	if !r.creds.IsZero() {
		auth, err := r.creds.AuthMethod(url)
		if err != nil {
			return nil // e.g. an ssh key for an https submodule: try anonymously
		}
		return auth
	}
	if isHTTP(site.Protocol) == isHTTP(sub.Protocol) {
		return r.auth
	}
	return nil
}

func isHTTP(protocol string) bool { return protocol == "http" || protocol == "https" }
