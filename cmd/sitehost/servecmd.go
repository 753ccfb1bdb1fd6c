package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gitsrc"
)

// serveArgs are serve's flags.
type serveArgs struct {
	path, repoURL, repoRef, repoPath, repoSecret, role *string
	repoPoll                                           *time.Duration
}

// parseServeArgs parses serve's command line (deploy/'s manifests are
// checked against it too).
func parseServeArgs(args []string, stderr io.Writer) (serveArgs, error) {
	fs := newFlags("serve", stderr)
	a := serveArgs{
		path:       fs.String("c", "sites.yaml", "config file"),
		repoURL:    fs.String("config-repo", "", "keep the config in this git repository instead of a local file"),
		repoRef:    fs.String("config-ref", "main", "with --config-repo: the branch, tag or commit to follow"),
		repoPath:   fs.String("config-path", "sites.yaml", "with --config-repo: the config file's path in the repository"),
		repoPoll:   fs.Duration("config-poll", time.Minute, "with --config-repo: how often to look for new commits"),
		repoSecret: fs.String("config-webhook-secret-env", "", "with --config-repo: environment variable holding its webhook secret"),
		role:       fs.String("role", "", "all, edge or builder (default: server.role, else all)"),
	}
	if err := fs.Parse(args); err != nil {
		return a, exitError{err}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected arguments %q\n", fs.Args())
		return a, exitError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *a.role != "" && !slices.Contains(config.Roles, *a.role) {
		fmt.Fprintf(stderr, "serve: --role: want all, edge or builder, got %q\n", *a.role)
		return a, exitError{fmt.Errorf("bad --role %q", *a.role)}
	}
	return a, nil
}

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	a, err := parseServeArgs(args, stderr)
	if err != nil {
		return err
	}
	path, repoURL, repoRef, repoPath, repoPoll, repoSecret, role := a.path, a.repoURL, a.repoRef, a.repoPath, a.repoPoll, a.repoSecret, a.role
	logger := newLogger(stderr, getenv)
	opts := serverOptions{Getenv: getenv, Logger: logger, Role: *role}
	var data []byte
	name := *path
	if *repoURL != "" {
		secret := ""
		if *repoSecret != "" {
			secret = getenv(*repoSecret)
		}
		cr, err := openConfigRepo(*repoURL, *repoRef, *repoPath, configRepoPath(), secret, logger)
		if err != nil {
			return err
		}
		commit, d, err := cr.read(ctx)
		if err != nil {
			return err
		}
		// Relative paths in a config from git resolve against the working
		// directory: the file's folder exists only in the repository.
		cr.seen, data, name = commit, d, filepath.Base(*repoPath)
		opts.ConfigRepo, opts.ConfigPoll, opts.Version = cr, *repoPoll, cr.version(commit)
		logger.Info("config from git", "repo", gitsrc.MaskCredentials(*repoURL), "ref", *repoRef, "path", *repoPath, "commit", commit.Short())
	} else {
		d, err := os.ReadFile(*path)
		if err != nil {
			return fmt.Errorf("loading config: %w", err)
		}
		data = d
	}
	cfg, err := parseConfig(name, data, stderr)
	if err != nil {
		return err
	}
	opts.ConfigData = data
	srv, err := newServer(ctx, cfg, opts)
	if len(config.Problems(err)) > 0 {
		return printProblems(err, stderr) // what compile found
	}
	if err != nil {
		return err
	}
	return srv.run(ctx)
}

// parseConfig parses and validates, printing every problem.
func parseConfig(path string, data []byte, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Parse(path, data)
	if err != nil {
		return nil, printProblems(err, stderr)
	}
	return cfg, nil
}

// printProblems prints each of err's config problems on a line of its
// own (or err itself, when it has none); the result is an exitError, since
// it has been said.
func printProblems(err error, stderr io.Writer) error {
	probs := config.Problems(err)
	for _, p := range probs {
		fmt.Fprintln(stderr, p)
	}
	if len(probs) == 0 {
		fmt.Fprintln(stderr, err)
	}
	if len(probs) > 1 {
		fmt.Fprintf(stderr, "%d problems\n", len(probs))
	}
	return exitError{err}
}
