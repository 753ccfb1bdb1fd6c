package build

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/sitehost/sitehost/internal/sandbox"
)

// newSandbox is the sandbox every process of req runs in (package
// sandbox): it reads the checkout and the toolchain, writes only the
// output, its cache and its scratch dir, and has build.memory as a hard
// limit. Close removes its cgroups. It is nil with Options.NoSandbox.
func (b *Builder) newSandbox(req Request, scratch, cacheDir string, release *Release) (*sandbox.Sandbox, error) {
	if b.opts.NoSandbox {
		if sandbox.Admit(nil, req.Untrusted, b.opts.Unsandboxed) != nil {
			return nil, refuseUnsandboxed("the sandbox is off")
		}
		return nil, nil
	}
	// Hugo writes processed resources into the site (resources/_gen,
	// see cache.go): that one dir of the checkout is writable.
	resources := filepath.Join(req.Src, "resources")
	if err := os.MkdirAll(resources, 0o755); err != nil {
		return nil, fmt.Errorf("making %s: %w", resources, err)
	}
	// And build.buildStats writes hugo_stats.json at the site's root
	// (Tailwind reads it): that one file too, made empty if missing,
	// since Landlock allows only what exists.
	stats := filepath.Join(req.Src, "hugo_stats.json")
	if f, err := os.OpenFile(stats, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o644); err == nil {
		f.Close()
	}
	paths := sandbox.Paths{
		ReadOnly:  sandbox.SystemRead(),
		ReadExec:  append([]string{req.Src}, sandbox.SystemExec()...),
		ReadWrite: []string{req.Out, scratch, cacheDir, resources, "/dev/null", "/dev/zero"},
	}
	if fi, err := os.Lstat(stats); err == nil && fi.Mode().IsRegular() { // never a symlink's target
		paths.ReadWrite = append(paths.ReadWrite, stats)
	}
	paths.ReadExec = append(paths.ReadExec, sandbox.WithTarget(b.opts.Exe)...)
	paths.ReadExec = append(paths.ReadExec, sandbox.WithTarget(b.self)...)
	if release != nil {
		paths.ReadExec = append(paths.ReadExec, sandbox.WithTarget(filepath.Dir(release.Path))...)
	}
	if b.opts.DartSass != "" {
		// The whole Dart Sass dir: its launcher script runs the VM and
		// snapshot next to it.
		for _, p := range sandbox.WithTarget(b.opts.DartSass) {
			paths.ReadExec = append(paths.ReadExec, filepath.Dir(p))
		}
	}
	if b.opts.Node != "" {
		// Node's whole install: the binary and what it loads beside it.
		for _, p := range sandbox.WithTarget(b.opts.Node) {
			paths.ReadExec = append(paths.ReadExec, filepath.Dir(filepath.Dir(p)))
		}
	}
	if req.Git != nil {
		paths.ReadOnly = append(paths.ReadOnly, req.Git.Dir)
	}
	sb, err := b.sandbox.New(filepath.Base(scratch), paths, sandbox.Limits{Memory: b.opts.Memory, CPU: 2 * b.opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("making the build sandbox: %w", err)
	}
	if sandbox.Admit(sb, req.Untrusted, b.opts.Unsandboxed) != nil {
		sb.Close() //nolint:errcheck // refused before it held anything
		return nil, refuseUnsandboxed(fmt.Sprintf("no sandbox here (%s)", b.sandbox))
	}
	return sb, nil
}

func refuseUnsandboxed(why string) error {
	return &UserError{Problems: []Problem{{Message: "untrusted build refused: " + why +
		"; server.build.allow_unsandboxed: true runs such builds anyway"}}}
}

// sandboxCommand is the hook of command(): the process starts as our
// launcher, which applies req's sandbox and executes cmd's program.
func sandboxCommand(cmd *exec.Cmd, req Request) {
	if req.sandbox == nil {
		return
	}
	if err := req.sandbox.Prepare(cmd); err != nil {
		cmd.Err = err
	}
}

// memoryProblem is the failure of a build that went over build.memory:
// killed by the kernel (cgroup), or Go's runtime out of memory (rlimit).
func (b *Builder) memoryProblem(req Request, log []byte) *UserError {
	if b.opts.Memory <= 0 || req.sandbox == nil {
		return nil
	}
	if !req.sandbox.OOMKilled() && !sandbox.GoOutOfMemory(log) {
		return nil
	}
	return &UserError{Problems: []Problem{{Message: fmt.Sprintf(
		"build killed: it went over its memory limit of %s (build.memory)", sizeString(b.opts.Memory))}}}
}

func sizeString(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
