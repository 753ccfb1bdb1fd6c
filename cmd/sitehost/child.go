package main

import (
	"os"
	"path/filepath"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/build/hugochild"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/sandbox"
)

// child runs the roles this binary plays for a build: the hidden
// `sandbox-exec` launcher every build process starts through, the hidden
// `hugo-build` subcommand, "git" for Hugo's enableGitInfo and "sass" for
// transpiler dartsass (symlinks with those names in the build's PATH). ok is
// false for every other invocation.
func child(argv []string) (code int, ok bool) {
	if len(argv) > 0 && filepath.Base(argv[0]) == "git" {
		return gitsrc.RunGitShim(argv[1:], os.Stdout, os.Stderr, os.Getenv), true
	}
	if len(argv) > 0 && filepath.Base(argv[0]) == "sass" {
		return build.RunSassShim(argv[1:], os.Environ(), os.Stderr), true
	}
	if len(argv) > 1 && argv[1] == sandbox.Arg {
		return sandbox.Main(argv[2:], os.Stderr), true
	}
	if len(argv) > 1 && argv[1] == "hugo-build" {
		return hugochild.Main(os.Stdin, os.Stderr), true
	}
	return 0, false
}
