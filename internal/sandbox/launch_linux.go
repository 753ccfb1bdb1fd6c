package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Main is the launcher: args are what follows `sandbox-exec` on its
// command line, POLICY -- PROGRAM ARGS.... It applies the policy to this
// thread and executes PROGRAM in its place, so PROGRAM and everything it
// starts inherit it. It returns only on failure: 126 when the sandbox
// could not be applied (nothing ran), 127 when PROGRAM could not be run.
func Main(args []string, stderr io.Writer) int {
	// Never unlocked: no_new_privs, the capability bounding set and the
	// Landlock domain are this thread's, and exec keeps only this thread.
	runtime.LockOSThread()
	if len(args) < 3 || args[1] != "--" {
		fmt.Fprintln(stderr, "usage: sitehost sandbox-exec POLICY -- PROGRAM [ARG...]")
		return 2
	}
	var p policy
	if err := json.Unmarshal([]byte(args[0]), &p); err != nil {
		fmt.Fprintf(stderr, "sitehost sandbox: reading the policy: %v\n", err)
		return 126
	}
	if err := p.apply(); err != nil {
		fmt.Fprintf(stderr, "sitehost sandbox: %v\n", err)
		return 126
	}
	err := syscall.Exec(args[2], args[2:], os.Environ())
	fmt.Fprintf(stderr, "sitehost sandbox: running %s: %v\n", args[2], err)
	return 127
}

func (p policy) apply() error {
	for _, r := range p.Rlimits {
		if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			return fmt.Errorf("setting rlimit %d: %w", r.Resource, err)
		}
	}
	for _, procs := range p.Cgroups {
		// "0" is the writer itself, whatever its pid namespace.
		if err := os.WriteFile(procs, []byte("0"), 0); err != nil {
			return fmt.Errorf("joining the build cgroup: %w", err)
		}
	}
	if p.Egress != 0 {
		// Root of its user namespace still: it may bring lo up.
		if err := p.egress(); err != nil {
			return err
		}
	}
	if p.Proc && os.Getpid() == 1 {
		if err := mountProc(); err != nil {
			return err
		}
	} else {
		// Not in a pid namespace of its own (started without the
		// sandbox's namespaces): the /proc there is the host's.
		p.RO = slices.DeleteFunc(p.RO, func(d string) bool { return d == "/proc" })
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	// In its user namespace the launcher is root with every capability
	// there; with an empty bounding set the program gets none.
	unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) //nolint:errcheck // no ambient capabilities to clear
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	if p.Landlock > 0 {
		if err := p.landlock(); err != nil {
			return fmt.Errorf("applying landlock: %w", err)
		}
	}
	return nil
}

// mountProc mounts, over /proc, a proc of the launcher's own pid
// namespace: the build sees its own processes and none of the server's.
// It happens in a mount namespace of this thread's own (whatever the
// parent asked for: never the host's), with every mount made private
// first, so nothing propagates out.
func mountProc() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("making a mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	return nil
}

const (
	accessRead = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	accessExec = accessRead | unix.LANDLOCK_ACCESS_FS_EXECUTE
	// Rights that apply to a file (not a dir) in a path-beneath rule.
	accessFile = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	// Write dirs may do everything but make device nodes.
	noDevices = unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK
)

// netPortAttr is the kernel's struct landlock_net_port_attr (port in
// host byte order) and ruleNetPort its LANDLOCK_RULE_NET_PORT: x/sys/unix
// (v0.49) has neither.
type netPortAttr struct {
	AllowedAccess uint64
	Port          uint64
}

const ruleNetPort = 2

// fsAccess is every file system right Landlock ABI v handles.
func fsAccess(v int) uint64 {
	switch {
	case v >= 9:
		return 1<<17 - 1
	case v >= 5:
		return 1<<16 - 1
	case v >= 3:
		return 1<<15 - 1
	case v == 2:
		return 1<<14 - 1
	}
	return 1<<13 - 1
}

// landlock restricts this thread: files to the policy's paths, no TCP
// bind, and TCP connect to the policy's ports only (ABI 4), no signals or abstract unix sockets to
// processes outside the domain (ABI 6). Ptrace of processes outside the
// domain is denied by Landlock itself.
func (p policy) landlock() error {
	handled := fsAccess(p.Landlock)
	attr := unix.LandlockRulesetAttr{Access_fs: handled}
	size := unsafe.Offsetof(attr.Access_net) // ABI 1-3 know only Access_fs
	if p.Landlock >= 4 {
		attr.Access_net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size = unsafe.Offsetof(attr.Scoped)
	}
	if p.Landlock >= 6 {
		attr.Scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size = unsafe.Sizeof(attr)
	}
	r, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return fmt.Errorf("creating ruleset: %w", errno)
	}
	fd := int(r)
	defer unix.Close(fd)
	add := func(paths []string, access uint64) error {
		for _, path := range paths {
			pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				return fmt.Errorf("opening %s: %w", path, err)
			}
			var st unix.Stat_t
			a := access & handled
			if unix.Fstat(pfd, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				a &= accessFile
			}
			rule := unix.LandlockPathBeneathAttr{Allowed_access: a, Parent_fd: int32(pfd)}
			_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(fd), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
			unix.Close(pfd)
			if errno != 0 {
				return fmt.Errorf("adding a rule for %s: %w", path, errno)
			}
		}
		return nil
	}
	if err := add(p.RO, accessRead); err != nil {
		return err
	}
	if err := add(p.RX, accessExec); err != nil {
		return err
	}
	if err := add(p.RW, handled&^noDevices); err != nil {
		return err
	}
	for _, port := range p.Connect {
		rule := netPortAttr{AllowedAccess: unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, Port: uint64(port)}
		_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(fd), ruleNetPort, uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
		if errno != 0 {
			return fmt.Errorf("adding a rule for tcp port %d: %w", port, errno)
		}
	}
	// This thread only (no TSYNC flag): exec keeps it, and the others die.
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(fd), 0, 0); errno != 0 {
		return fmt.Errorf("restricting: %w", errno)
	}
	return nil
}
