package sandbox

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Support is what this kernel lets us use, found once at startup.
type Support struct {
	exe      string
	landlock int     // Landlock ABI version; 0: none
	nsFlags  uintptr // namespaces a build gets; 0: none
	userNS   bool
	v2       string // a delegated cgroup v2 dir to make build cgroups in
	v1Memory string // cgroup v1 memory/…/sitehost
	v1Pids   string // cgroup v1 pids/…/sitehost
	owner    string // ownerTag of this process: build cgroups are <id>@<owner>
	missing  []string
}

// Detect finds what this system offers. exe is our own binary: the
// launcher, `exe sandbox-exec …`.
func Detect(exe string) *Support {
	s := &Support{exe: exe, owner: ownerTag(os.Getpid())}
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno == 0 && int(v) > 0 {
		s.landlock = int(v)
	} else {
		s.missing = append(s.missing, fmt.Sprintf("landlock (%v)", errno))
	}
	// A mount namespace only for a /proc that shows the build's own
	// processes (Dart Sass and Node read /proc/self).
	const others = syscall.CLONE_NEWNET | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWNS
	switch err := probeNS(syscall.CLONE_NEWUSER | others); {
	case err == nil:
		s.nsFlags, s.userNS = syscall.CLONE_NEWUSER|others, true
	case os.Geteuid() == 0 && probeNS(others) == nil:
		// Root without user namespaces: the others still hide the
		// network and the server's processes.
		s.nsFlags = others
		s.missing = append(s.missing, fmt.Sprintf("user namespace (%v)", err))
	default:
		s.missing = append(s.missing, fmt.Sprintf("namespaces (%v)", err))
	}
	s.findCgroups()
	return s
}

// probeNS starts a process with the namespaces of flags that fails to
// execute a path that does not exist: ENOENT means the namespaces (and
// the uid map) were made.
func probeNS(flags uintptr) error {
	attr := &syscall.ProcAttr{Sys: nsAttr(flags)}
	_, err := syscall.ForkExec("/nonexistent/sitehost-sandbox-probe", []string{"probe"}, attr)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err == nil {
		err = errors.New("probe ran")
	}
	return err
}

