// Package gitsrc keeps a per-site bare cache of a site's git repository and
// turns commits into build inputs: it resolves refs against the remote,
// fetches full history incrementally, exports a tree with its submodules
// but without symlinks or .git entries, and answers Hugo's enableGitInfo `git log`
// from the cache so builds never need a git binary. It can also record a
// production publish in the site's repository as a tag and a git note
// (PushTag, PushNote).
//
// It uses go-git only. A Repo is not safe for concurrent use; callers
// serialise work per site.
package gitsrc

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/redact"
)

// Sentinel errors callers branch on. Each is the site's to fix (a ref or
// path the config names that is not there, a tree over the limits), so
// each is marked stalled: a deploy waits for a new commit, not a retry.
var (
	ErrRefNotFound  = fault.Stalled(errors.New("gitsrc: ref not found"))
	ErrPathNotFound = fault.Stalled(errors.New("gitsrc: path not found"))
	ErrTooLarge     = fault.Stalled(errors.New("gitsrc: tree too large"))
	// ErrFileTooLarge: one file is over ExportLimits.MaxFile.
	ErrFileTooLarge = fault.Stalled(errors.New("gitsrc: file too large"))
)

const remoteName = "origin"

// Options configures a site's cache repository.
type Options struct {
	// URL is https://, http://, ssh://, scp-like user@host:path,
	// file:///abs/path or an absolute local path. Local URLs make go-git
	// run git-upload-pack.
	URL string
	// Dir is the cache directory for this site, e.g. <data_dir>/git/<site>.
	// A bare repository is created there on first use.
	Dir string
	// Auth may be nil. It is used for ls-remote, fetch and push.
	Auth transport.AuthMethod
	// Credentials, if not zero, are turned into Auth for URL by Open
	// (see Credentials.AuthMethod); setting both is an error.
	Credentials Credentials
	// Logger must not be nil. The repository adds no "component" of its
	// own: its lines are the caller's (reconcile, config-repo), and a
	// second component key would make them name two.
	Logger *slog.Logger
	// Limits bound Export, submodules included; zero fields take the
	// defaults.
	Limits ExportLimits
	// SubmoduleBase is what relative submodule URLs (../theme.git)
	// resolve against, and what decides whether the repository counts as
	// remote for their safety check; default URL. `sitehost build` fetches
	// a checkout from its folder and gives its origin here, as git would.
	SubmoduleBase string
	// Rewrites map URL prefixes to others (server.git.rewrite) before
	// anything is fetched; credentials apply to the rewritten URL.
	Rewrites Rewrites
	// ModuleDir holds the bare caches of submodules, one per URL, shared
	// by every site; default <Dir>/../_modules.
	ModuleDir string
	// Modules serialises fetches into ModuleDir. Share one between all
	// Repos of a process; nil gives the Repo a private one.
	Modules *ModuleCache
}

// ExportLimits bound what Export writes, so a hostile or runaway repo cannot
// fill the disk.
type ExportLimits struct {
	MaxFiles int   // default 100000
	MaxBytes int64 // default 2 GiB
	MaxFile  int64 // one file, checked before it is read; default DefaultMaxFile, negative: none
}

// DefaultMaxFile is ExportLimits.MaxFile's default.
const DefaultMaxFile = 100 << 20

func (l ExportLimits) withDefaults() ExportLimits {
	if l.MaxFile == 0 {
		l.MaxFile = DefaultMaxFile
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 100000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 2 << 30
	}
	return l
}

// Repo is a site's bare cache repository with remote "origin".
type Repo struct {
	repo   *git.Repository
	st     *filesystem.Storage
	dir    string
	url    string
	auth   transport.AuthMethod
	log    *slog.Logger
	limits ExportLimits

	origURL   string // before Rewrites, to resolve relative submodule URLs
	rewrites  Rewrites
	creds     Credentials // for submodules on the same host
	moduleDir string
	modules   *ModuleCache
}

// Open creates or opens the bare cache repository in opts.Dir and points
// remote "origin" at opts.URL, replacing a URL that changed in config.
func Open(opts Options) (*Repo, error) {
	origURL := opts.URL
	if opts.SubmoduleBase != "" {
		origURL = opts.SubmoduleBase
	}
	opts.URL = opts.Rewrites.Apply(opts.URL)
	auth, err := opts.auth()
	if err != nil {
		return nil, fmt.Errorf("opening git cache: %w", err)
	}
	opts.Auth = auth
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating git cache %s: %w", opts.Dir, err)
	}
	st := openStorage(opts.Dir)
	fetchTo := &packStorage{Storage: st, dir: opts.Dir}
	repo, err := git.Open(fetchTo, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.Init(fetchTo, nil) // nil worktree: bare
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("opening git cache %s: %w", opts.Dir, err)
	}
	if err := setOrigin(repo, opts.URL); err != nil {
		st.Close()
		return nil, fmt.Errorf("configuring remote for %s: %w", MaskCredentials(opts.URL), err)
	}
	if opts.ModuleDir == "" {
		opts.ModuleDir = filepath.Join(filepath.Dir(opts.Dir), "_modules")
	}
	if opts.Modules == nil {
		opts.Modules = NewModuleCache()
	}
	return &Repo{
		origURL:   origURL,
		rewrites:  opts.Rewrites,
		creds:     opts.Credentials,
		moduleDir: opts.ModuleDir,
		modules:   opts.Modules,
		repo:      repo,
		st:        st,
		dir:       opts.Dir,
		url:       opts.URL,
		auth:      opts.Auth,
		log:       opts.Logger,
		limits:    opts.Limits.withDefaults(),
	}, nil
}

// Check reports what would make Open fail before touching the cache
// directory: no URL, or credentials that do not work with it.
func Check(opts Options) error {
	opts.URL = opts.Rewrites.Apply(opts.URL)
	_, err := opts.auth()
	return err
}

func (opts Options) auth() (transport.AuthMethod, error) {
	if opts.URL == "" {
		return nil, errors.New("empty URL")
	}
	if opts.Credentials.IsZero() {
		return opts.Auth, nil
	}
	if opts.Auth != nil {
		return nil, errors.New("both Auth and Credentials are set")
	}
	return opts.Credentials.AuthMethod(opts.URL)
}

// Close releases open pack files.
func (r *Repo) Close() error { return r.st.Close() }

// largeObject is the size above which go-git streams an object from its
// pack or loose file instead of inflating it into memory whole.
const largeObject = 1 << 20

func openStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRUDefault(),
		filesystem.Options{LargeObjectThreshold: largeObject})
}

func setOrigin(repo *git.Repository, url string) error {
	cfg, err := repo.Config()
	if err != nil {
		return err
	}
	if rc, ok := cfg.Remotes[remoteName]; ok && len(rc.URLs) == 1 && rc.URLs[0] == url {
		return nil
	}
	cfg.Remotes[remoteName] = &config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{url},
		Fetch: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"},
	}
	return repo.SetConfig(cfg)
}

// MaskCredentials replaces the userinfo of every URL in s with "***", so
// tokens embedded in repo URLs never reach logs or statuses.
func MaskCredentials(s string) string {
	return redact.Credentials(s)
}

// maskedError masks credentials in the message but keeps the chain for
// errors.Is/As.
type maskedError struct{ err error }

func (e maskedError) Error() string { return MaskCredentials(e.err.Error()) }
func (e maskedError) Unwrap() error { return e.err }

func masked(err error) error {
	if err == nil {
		return nil
	}
	return maskedError{err}
}

// Dir is the cache's bare repository, for WriteGitLog.
func (r *Repo) Dir() string { return r.dir }
