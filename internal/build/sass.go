package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Dart Sass in the build child. Hugo (compiled-in or fetched) looks up
// "sass" in its PATH and runs it with --embedded, after checking the name
// against security.exec.allow. The child's PATH is our scratch bin dir, so
// there we put a "sass" that is our own binary (as for the git shim): it
// execs exactly the Dart Sass the server was given, named by
// SITEHOST_DART_SASS, and exec.allow accepts ^sass$ and nothing else new.
//
// The shim, not a symlink to the configured file, because the usual
// distribution (dart-sass releases, npm's sass-embedded-linux-x64) makes
// "sass" a shell script that finds its directory with dirname and readlink
// from PATH, which the child's PATH does not have. The shim runs the Dart
// VM and snapshot next to such a script directly (sassArgv), without a
// shell.

// sassEnv names the Dart Sass for the shim in the child's environment.
// SITEHOST_ names are reserved, so a site cannot set it.
const sassEnv = "SITEHOST_DART_SASS"

// sassNames are looked up in the server's PATH, in Hugo's order of
// preference, when no binary is configured.
var sassNames = []string{"sass", "dart-sass"}

// SassHint is the advice to add to a build error that says Dart Sass is
// missing ("" when msg is not such an error). It works on the error text,
// so problems parsed from a fetched Hugo's output get it too.
func SassHint(msg string) string {
	// Hugo names the transformation TOCSS-DART, and says "install Dart Sass".
	if !strings.Contains(msg, "TOCSS-DART") && !strings.Contains(msg, "install Dart Sass") {
		return ""
	}
	return "the site asked for transpiler dartsass (css.Sass or toCSS with transpiler: dartsass), and this server has no Dart Sass: " +
		"set server.build.dart_sass to a Dart Sass executable (1.63 or later), or put sass on the server's PATH " +
		"(e.g. dart-sass/sass from npm's sass-embedded-linux-x64 package or a dart-sass release)"
}

// FindDartSass returns the Dart Sass that builds may run and its compiler
// version: configured (an absolute path) or else the first sass or
// dart-sass in pathList (the server's PATH) that speaks Hugo's embedded
// protocol; "" when there is none. It runs each candidate's `--embedded --version` once, so an old
// Ruby or JavaScript sass on PATH is passed over rather than breaking
// builds; a configured one that fails is an error.
func FindDartSass(ctx context.Context, configured, pathList string, log *slog.Logger) (path, version string, err error) {
	if configured != "" {
		v, err := dartSassVersion(ctx, configured)
		if err != nil {
			return "", "", fmt.Errorf("server.build.dart_sass %s: %w", configured, err)
		}
		log.Info("Dart Sass for builds", "path", configured, "version", v)
		return configured, v, nil
	}
	var why []string
	for _, name := range sassNames {
		for _, dir := range filepath.SplitList(pathList) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue // relative PATH entries depend on the cwd
			}
			p := filepath.Join(dir, name)
			if CheckExecutable(p) != nil {
				continue
			}
			v, err := dartSassVersion(ctx, p)
			if err != nil {
				why = append(why, fmt.Sprintf("%s: %v", p, err))
				continue
			}
			log.Info("Dart Sass for builds, found on PATH", "path", p, "version", v)
			return p, v, nil
		}
	}
	if len(why) > 0 {
		log.Warn("no Dart Sass for builds (transpiler: dartsass fails): none on PATH supports --embedded", "tried", why)
	} else {
		log.Info("no Dart Sass for builds (transpiler: dartsass fails): set server.build.dart_sass or put sass on PATH")
	}
	return "", "", nil
}

// CheckExecutable reports whether p is a regular file someone may execute
// (after symlinks).
func CheckExecutable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", p)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}

// dartSassVersion runs the binary as the shim would, with no usable PATH
// as in the build child, and returns its compiler version.
// Only Dart Sass 1.63 or later has --embedded (earlier it was a separate
// dart-sass-embedded, which Hugo no longer supports).
func dartSassVersion(ctx context.Context, p string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	argv := sassArgv(p)
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "--embedded", "--version")...)
	cmd.Env = []string{"PATH=" + os.DevNull}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if s := strings.TrimSpace(stderr.String()); s != "" {
			err = fmt.Errorf("%w: %s", err, firstLine(s))
		}
		return "", fmt.Errorf("not a Dart Sass with --embedded (1.63 or later): %w", err)
	}
	var v struct {
		CompilerVersion string `json:"compilerVersion"`
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.CompilerVersion == "" {
		return "", fmt.Errorf("not a Dart Sass with --embedded (1.63 or later): --embedded --version printed %q", firstLine(string(out)))
	}
	return v.CompilerVersion, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// sassArgv is how to run the Dart Sass at p: p itself, or, when p is the
// launcher script of a standalone dart-sass package, the Dart VM with the
// snapshot beside it (what the script would exec).
func sassArgv(p string) []string {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return []string{p}
	}
	dir := filepath.Join(filepath.Dir(real), "src")
	vm, snapshot := filepath.Join(dir, "dart"), filepath.Join(dir, "sass.snapshot")
	if isScript(real) && CheckExecutable(vm) == nil {
		if fi, err := os.Stat(snapshot); err == nil && fi.Mode().IsRegular() {
			return []string{vm, snapshot}
		}
	}
	return []string{p}
}

func isScript(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2)
	_, err = io.ReadFull(f, head)
	return err == nil && string(head) == "#!"
}

// sassChild sets the child up to run Dart Sass when the server has one: the
// "sass" shim in bin, and its entry added to env.
func (b *Builder) sassChild(env []string, bin string) ([]string, error) {
	if b.opts.DartSass == "" {
		return env, nil
	}
	if err := os.Symlink(b.opts.Exe, filepath.Join(bin, "sass")); err != nil {
		return nil, fmt.Errorf("linking sass shim: %w", err)
	}
	return append(env, sassEnv+"="+b.opts.DartSass), nil
}

// RunSassShim is the body of the "sass" the build child runs: it replaces
// itself with the configured Dart Sass, passing args and the environment
// through, so Hugo talks to Dart Sass over the same pipes.
func RunSassShim(args []string, environ []string, stderr io.Writer) int {
	p := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, sassEnv+"="); ok {
			p = v
		}
	}
	if p == "" {
		fmt.Fprintln(stderr, "sass: no Dart Sass configured for this build")
		return 127
	}
	argv := append(sassArgv(p), args...)
	err := syscall.Exec(argv[0], argv, environ)
	fmt.Fprintf(stderr, "sass: running %s: %v\n", argv[0], err)
	return 127
}