func nsAttr(flags uintptr) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Cloneflags: flags}
	if flags&syscall.CLONE_NEWUSER != 0 {
		// Our own uid and gid, nothing else: no capability in the
		// host's namespace, and files the build writes are ours.
		uid, gid := os.Getuid(), os.Getgid()
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// String says what builds get, for the server's startup log.
func (s *Support) String() string {
	var in []string
	if s.landlock > 0 {
		in = append(in, fmt.Sprintf("landlock v%d", s.landlock))
	}
	if s.nsFlags != 0 {
		in = append(in, nsNames(s.nsFlags)+" namespaces")
	}
	switch {
	case s.v2 != "":
		in = append(in, "cgroup v2 memory+pids")
	case s.v1Memory != "" && s.v1Pids != "":
		in = append(in, "cgroup v1 memory+pids")
	case s.v1Memory != "":
		in = append(in, "cgroup v1 memory")
	case s.v1Pids != "":
		in = append(in, "cgroup v1 pids")
	}
	in = append(in, "rlimits")
	desc := strings.Join(in, ", ")
	if len(s.missing) > 0 {
		desc += "; missing: " + strings.Join(s.missing, ", ")
	}
	return desc
}

// Sandbox is one build's: its cgroups and the launcher's policy.
type Sandbox struct {
	exe     string
	policy  policy
	nsFlags uintptr
	userNS  bool
	network bool // the host's network, TCP to policy.Connect only
	inForce []string
	dirs    []string // cgroups made for this build, removed by Close
	oom     string   // file with the oom_kill count
	peak    string   // file with the cgroup's peak memory use
}

// New makes a build's sandbox: its cgroups (named id) with lim set, and
// the launcher's policy for paths. Close removes the cgroups.
func (s *Support) New(id string, paths Paths, lim Limits) (*Sandbox, error) {
	if id == "" || strings.ContainsRune(id, '/') {
		return nil, fmt.Errorf("sandbox: bad build id %q", id)
	}
	if lim.Pids <= 0 {
		lim.Pids = DefaultPids
	}
	if lim.FileSize <= 0 {
		lim.FileSize = DefaultFileSize
	}
	if lim.NoFile == 0 {
		lim.NoFile = DefaultNoFile
	}
	sb := &Sandbox{exe: s.exe, nsFlags: s.nsFlags, userNS: s.userNS, network: len(paths.ConnectTCP) > 0}
	if sb.network {
		// The registry is out there: the host's network, held to its
		// ports by Landlock alone.
		sb.nsFlags &^= syscall.CLONE_NEWNET
	}
	if s.landlock > 0 {
		sb.policy.Landlock = s.landlock
		sb.policy.RO, sb.policy.RX, sb.policy.RW = paths.ReadOnly, paths.ReadExec, paths.ReadWrite
		sb.inForce = append(sb.inForce, fmt.Sprintf("landlock v%d", s.landlock))
	}
	if sb.network {
		ports := make([]string, len(paths.ConnectTCP))
		for i, p := range paths.ConnectTCP {
			ports[i] = strconv.Itoa(int(p))
		}
		desc := "port " + strings.Join(ports, ", ")
		if len(ports) > 1 {
			desc = "ports " + strings.Join(ports, ", ")
		}
		if s.landlock >= 4 {
			sb.policy.Connect = slices.Clone(paths.ConnectTCP)
			// Landlock has no UDP rules: DNS needs it, and so does
			// everything else that speaks UDP.
			sb.inForce = append(sb.inForce, "tcp connect to "+desc+" only (udp not limited)")
		} else {
			sb.inForce = append(sb.inForce, "host network, any port: no landlock ABI 4 here to limit tcp to "+desc)
		}
	}
	if sb.nsFlags != 0 {
		sb.inForce = append(sb.inForce, nsNames(sb.nsFlags)+" namespaces")
	}
	if s.nsFlags&(syscall.CLONE_NEWNS|syscall.CLONE_NEWPID) == syscall.CLONE_NEWNS|syscall.CLONE_NEWPID {
		sb.policy.Proc = true
		if sb.policy.Landlock > 0 {
			sb.policy.RO = append(sb.policy.RO, "/proc")
		}
	}
	memByCgroup, err := sb.cgroups(s, id, lim)
	if err != nil {
		// The build runs all the same, its memory limited by
		// RLIMIT_DATA; its log says what went wrong.
		cerr := sb.Close()
		sb.policy.Cgroups, sb.oom, memByCgroup = nil, "", false
		sb.inForce = append(sb.inForce, fmt.Sprintf("no cgroup (%v)", errors.Join(err, cerr)))
	}
	rl := []string{"cpu", "fsize", "nofile"}
	nofile := lim.NoFile
	var cur unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &cur) == nil && cur.Max < nofile {
		nofile = cur.Max
	}
	sb.policy.Rlimits = []rlimit{
		{unix.RLIMIT_FSIZE, uint64(lim.FileSize), uint64(lim.FileSize)},
		{unix.RLIMIT_NOFILE, nofile, nofile},
		{unix.RLIMIT_CORE, 0, 0},
	}
	if lim.CPU > 0 {
		secs := uint64((lim.CPU + time.Second - 1) / time.Second)
		// SIGXCPU at the soft limit (fatal for Hugo), SIGKILL at the hard.
		sb.policy.Rlimits = append(sb.policy.Rlimits, rlimit{unix.RLIMIT_CPU, secs, secs + 5})
	} else {
		rl = rl[1:]
	}
	if lim.Memory > 0 && !memByCgroup {
		m := uint64(lim.Memory)
		sb.policy.Rlimits = append(sb.policy.Rlimits, rlimit{unix.RLIMIT_DATA, m, m})
		rl = append(rl, "data "+mib(lim.Memory))
	}
	sb.inForce = append(sb.inForce, "rlimits "+strings.Join(rl, "/"))
	return sb, nil
}

func nsNames(flags uintptr) string {
	var n []string
	for _, ns := range []struct {
		f    uintptr
		name string
	}{{syscall.CLONE_NEWUSER, "user"}, {syscall.CLONE_NEWNET, "net"}, {syscall.CLONE_NEWPID, "pid"}, {syscall.CLONE_NEWIPC, "ipc"}, {syscall.CLONE_NEWUTS, "uts"}, {syscall.CLONE_NEWNS, "mount"}} {
		if flags&ns.f != 0 {
			n = append(n, ns.name)
		}
	}
	return strings.Join(n, "+")
}

// SysProcAttr adds the sandbox's namespaces to a.
func (sb *Sandbox) SysProcAttr(a *syscall.SysProcAttr) {
	if sb.nsFlags == 0 {
		return
	}
	ns := nsAttr(sb.nsFlags)
	a.Cloneflags |= ns.Cloneflags
	a.UidMappings, a.GidMappings = ns.UidMappings, ns.GidMappings
	a.GidMappingsEnableSetgroups = false
}

// launcher: on Linux every sandboxed program starts as our launcher.
const launcher = true
