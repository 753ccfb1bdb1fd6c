package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/config"
)

// exitError makes run exit 1 without printing again what it already said.
type exitError struct{ error }

const usage = `sitehost builds static sites from git and serves them.

Usage:
  sitehost serve    [-c sites.yaml] [--role all|edge|builder]
                                      run everything (control + data plane), or one role
  sitehost validate [-c sites.yaml]   check a config; exit 1 with every problem listed
  sitehost status   [site] [--json]   sites, channels, live and desired commits, sync state
  sitehost deploys  <site> [--channel C] [--limit N] [--json]
                                      deploy history, newest first
  sitehost logs     <site> [deploy] [-f] [--json]
                                      build log of the newest (or given) deploy; -f follows it
  sitehost sync     <site> [--timeout 30m] [--no-wait] [--json]
                                      reconcile now, wait, print the channels; exit 1 if it failed
  sitehost demo     [--http :8080]    zero-setup first run: example site in a local git repo, served
  sitehost build    <dir> -o <out> [--base-url URL] [-c sites.yaml --site NAME]
                                      build a checkout's HEAD exactly as the server would
  sitehost healthcheck [--addr 127.0.0.1:9090] [--path /healthz]
                                      exit 0 if the admin listener answers 200 (container probes)
  sitehost version

Client commands (status, deploys, logs, sync) find the admin API from
SITEHOST_ADMIN and SITEHOST_API_TOKEN, else from the config given with -c.
`

// run is the whole program, minus process-level concerns, so tests can
// call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return systemConsole().run(ctx, args, getenv, stdout, stderr)
}

// run is the program with con's clock and terminal test.
func (con console) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{errors.New("no command")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stdout, stderr)
	case "validate":
		return cmdValidate(rest, getenv, stdout, stderr)
	case "status":
		return cmdStatus(ctx, rest, getenv, stdout, stderr)
	case "deploys":
		return con.cmdDeploys(ctx, rest, getenv, stdout, stderr)
	case "logs":
		return con.cmdLogs(ctx, rest, getenv, stdout, stderr)
	case "sync":
		return con.cmdSync(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, getenv, stdout, stderr)
	case "build":
		return cmdBuild(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "sitehost: unknown command %q\n\n%s", cmd, usage)
	return exitError{fmt.Errorf("unknown command %q", cmd)}
}

func versionString() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("sitehost %s (hugo %s)", v, build.HugoVersion)
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sitehost "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// cmdValidate checks a config as serve would: the file, and what applying
// it needs of this machine (key files, forge and notification settings,
// certificate names), so a file it accepts is a file serve accepts.
func cmdValidate(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	path := fs.String("c", "sites.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return exitError{err}
	}
	cfg, err := config.Load(*path)
	if err == nil {
		sc := cfg.Server
		_, err = compile(cfg, compileEnv{getenv: getenv, https: sc.HTTPS != "", controlHost: sc.ControlHost, previewDomain: sc.PreviewDomain})
	}
	if err != nil {
		return printProblems(err, stderr)
	}
	fmt.Fprintf(stdout, "%s: ok (%d sites)\n", *path, len(cfg.Sites))
	return nil
}

// newLogger logs text to a terminal and JSON elsewhere.
func newLogger(w io.Writer, getenv func(string) string) *slog.Logger {
	level := slog.LevelInfo
	if l := getenv("SITEHOST_LOG_LEVEL"); l != "" {
		level.UnmarshalText([]byte(strings.ToUpper(l))) //nolint:errcheck // keep Info on nonsense
	}
	opts := &slog.HandlerOptions{Level: level}
	if isTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
