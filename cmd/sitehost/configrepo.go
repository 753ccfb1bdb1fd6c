package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/site"
)

// configSite is the name webhooks use for the config repository itself;
// site names are [a-z0-9-], so no site can have it.
const configSite site.Name = "_config"

// configRepo keeps sitehost's own configuration in git (serve
// --config-repo): the file is read from the ref's newest commit, and
// changes arrive by poll or webhook, like any site's.
type configRepo struct {
	url, ref, path string
	secret         string // webhook secret for the config repository, if any
	repo           *gitsrc.Repo
	opts           gitsrc.Options // how repo was opened
	log            *slog.Logger
	trigger        chan struct{}
	// seen is the commit last applied, or refused for what its file
	// says; a commit refused for any other reason is tried again.
	seen site.Commit
}

// openConfigRepo opens the fetch cache of the config repository under dir.
// gitsrc tags its lines with its own component, so it gets logger as is.
func openConfigRepo(url, ref, path, dir, secret string, logger *slog.Logger) (*configRepo, error) {
	sum := sha256.Sum256([]byte(url))
	c := &configRepo{url: url, ref: ref, path: path, secret: secret, log: logger.With("component", "config-repo"), trigger: make(chan struct{}, 1),
		opts: gitsrc.Options{URL: url, Dir: filepath.Join(dir, hex.EncodeToString(sum[:8])),
			Logger: logger.With("config_repo", gitsrc.MaskCredentials(url))}}
	var err error
	if c.repo, err = gitsrc.Open(c.opts); err != nil {
		return nil, fmt.Errorf("opening config repository: %w", err)
	}
	return c, nil
}

// rewrite makes later fetches follow server.git.rewrite of the config
// applied (the first fetch, which reads that config, cannot: give
// --config-repo the mirror's URL where the original is unreachable).
func (c *configRepo) rewrite(rs gitsrc.Rewrites) {
	if slices.Equal(rs, c.opts.Rewrites) {
		return
	}
	opts := c.opts
	opts.Rewrites = rs
	repo, err := gitsrc.Open(opts)
	if err != nil {
		c.log.Warn("config repository: server.git.rewrite not applied to it", "err", err)
		return
	}
	c.repo.Close()
	c.repo, c.opts = repo, opts
	c.log.Info("config repository fetched from", "url", gitsrc.MaskCredentials(rs.Apply(c.url)))
}

// read fetches the ref and returns the config file at its commit.
func (c *configRepo) read(ctx context.Context) (site.Commit, []byte, error) {
	commit, err := c.repo.Fetch(ctx, c.ref)
	if err != nil {
		return "", nil, fmt.Errorf("fetching config repository: %w", err)
	}
	data, _, err := c.repo.ReadFile(commit, c.path, config.MaxFileSize)
	if err != nil {
		return commit, nil, fmt.Errorf("reading %s at %s: %w", c.path, commit.Short(), err)
	}
	return commit, data, nil
}

// follow polls the config repository (and reads it at once when a webhook
// says it moved) until ctx ends, handing each new commit's file to apply.
// A commit whose file is invalid waits for the next commit; one refused
// for another reason (a key file not there yet, storage down) is applied
// again at every poll until it succeeds.
func (c *configRepo) follow(ctx context.Context, every time.Duration, apply func(configVersion, []byte) error, rewrites func() gitsrc.Rewrites) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var retrying site.Commit // a commit whose apply failed, tried at every poll
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.trigger:
		}
		c.rewrite(rewrites())
		commit, data, err := c.read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("config repository not read; the running config stays", "err", err)
			}
			continue
		}
		if commit == c.seen {
			continue
		}
		if commit != retrying {
			c.log.Info("config repository moved", "commit", commit.Short())
		}
		switch err := apply(c.version(commit), data); {
		case err == nil, errors.Is(err, errInvalid):
			c.seen, retrying = commit, ""
		default:
			if commit != retrying {
				c.log.Warn("config commit will be applied again at every poll until it applies", "commit", commit.Short(), "every", every.String())
			}
			retrying = commit
		}
	}
}

// version names commit's config.
func (c *configRepo) version(commit site.Commit) configVersion {
	return configVersion{source: "git", path: c.path, repo: gitsrc.MaskCredentials(c.url), id: string(commit)}
}

// poke asks follow to read the repository now.
func (c *configRepo) poke() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// configDispatch lets webhooks for the config repository reach it, and
// passes every other one on to the control loop.
type configDispatch struct {
	s *server
}

func (d configDispatch) Dispatch(ctx context.Context, name site.Name, ev site.Event) error {
	if name == configSite && d.s.configRepo != nil {
		d.s.configRepo.poke()
		return nil
	}
	if !d.s.ownsHere(name) {
		return d.s.dispatchRemote(ctx, name, ev)
	}
	return d.s.loop.Dispatch(ctx, name, ev)
}

func (d configDispatch) Trigger(name site.Name) error {
	if name == configSite && d.s.configRepo != nil {
		d.s.configRepo.poke()
		return nil
	}
	if !d.s.ownsHere(name) {
		_, err := d.s.triggerRemote(context.Background(), name)
		return err
	}
	return d.s.loop.Trigger(name)
}

// configRepoPath is where config repositories are cached: under the user's
// cache dir, since data_dir is in the config that is not read yet.
func configRepoPath() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "sitehost", "config-repo")
	}
	return filepath.Join(os.TempDir(), "sitehost-config-repo")
}
