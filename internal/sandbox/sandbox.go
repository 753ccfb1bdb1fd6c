// Package sandbox contains a build's processes with the kernel's own
// mechanisms: Landlock (files, TCP, signals, abstract sockets), user,
// network, pid, ipc and uts namespaces, a cgroup per build (memory and
// process count) and rlimits (CPU time, file size, open files).
//
// The parent (the server) detects what this kernel offers once (Detect),
// makes a Sandbox per build (New: the cgroups), and starts every process
// of the build through the launcher: our own binary re-executed as
// `sitehost sandbox-exec OPTION... -- PROGRAM ARGS...`, which applies the
// sandbox to itself and then executes PROGRAM. Prepare makes the Landlock
// ruleset and opens the cgroups in the parent and hands them over as
// file descriptors, so the launcher only enforces them; where cgo is on,
// a C constructor (fastlaunch_linux.c) does that before the Go runtime
// starts, and Main, in Go, does every other launch (no cgo, Command's
// JSON policy). Everything is fixed before PROGRAM exists: nothing the
// build runs can widen it.
//
// A program that needs the network (an npm install) gets one way out
// (Paths.Egress): a listener the parent serves, e.g. with a proxy that
// decides where it may go.
package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Arg is the subcommand our binary answers as the launcher.
const Arg = "sandbox-exec"

// ErrUnsupported: this system has no sandbox we can use.
var ErrUnsupported = errors.New("sandbox: not supported")

// Paths are what a build may touch; everything else is invisible to it
// (where Landlock is in force). Missing paths are skipped.
type Paths struct {
	ReadOnly  []string // read files, list dirs
	ReadExec  []string // and execute: the toolchain
	ReadWrite []string // and create, write, remove
	// ConnectTCP are the TCP ports the program may connect to, on any
	// host. Set, the sandbox has the host's network (no network
	// namespace of its own) and Landlock (ABI 4) refuses TCP connections
	// to other ports; nil: no network at all.
	ConnectTCP []uint16
	// Egress gives the program one way out: a TCP listener the parent
	// serves (Sandbox.Egress), at Sandbox.EgressAddr, e.g. a proxy that
	// decides where the program may go. With a network namespace, the
	// program's own has only loopback and that listener, made there by
	// the launcher; without, it is the parent's on the host's 127.0.0.1
	// and Landlock (ABI 4) holds TCP to its port. One program per
	// sandbox; not with ConnectTCP.
	Egress bool
}

// EgressPort is where the program finds the egress listener in its own
// network namespace: any port would do, nothing else listens there.
const EgressPort = 3128

// egressFD is the launcher's fd of the socket it sends the egress
// listener over: the first of exec.Cmd.ExtraFiles (Sandbox.Files).
const egressFD = 3

// SystemExec are the system dirs a toolchain runs from: shared
// libraries and programs (read and execute).
func SystemExec() []string { return []string{"/usr", "/lib", "/lib64", "/bin", "/sbin"} }

// SystemRead are the system files a toolchain reads: the loader's
// cache, CA roots, the time zone, MIME types and randomness.
func SystemRead() []string {
	return []string{"/etc/ld.so.cache", "/etc/ssl", "/etc/pki", "/etc/ca-certificates", "/etc/localtime", "/etc/mime.types", "/dev/urandom", "/dev/random"}
}

// Limits are enforced by the kernel: cgroup limits where a cgroup
// hierarchy we can write is mounted, rlimits otherwise.
type Limits struct {
	Memory   int64         // hard memory limit, bytes (0: none)
	Pids     int64         // processes and threads (0: DefaultPids)
	CPU      time.Duration // CPU time, whole seconds (0: none)
	FileSize int64         // largest file written (0: DefaultFileSize)
	NoFile   uint64        // open files (0: DefaultNoFile)
}

// Defaults for Limits.
const (
	DefaultPids     = 512
	DefaultFileSize = 4 << 30
	DefaultNoFile   = 4096
)

