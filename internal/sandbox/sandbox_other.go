//go:build !linux

package sandbox

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"syscall"
)

// launcher: off Linux, programs start as themselves.
const launcher = false

// Support is what this system offers: nothing, off Linux.
type Support struct{ exe string }

// Detect finds no sandbox off Linux.
func Detect(exe string) *Support { return &Support{exe: exe} }

// String says there is none and what is missing, for the startup log.
func (s *Support) String() string { return offLinux(runtime.GOOS) }

// Sweep has no cgroups to remove off Linux.
func (s *Support) Sweep(*slog.Logger) int { return 0 }

// Sandbox off Linux contains nothing: Contained is false.
type Sandbox struct {
	exe     string
	policy  policy
	userNS  bool
	network bool
	inForce []string
}

// New returns a sandbox with nothing in force.
func (s *Support) New(id string, paths Paths, lim Limits) (*Sandbox, error) {
	return uncontained(s.exe, runtime.GOOS), nil
}

// SysProcAttr adds nothing.
func (sb *Sandbox) SysProcAttr(*syscall.SysProcAttr) {}

// OOMKilled is always false: no cgroup to tell.
func (sb *Sandbox) OOMKilled() bool { return false }

// PeakMemory is 0: nothing measures it.
func (sb *Sandbox) PeakMemory() int64 { return 0 }

// Close has nothing to remove.
func (sb *Sandbox) Close() error { return nil }

// Main refuses: there is no launcher off Linux.
func Main(args []string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "sitehost sandbox: %v: no sandbox on %s\n", ErrUnsupported, runtime.GOOS)
	return 126
}
