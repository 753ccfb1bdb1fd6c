package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/hugomod"
	"github.com/sitehost/sitehost/internal/hugorelease"
	"github.com/sitehost/sitehost/internal/npm"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/tempdir"
)

// cmdBuild builds a checkout's committed HEAD exactly as the server would
// build the site's production channel — the same fetch, export, build key
// and sandboxed build — into a folder, so a failed deploy can be
// reproduced on a laptop. Its settings are the defaults, or a site's of a
// config (-c sites.yaml --site NAME).
func cmdBuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("build", stderr)
	out := fs.String("o", "", "output folder (must not exist or be empty)")
	baseURL := fs.String("base-url", "/", "the base URL the site is built for, as the server's channel URL")
	cfgPath := fs.String("c", "", "config file whose site settings to build with (with --site)")
	siteName := fs.String("site", "", "the site of -c to build as")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitError{err}
	}
	if len(pos) != 1 || *out == "" {
		fmt.Fprintln(stderr, "usage: sitehost build <dir> -o <out> [--base-url URL] [-c sites.yaml --site NAME]")
		return exitError{errors.New("want a checkout and -o")}
	}
	if (*cfgPath == "") != (*siteName == "") {
		return buildFailed(stderr, errors.New("-c and --site go together"))
	}
	b, err := buildCheckout(ctx, pos[0], *out, *baseURL, *cfgPath, site.Name(*siteName), getenv, stderr)
	if len(b.Log) > 0 {
		stderr.Write(b.Log) //nolint:errcheck // best effort, like the server's build log
	}
	if err != nil {
		return buildFailed(stderr, err)
	}
	fmt.Fprintf(stdout, "built %s → %s: %d source files\nbuild key %s (deploy %s)\n", b.Commit.Short(), *out, b.Files, b.BuildKey, b.Deploy)
	return nil
}

// buildFailed says why the build failed and makes run exit 1.
func buildFailed(stderr io.Writer, err error) error {
	fmt.Fprintf(stderr, "sitehost build: %v\n", err)
	return exitError{err}
}

// buildCheckout builds dir's HEAD into out.
func buildCheckout(ctx context.Context, dir, out, baseURL, cfgPath string, name site.Name, getenv func(string) string, stderr io.Writer) (reconcile.LocalBuild, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return reconcile.LocalBuild{}, fmt.Errorf("opening the git checkout at %s: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return reconcile.LocalBuild{}, fmt.Errorf("%s is not a checkout: %w", dir, err)
	}
	root := wt.Filesystem.Root()
	head, err := repo.Head()
	if err != nil {
		return reconcile.LocalBuild{}, fmt.Errorf("reading HEAD of %s: %w", root, err)
	}
	spec, sb, err := localSpec(cfgPath, name, root, dir, getenv)
	if err != nil {
		return reconcile.LocalBuild{}, err
	}
	// Relative submodule URLs resolve against the checkout's origin, as
	// git and the server (which fetches the origin) resolve them.
	if origin, err := repo.Remote("origin"); err == nil && len(origin.Config().URLs) > 0 {
		spec.Repo.SubmoduleBase = origin.Config().URLs[0]
	}
	if err := emptyOrAbsent(out); err != nil {
		return reconcile.LocalBuild{}, err
	}
	// Scratch next to out, so the output is moved, not copied.
	data, err := os.MkdirTemp(filepath.Dir(filepath.Clean(out)), ".sitehost-build-")
	if err != nil {
		return reconcile.LocalBuild{}, fmt.Errorf("making scratch space: %w", err)
	}
	defer os.RemoveAll(data)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Hugo releases and npm installs are kept between runs, as the
	// server keeps them under data_dir: fetched once per machine. The
	// server's sandbox and limits: a local build is contained as the
	// server's builds are.
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = data
	}
	scratch, err := claimScratch(logger)
	if err != nil {
		return reconcile.LocalBuild{}, err
	}
	defer scratch.Release() //nolint:errcheck // what is left, the next run sweeps
	builder, npmInstaller, err := newBuilder(ctx, sb, "", filepath.Join(cache, "sitehost", "hugo"), filepath.Join(cache, "sitehost", "npm"), scratch.Path(), getenv, logger)
	if err != nil {
		return reconcile.LocalBuild{}, err
	}
	loop, err := reconcile.New(reconcile.Options{
		Sites: []reconcile.Spec{spec}, DataDir: data, Builder: builder,
		URL:       func(site.Name, site.Channel) string { return baseURL },
		Logger:    logger,
		Modules:   hugomod.Options{Proxies: sb.GoProxy},
		NPM:       npmInstaller,
		Toolchain: builder.Toolchain(),
	})
	if err != nil {
		return reconcile.LocalBuild{}, err
	}
	fmt.Fprintf(stderr, "Building the committed HEAD %s of %s (uncommitted changes are not built: the server would not see them)\n", head.Hash().String()[:7], root)
	return loop.BuildLocal(ctx, spec.Name, head.Hash().String(), out)
}

