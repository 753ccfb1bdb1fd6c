package gitsrc

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// Environment variables that tell RunGitShim what to answer.
const (
	EnvGitDir    = "SITEHOST_GIT_DIR"    // the site's bare cache
	EnvGitCommit = "SITEHOST_GIT_COMMIT" // the commit being built
	EnvGitPrefix = "SITEHOST_GIT_PREFIX" // the repo subdir Hugo runs in, "" for the root
)

// The --format arguments of bep/gitmap, which Hugo's enableGitInfo runs:
// GitLogFormat since gitmap v1.6.0 (Hugo v0.13x on), GitLogFormatNoBody
// before it (the Hugo releases sites pin back to v0.115.4).
const (
	GitLogFormat       = "--format=format:%x1e%H%x1f%h%x1f%s%x1f%aN%x1f%aE%x1f%ai%x1f%ci%x1f%b%x1d"
	GitLogFormatNoBody = "--format=format:%x1e%H%x1f%h%x1f%s%x1f%aN%x1f%aE%x1f%ai%x1f%ci"
)

// RunGitShim is main for the binary when invoked as "git" by Hugo's
// enableGitInfo; args exclude the program name. It answers the only two
// commands bep/gitmap runs from the cache and refuses everything else, so
// a build never runs real git on repository content:
//
//	git -C <dir> rev-parse --show-cdup
//	git -c diff.renames=0 -c log.showSignature=0 -C <dir> log --name-only --no-merges --format=format:... [<rev>]
//
// The export is the top level, so rev-parse prints an empty line.
func RunGitShim(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	sub, rest := gitSubcommand(args)
	switch sub {
	case "rev-parse":
		if slices.Equal(rest, []string{"--show-cdup"}) {
			fmt.Fprintln(stdout)
			return 0
		}
	case "log":
		if rev, format, ok := gitmapLogArgs(rest); ok {
			return shimLog(rev, format, stdout, stderr, getenv)
		}
	case "":
		sub = "without a subcommand"
	}
	fmt.Fprintf(stderr, "sitehost: git %s is not available in builds\n", sub)
	return 1
}

func shimLog(rev, format string, stdout, stderr io.Writer, getenv func(string) string) int {
	dir, commit := getenv(EnvGitDir), getenv(EnvGitCommit)
	if dir == "" || commit == "" {
		fmt.Fprintf(stderr, "sitehost: git log: %s and %s must be set\n", EnvGitDir, EnvGitCommit)
		return 1
	}
	// Only the build's own commit is known to match the checkout.
	if rev != "" && rev != "HEAD" && !strings.HasPrefix(commit, strings.ToLower(rev)) {
		fmt.Fprintf(stderr, "sitehost: git log %s: only HEAD (%s) is available in builds\n", rev, commit)
		return 1
	}
	if err := writeGitLog(stdout, dir, site.Commit(commit), getenv(EnvGitPrefix), format == GitLogFormat); err != nil {
		fmt.Fprintf(stderr, "sitehost: git log: %v\n", err)
		return 1
	}
	return 0
}

// gitSubcommand skips git's global options and returns the subcommand and
// its arguments.
func gitSubcommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-c" || a == "-C" || a == "--git-dir" || a == "--work-tree" ||
			a == "--namespace" || a == "--config-env" || a == "--super-prefix":
			i++ // skip the value
		case strings.HasPrefix(a, "-"):
			// A flag such as --no-pager or --git-dir=x.
		default:
			return a, args[i+1:]
		}
	}
	return "", nil
}

// gitmapLogArgs accepts exactly gitmap's log options, in one of its
// formats, plus an optional revision; it returns the revision and format.
func gitmapLogArgs(args []string) (rev, format string, ok bool) {
	need := map[string]bool{"--name-only": false, "--no-merges": false}
	for _, a := range args {
		seen, known := need[a]
		switch {
		case known && !seen:
			need[a] = true
		case (a == GitLogFormat || a == GitLogFormatNoBody) && format == "":
			format = a
		case !known && rev == "" && a != "" && !strings.HasPrefix(a, "-"):
			rev = a
		default:
			return "", "", false
		}
	}
	for _, seen := range need {
		if !seen {
			return "", "", false
		}
	}
	return rev, format, format != ""
}
