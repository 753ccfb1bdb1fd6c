// Package hugochild is the body of the hidden `sitehost hugo-build`
// subcommand: one Hugo build in a fresh process, which exits when done so
// Hugo's global state and memory go with it. It is, with cmd/sitehost, the
// only package that imports Hugo; everything else compiles fast.
package hugochild

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/gohugoio/hugo/commands"
	"github.com/gohugoio/hugo/common/herrors"
	"github.com/gohugoio/hugo/common/hugo"
	"github.com/gohugoio/hugo/config"
	"github.com/gohugoio/hugo/config/allconfig"
	"github.com/gohugoio/hugo/config/security"
	"github.com/gohugoio/hugo/hugofs"

	"github.com/sitehost/sitehost/internal/build"
)

// Main runs one build described by the JSON request on stdin and writes the
// outcome to the request's result file. Hugo's own output goes to stdout and
// stderr, which the parent captures as the build log.
func Main(stdin io.Reader, stderr io.Writer) int {
	var req build.ChildRequest
	if err := json.NewDecoder(io.LimitReader(stdin, 1<<20)).Decode(&req); err != nil {
		fmt.Fprintf(stderr, "hugo-build: reading request: %v\n", err)
		return 2
	}
	res := run(req)
	data, err := json.Marshal(res)
	if err == nil {
		err = os.WriteFile(req.ResultFile, data, 0o600)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hugo-build: writing result: %v\n", err)
		return 2
	}
	if !res.OK {
		for _, p := range res.Problems {
			fmt.Fprintf(stderr, "ERROR %s\n", p)
		}
		return 1
	}
	return 0
}

func run(req build.ChildRequest) build.ChildResult {
	problems, siteExec := checkMounts(req)
	if len(problems) > 0 {
		return build.ChildResult{Problems: problems}
	}
	// The site narrows the tools sitehost allows (build/node.go); Hugo
	// reads HUGO_SECURITY from our environment when it loads the config.
	if sec := os.Getenv("HUGO_SECURITY"); sec != "" {
		narrowed, err := build.NarrowExec(sec, siteExec.Accept)
		if err != nil {
			return build.ChildResult{Problems: []build.Problem{{Message: err.Error()}}}
		}
		os.Setenv("HUGO_SECURITY", narrowed) //nolint:errcheck // cannot fail for this name
	}
	args := []string{
		"--source", req.Src,
		"--destination", req.Out,
		"--baseURL", req.BaseURL,
		"--environment", req.Environment,
		"--cacheDir", req.CacheDir,
		"--noBuildLock",
		"--logLevel", "info",
	}
	if req.Minify {
		args = append(args, "--minify")
	}
	if req.GC {
		args = append(args, "--gc")
	}
	if err := commands.Execute(args); err != nil {
		return build.ChildResult{Problems: problemsOf(err)}
	}
	return build.ChildResult{OK: true}
}

// checkMounts refuses configs that reach outside the checkout. Hugo lets a
// project mount absolute paths and name an absolute theme dir
// (notes/libraries.md §1.5.3); the export already dropped symlinks. It
// also returns the site's own security.exec.allow: the config is read
// without our HUGO_SECURITY, which changes nothing checked here.
func checkMounts(req build.ChildRequest) ([]build.Problem, security.Whitelist) {
	var none security.Whitelist // accepts nothing
	flags := config.New()
	flags.Set("workingDir", req.Src)
	flags.Set("publishDir", req.Out)
	flags.Set("cacheDir", req.CacheDir)
	configs, err := allconfig.LoadConfig(allconfig.ConfigSourceDescriptor{
		Flags:       flags,
		Fs:          hugofs.Os,
		Environment: req.Environment,
		Environ: slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return strings.HasPrefix(kv, "HUGO_SECURITY=")
		}),
	})
	if err != nil {
		return problemsOf(err), none
	}
	caches := map[string]string{}
	for name, c := range configs.Base.Caches {
		caches[name] = c.Dir
	}
	problems := build.DirProblems(req.Src, req.CacheDir, configs.Base.ResourceDir, caches)
	var mods []build.Module
	for _, m := range configs.Modules {
		mod := build.Module{Path: m.Path(), Dir: m.Dir()}
		for _, mnt := range m.Mounts() {
			mod.Mounts = append(mod.Mounts, mnt.Source)
		}
		mods = append(mods, mod)
	}
	problems = append(problems, build.ModuleProblems(req.Src, mods)...)
	return problems, configs.Base.Security.Exec.Allow
}

// problemsOf splits Hugo's joined error into problems with positions.
func problemsOf(err error) []build.Problem {
	var out []build.Problem
	for _, e := range herrors.Errors(err) {
		var p build.Problem
		if fes := herrors.UnwrapFileErrors(e); len(fes) > 0 {
			pos := fes[0].Position()
			p = build.Problem{File: pos.Filename, Line: pos.LineNumber, Column: pos.ColumnNumber,
				Message: build.TrimPosition(e.Error(), pos.Filename)}
		} else {
			// Render errors reach us flattened to text; the position is
			// still in the message as "file:line:col".
			p = build.ProblemFromText(e.Error())
		}
		if h := build.SassHint(p.Message); h != "" {
			p.Message += "; " + h
		} else if strings.Contains(p.Message, notAvailable) {
			p.Message += "; " + libSassHint
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		out = append(out, build.Problem{Message: err.Error()})
	}
	return out
}

// notAvailable is how Hugo says a feature of its extended build (LibSass)
// was asked of a build without it.
const notAvailable = "this feature is not available in your current Hugo version"

// libSassHint says how to get LibSass: sitehost's own build decides it.
const libSassHint = "the site transpiles SCSS with LibSass (toCSS or css.Sass with the default transpiler), " +
	"which needs sitehost built with Hugo's extended build: go build -tags extended ./cmd/sitehost (cgo; " +
	"the README's commands do this); or the site can set transpiler: dartsass"

// Extended reports whether this binary has Hugo's extended build (LibSass):
// sitehost built with -tags extended.
func Extended() bool { return hugo.IsExtended }
