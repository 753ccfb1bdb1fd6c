//go:build !linux

package sandbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
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
	egress  egress
	inForce []string
}

// New returns a sandbox with nothing in force.
// With Paths.Egress, the program's way out is a listener on the host's
// 127.0.0.1 that nothing holds it to.
func (s *Support) New(id string, paths Paths, lim Limits) (*Sandbox, error) {
	sb := uncontained(s.exe, runtime.GOOS)
	if paths.Egress {
		if _, err := sb.egress.setup(false); err != nil {
			return nil, err
		}
	}
	return sb, nil
}

// Prepare leaves cmd as it is: off Linux there is no launcher, and
// untrusted builds were refused (Contained is false).
func (sb *Sandbox) Prepare(cmd *exec.Cmd) error { return cmd.Err }

// SysProcAttr adds nothing.
func (sb *Sandbox) SysProcAttr(*syscall.SysProcAttr) {}

// OOMKilled is always false: no cgroup to tell.
func (sb *Sandbox) OOMKilled() bool { return false }

// PeakMemory is 0: nothing measures it.
func (sb *Sandbox) PeakMemory() int64 { return 0 }

// Close closes the egress listener.
func (sb *Sandbox) Close() error {
	sb.egress.close()
	return nil
}

// No network namespaces off Linux: egress.setup never asks for these.
func socketPair() (parent, child *os.File, err error) { return nil, nil, ErrUnsupported }

func receiveListener(context.Context, *os.File) (net.Listener, error) { return nil, ErrUnsupported }

// Main refuses: there is no launcher off Linux.
func Main(args []string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "sitehost sandbox: %v: no sandbox on %s\n", ErrUnsupported, runtime.GOOS)
	return 126
}