// localSpec is the site as the server would build it: a config's site, or
// the defaults of a one-site config, with the checkout as its repository.
func localSpec(cfgPath string, name site.Name, root, dir string, getenv func(string) string) (reconcile.Spec, config.ServerBuild, error) {
	var cfg *config.Config
	var err error
	if cfgPath != "" {
		cfg, err = config.Load(cfgPath)
	} else {
		cfg, err = config.Parse("sitehost-build.yaml", []byte("sites: [{name: local, repo: \"file:///checkout\"}]\n"))
		name = "local"
	}
	if err != nil {
		return reconcile.Spec{}, config.ServerBuild{}, err
	}
	rt, err := compile(cfg, compileEnv{getenv: getenv, log: slog.New(slog.DiscardHandler), previewDomain: cfg.Server.PreviewDomain})
	if err != nil {
		return reconcile.Spec{}, config.ServerBuild{}, err
	}
	for _, spec := range rt.specs {
		if spec.Name != name {
			continue
		}
		spec.Repo.URL, spec.Repo.Rewrites, spec.Repo.Credentials = "file://"+root, nil, gitsrc.Credentials{}
		spec.Pin, spec.Branches = "", nil
		if cfgPath == "" {
			// Without a config, the folder given is the site's path.
			abs, err := filepath.Abs(dir)
			if err != nil {
				return reconcile.Spec{}, config.ServerBuild{}, err
			}
			if spec.Path, err = filepath.Rel(root, abs); err != nil {
				return reconcile.Spec{}, config.ServerBuild{}, err
			}
			spec.Path = filepath.ToSlash(spec.Path)
		}
		// Builds never see server secrets, here no more than on a fork's
		// preview: secret_env names stay, empty.
		for k := range spec.Build.SecretEnv {
			spec.Build.SecretEnv[k] = ""
		}
		return spec, cfg.Server.Build, nil
	}
	return reconcile.Spec{}, config.ServerBuild{}, fmt.Errorf("%s has no site %q", cfgPath, name)
}

// emptyOrAbsent refuses to build over an output folder with files in it.
func emptyOrAbsent(out string) error {
	entries, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("output folder %s: %w", out, err)
	case len(entries) > 0:
		return fmt.Errorf("output folder %s is not empty: remove it or give another", out)
	}
	return os.Remove(out) // empty: moved into place by the build
}

// newBuilder is the builder and npm installer server.build describes, the
// same for the server and `sitehost build`: Dart Sass and node resolved
// once, Hugo releases kept in hugoDir, npm installs in npmDir, the
// sandbox and its limits. exe is the binary builds re-execute ("": this
// one); scratch holds the builds' scratch folders ("": os.TempDir()).
func newBuilder(ctx context.Context, sb config.ServerBuild, exe, hugoDir, npmDir, scratch string, getenv func(string) string, log *slog.Logger) (*build.Builder, *npm.Installer, error) {
	sass, sassVersion, err := build.FindDartSass(ctx, sb.DartSass, getenv("PATH"), log)
	if err != nil {
		return nil, nil, err
	}
	releases, err := newReleases(sb, hugoDir, log)
	if err != nil {
		return nil, nil, err
	}
	node, npmNode, npmExe, err := nodeTools(ctx, sb, getenv, log)
	if err != nil {
		return nil, nil, err
	}
	builder, err := build.New(build.Options{
		Exe: exe, Timeout: sb.Timeout, Memory: int64(sb.Memory), Unsandboxed: sb.AllowUnsandboxed,
		DartSass: sass, DartSassVersion: sassVersion, Node: node, ExecAllow: sb.ExecAllow, Releases: releases, Logger: log,
		ScratchDir: scratch,
	})
	if err != nil {
		return nil, nil, err
	}
	return builder, newInstaller(sb, npmNode, npmExe, npmDir, builder.Sandbox(), getenv, log), nil
}

// newReleases is the store of the Hugo releases sites ask for, fetched
// from server.build.hugo_releases into dir; the module proxy lists the
// releases that exist when a site asks for one that does not.
func newReleases(sb config.ServerBuild, dir string, log *slog.Logger) (*hugorelease.Store, error) {
	client := &http.Client{Timeout: 10 * time.Minute}
	return hugorelease.New(hugorelease.Options{
		Releases: sb.HugoReleases, Dir: dir, Client: client, Logger: log,
		Versions: hugorelease.ProxyVersions(&http.Client{Timeout: 10 * time.Second}, sb.GoProxy),
	})
}

// scratchPrefix names the folder of each sitehost process under
// os.TempDir() that its builds' scratch folders go in.
const scratchPrefix = "sitehost-"

// claimScratch removes the scratch folders of sitehost processes that are
// gone (killed mid-build: a build's scratch holds a copy of the site's
// Hugo cache) and claims one for this process.
func claimScratch(log *slog.Logger) (*tempdir.Dir, error) {
	if n, err := tempdir.Sweep(os.TempDir(), scratchPrefix); err != nil {
		log.Warn("removing the build scratch of processes that are gone", "err", err)
	} else if n > 0 {
		log.Info("removed the build scratch of processes that are gone", "folders", n)
	}
	d, err := tempdir.Claim(os.TempDir(), scratchPrefix)
	if err != nil {
		return nil, fmt.Errorf("making build scratch space: %w", err)
	}
	return d, nil
}
