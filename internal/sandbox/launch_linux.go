package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Main is the launcher in Go: args are what follows `sandbox-exec` on its
// command line, OPTION... -- PROGRAM ARGS... (see Prepare) or, from
// Command, POLICY -- PROGRAM ARGS... with the policy in JSON. It applies
// the policy to this thread and executes PROGRAM in its place, so PROGRAM
// and everything it starts inherit it. It returns only on failure: 126
// when the sandbox could not be applied (nothing ran), 127 when PROGRAM
// could not be run. Where cgo is on, the launcher in C (fastlaunch_linux.c)
// has already done all this before the Go runtime started, for every
// launch it knows how to apply.
func Main(args []string, stderr io.Writer) int {
	// Never unlocked: no_new_privs, the capability bounding set and the
	// Landlock domain are this thread's, and exec keeps only this thread.
	runtime.LockOSThread()
	sep := slices.Index(args, "--")
	if sep < 0 || sep+1 >= len(args) {
		fmt.Fprintln(stderr, "usage: sitehost sandbox-exec OPTION... -- PROGRAM [ARG...]")
		return 2
	}
	p, err := parseLaunch(args[:sep])
	if err != nil {
		fmt.Fprintf(stderr, "sitehost sandbox: reading the policy: %v\n", err)
		return 126
	}
	if err := p.apply(); err != nil {
		fmt.Fprintf(stderr, "sitehost sandbox: %v\n", err)
		return 126
	}
	prog := args[sep+1:]
	env := os.Environ()
	for i, kv := range env {
		env[i] = strings.TrimPrefix(kv, envPrefix)
	}
	err = syscall.Exec(prog[0], prog, env)
	fmt.Fprintf(stderr, "sitehost sandbox: running %s: %v\n", prog[0], err)
	return 127
}

// parseLaunch reads the launcher's options: one JSON policy (Command), or
// the few numbers of Prepare, each its own argument:
//
//	rlimit=RESOURCE,CUR,MAX  set an rlimit
//	cgroup=FD                write "0" to FD, a cgroup.procs file: join it
//	proc                     mount a /proc of our own pid namespace (when pid 1)
//	landlock=FD              restrict to the Landlock ruleset FD (plus /proc)
//	go                       nothing: the launcher in C steps aside for it
//
// The launcher in C steps aside for any option it does not know, so a
// step only Main has (one that needs the Go runtime) takes an option of
// its own here and the launch is Main's.
func parseLaunch(opts []string) (policy, error) {
	var p policy
	if len(opts) == 1 && strings.HasPrefix(opts[0], "{") {
		err := json.Unmarshal([]byte(opts[0]), &p)
		return p, err
	}
	ints := func(s string, n int) ([]uint64, error) {
		f := strings.Split(s, ",")
		if len(f) != n {
			return nil, fmt.Errorf("%q: want %d numbers", s, n)
		}
		v := make([]uint64, n)
		for i := range f {
			var err error
			if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
	fd := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err == nil && n < 3 {
			err = fmt.Errorf("fd %d is not one passed to us", n)
		}
		return n, err
	}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		var err error
		switch k {
		case "rlimit":
			var r []uint64
			if r, err = ints(v, 3); err == nil {
				p.Rlimits = append(p.Rlimits, rlimit{int(r[0]), r[1], r[2]})
			}
		case "cgroup":
			var n int
			if n, err = fd(v); err == nil {
				p.cgroupFDs = append(p.cgroupFDs, n)
			}
		case "landlock":
			p.rulesetFD, err = fd(v)
		case "proc":
			p.Proc = true
		case "go":
		default:
			err = errors.New("unknown option")
		}
		if err != nil {
			return p, fmt.Errorf("option %q: %w", o, err)
		}
	}
	return p, nil
}

// step is one thing the launcher does to itself, in order.
type step struct {
	name string
	do   func(*policy) error
}

// steps are what the launcher does, in this order: limits and cgroups
// first (everything after counts), /proc while it may still mount,
// Landlock last (it needs no_new_privs). fastlaunch_linux.c does the same
// steps, for a launch without a JSON policy.
var steps = []step{
	{"setting rlimits", (*policy).rlimits},
	{"joining the build cgroup", (*policy).joinCgroups},
	{"making the egress listener", (*policy).egressListener},
	{"mounting /proc", (*policy).proc},
	{"setting no_new_privs", (*policy).noNewPrivs},
	{"dropping capabilities", (*policy).dropCaps},
	{"applying landlock", (*policy).landlock},
	{"closing the launcher's files", (*policy).closeOnExec},
}