// policy is what the launcher applies to itself before executing the
// program. The JSON fields are Command's; Prepare passes the ruleset and
// cgroups as files instead (the fds, read by parseLaunch).
type policy struct {
	Landlock int      `json:"landlock,omitempty"` // ABI version to use; 0: none
	RO       []string `json:"ro,omitempty"`
	RX       []string `json:"rx,omitempty"`
	RW       []string `json:"rw,omitempty"`
	Connect  []uint16 `json:"connect,omitempty"` // TCP ports allowed (Landlock >= 4)
	// Egress: the port of the listener to make on 127.0.0.1 in the
	// launcher's own network namespace, sent to the parent over egressFD.
	Egress  uint16   `json:"egress,omitempty"`
	Cgroups []string `json:"cgroups,omitempty"` // cgroup.procs files to join
	Proc    bool     `json:"proc,omitempty"`    // mount a /proc of the build's own pid namespace
	Rlimits []rlimit `json:"rlimits,omitempty"`

	rulesetFD int   // a Landlock ruleset made by the parent; 0: none
	cgroupFDs []int // cgroup.procs files opened by the parent
}

type rlimit struct {
	Resource int    `json:"r"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// Command returns how to start program with args in the sandbox: our
// own binary as the launcher, with the whole policy on its command line
// in JSON, which only the launcher in Go reads (its Go runtime starts:
// ~70 ms for sitehost). Prepare is the fast way, for a caller that can
// hand over an exec.Cmd. Where there is no launcher (off Linux) it is
// program itself: trusted builds run as before, and untrusted ones were
// refused (Contained is false).
func (s *Sandbox) Command(program string, args []string) (string, []string, error) {
	if !filepath.IsAbs(program) {
		return "", nil, fmt.Errorf("sandbox: program %q is not an absolute path", program)
	}
	if !launcher {
		return program, args, nil
	}
	pol := s.policy
	if pol.Proc && pol.Landlock > 0 {
		// Named here, resolved in the launcher: its own /proc.
		pol.RO = append(slices.Clone(pol.RO), "/proc")
	}
	p, err := json.Marshal(pol)
	if err != nil {
		return "", nil, fmt.Errorf("encoding sandbox policy: %w", err)
	}
	argv := append([]string{Arg, string(p), "--", program}, args...)
	return s.exe, argv, nil
}

// String lists the mechanisms in force, for the build log and the
// deploy's summary, e.g. "landlock v7, user+net+pid+ipc+uts namespaces,
// cgroup v1 memory 256 MiB + pids 512, rlimits cpu/fsize/nofile".
func (s *Sandbox) String() string {
	if len(s.inForce) == 0 {
		return "none"
	}
	return strings.Join(s.inForce, ", ")
}

// Contained reports whether the build cannot reach the server's files
// and network: Landlock, or at least a user namespace with its own
// network. With Paths.ConnectTCP, or Paths.Egress without a network
// namespace, only Landlock ABI 4 or later, which holds TCP to those
// ports.
func (s *Sandbox) Contained() bool {
	if s.network {
		return s.policy.Landlock >= 4
	}
	return s.policy.Landlock > 0 || s.userNS
}

// GoOutOfMemory reports whether a Go program's output says the runtime
// died for lack of memory: what RLIMIT_DATA does to Hugo.
func GoOutOfMemory(output []byte) bool {
	for _, msg := range []string{"fatal error: out of memory", "fatal error: runtime: out of memory", "fatal error: runtime: cannot allocate memory"} {
		if bytes.Contains(output, []byte(msg)) {
			return true
		}
	}
	return false
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// WithTarget is p and, when p is a symlink, what it resolves to: Landlock
// checks the file a path resolves to, so a rule needs both.
func WithTarget(p string) []string {
	if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
		return []string{p, r}
	}
	return []string{p}
}