func (p *policy) apply() error {
	for _, s := range steps {
		if err := s.do(p); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func (p *policy) rlimits() error {
	for _, r := range p.Rlimits {
		if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			return fmt.Errorf("rlimit %d: %w", r.Resource, err)
		}
	}
	return nil
}

func (p *policy) joinCgroups() error {
	// "0" is the writer itself, whatever its pid namespace.
	for _, procs := range p.Cgroups {
		if err := os.WriteFile(procs, []byte("0"), 0); err != nil {
			return err
		}
	}
	for _, fd := range p.cgroupFDs {
		if _, err := unix.Write(fd, []byte("0")); err != nil {
			return err
		}
	}
	return nil
}

// egressListener makes the program's one way out (Paths.Egress): as root
// of its user namespace still, it may bring lo up.
func (p *policy) egressListener() error {
	if p.Egress == 0 {
		return nil
	}
	return p.egress()
}

func (p *policy) proc() error {
	if p.Proc && os.Getpid() == 1 {
		if err := mountProc(); err != nil {
			return err
		}
		if p.rulesetFD > 0 {
			// The ruleset came from the parent, which could not name
			// this /proc: it did not exist.
			return addPaths(p.rulesetFD, 1, []string{"/proc"}, accessRead)
		}
		return nil
	}
	// Not in a pid namespace of its own (started without the
	// sandbox's namespaces): the /proc there is the host's.
	p.RO = slices.DeleteFunc(p.RO, func(d string) bool { return d == "/proc" })
	return nil
}

func (p *policy) noNewPrivs() error {
	return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
}

// dropCaps: in its user namespace the launcher is root with every
// capability there; with an empty bounding set the program gets none.
func (p *policy) dropCaps() error {
	unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) //nolint:errcheck // no ambient capabilities to clear
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("capability %d: %w", c, err)
		}
	}
	return nil
}

// closeOnExec: the files the parent passed are the launcher's, never the
// program's.
func (p *policy) closeOnExec() error {
	for _, fd := range append(slices.Clone(p.cgroupFDs), p.rulesetFD) {
		if fd > 0 {
			unix.CloseOnExec(fd)
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

// landlock restricts this thread to the ruleset the parent made, or to
// one made here from a JSON policy's paths.
func (p *policy) landlock() error {
	if p.Landlock == 0 && p.rulesetFD == 0 {
		return nil
	}
	fd := p.rulesetFD
	if fd == 0 {
		var err error
		if fd, err = p.ruleset(); err != nil {
			return err
		}
		defer unix.Close(fd)
	}
	// This thread only (no TSYNC flag): exec keeps it, and the others die.
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(fd), 0, 0); errno != 0 {
		return fmt.Errorf("restricting: %w", errno)
	}
	return nil
}

// ruleset makes the Landlock ruleset of the policy: files to its paths,
// no TCP bind, and TCP connect to its ports only (ABI 4), no signals or
// abstract unix sockets to processes outside the domain (ABI 6). Ptrace
// of processes outside the domain is denied by Landlock itself. Making
// it restricts nobody: the parent makes it, the launcher enforces it.
func (p *policy) ruleset() (int, error) {
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
		return -1, fmt.Errorf("creating ruleset: %w", errno)
	}
	fd := int(r)
	err := errors.Join(
		addPaths(fd, p.Landlock, p.RO, accessRead),
		addPaths(fd, p.Landlock, p.RX, accessExec),
		addPaths(fd, p.Landlock, p.RW, handled&^noDevices))
	for _, port := range p.Connect {
		if err != nil {
			break
		}
		rule := netPortAttr{AllowedAccess: unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, Port: uint64(port)}
		if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(fd), ruleNetPort, uintptr(unsafe.Pointer(&rule)), 0, 0, 0); errno != 0 {
			err = fmt.Errorf("adding a rule for tcp port %d: %w", port, errno)
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// addPaths adds to the ruleset fd a rule giving access (of those ABI abi
// handles) beneath each of paths that exists.
func addPaths(fd, abi int, paths []string, access uint64) error {
	handled := fsAccess(abi)
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
