package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	egress  egress
	inForce []string
	dirs    []string // cgroups made for this build, removed by Close
	// Files Prepare passes to the launcher, closed by Close: the
	// cgroup.procs of policy.Cgroups, and a ruleset per process.
	cgroupFiles []*os.File
	rulesets    []*os.File
	mu          sync.Mutex // guards rulesets
	oom         string     // file with the oom_kill count
	peak        string     // file with the cgroup's peak memory use
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
	if paths.Egress && len(paths.ConnectTCP) > 0 {
		return nil, errors.New("sandbox: Egress and ConnectTCP together")
	}
	sb := &Sandbox{exe: s.exe, nsFlags: s.nsFlags, userNS: s.userNS, network: len(paths.ConnectTCP) > 0}
	if paths.Egress {
		own := s.nsFlags&syscall.CLONE_NEWNET != 0
		port, err := sb.egress.setup(own)
		if err != nil {
			return nil, err
		}
		paths.ConnectTCP, sb.network = []uint16{port}, !own
		if own {
			sb.policy.Egress = port
		}
	}
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
	switch {
	case paths.Egress && !sb.network:
		// Its own network: Landlock holds TCP to the egress port there
		// too, in case the kernel lets it reach further.
		if s.landlock >= 4 {
			sb.policy.Connect = paths.ConnectTCP
		}
		sb.inForce = append(sb.inForce, fmt.Sprintf("own network namespace: loopback and the egress port %d only", EgressPort))
	case paths.Egress && s.landlock >= 4:
		sb.policy.Connect = paths.ConnectTCP
		sb.inForce = append(sb.inForce, fmt.Sprintf("host network, tcp connect to the egress port %d only (udp not limited)", paths.ConnectTCP[0]))
	case paths.Egress:
		sb.inForce = append(sb.inForce, "host network, any port: no network namespace, nor landlock ABI 4 to limit tcp to the egress port")
	case sb.network:
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
	}
	memByCgroup, err := sb.cgroups(s, id, lim)
	if err == nil {
		err = sb.openCgroups()
	}
	if err != nil {
		// The build runs all the same, its memory limited by
		// RLIMIT_DATA; its log says what went wrong.
		cerr := sb.removeCgroups()
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

// LauncherEnv set to "go" in the server's environment makes every launch
// take the launcher in Go, even where the one in C (cgo) would have done
// it: tests run both.
const LauncherEnv = "SITEHOST_SANDBOX_LAUNCHER"

// envPrefix is what Prepare puts before each of the program's
// environment variables, for the launcher to take away.
const envPrefix = "SITEHOST_SANDBOX_ENV_"

// Prepare makes cmd, set up to run the program cmd.Path (an absolute
// path) with cmd.Args[1:], start it in the sandbox: through our launcher,
// in the sandbox's namespaces, with the build's cgroups and a Landlock
// ruleset made here passed as open files (cmd.ExtraFiles, after the
// caller's own). So the launcher only sets a few numbers and enforces
// what it was handed, which the one in C (fastlaunch_linux.c) does before
// the Go runtime starts. Call it after setting cmd.SysProcAttr and
// cmd.ExtraFiles; Close closes the files it opens.
func (sb *Sandbox) Prepare(cmd *exec.Cmd) error {
	if cmd.Err != nil {
		return cmd.Err
	}
	program := cmd.Path
	if !filepath.IsAbs(program) || len(cmd.Args) == 0 {
		return fmt.Errorf("sandbox: program %q is not an absolute path", program)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	var opts []string
	if os.Getenv(LauncherEnv) == "go" {
		opts = append(opts, "go")
	}
	pass := func(f *os.File) string {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		return strconv.Itoa(2 + len(cmd.ExtraFiles))
	}
	for _, r := range sb.policy.Rlimits {
		opts = append(opts, fmt.Sprintf("rlimit=%d,%d,%d", r.Resource, r.Cur, r.Max))
	}
	for _, f := range sb.cgroupFiles {
		opts = append(opts, "cgroup="+pass(f))
	}
	if sb.policy.Proc {
		opts = append(opts, "proc")
	}
	if sb.policy.Landlock > 0 {
		// One per process: its launcher adds its own /proc to it.
		fd, err := sb.policy.ruleset()
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		rs := os.NewFile(uintptr(fd), "landlock-ruleset")
		sb.mu.Lock()
		sb.rulesets = append(sb.rulesets, rs)
		sb.mu.Unlock()
		opts = append(opts, "landlock="+pass(rs))
	}
	args := append([]string{sb.exe, Arg}, opts...)
	args = append(append(args, "--", program), cmd.Args[1:]...)
	// The launcher starts outside the sandbox: the program's environment
	// (a site's build.env) must not reach its dynamic loader (LD_PRELOAD,
	// LD_LIBRARY_PATH, GLIBC_TUNABLES) or Go runtime. It gets it under a
	// prefix, which it removes for the program.
	env := cmd.Environ()
	for i, kv := range env {
		env[i] = envPrefix + kv
	}
	cmd.Path, cmd.Args, cmd.Env = sb.exe, args, env
	sb.SysProcAttr(cmd.SysProcAttr)
	return nil
}

// openCgroups opens the cgroup.procs files of the build's cgroups, for
// Prepare to pass to every launcher.
func (sb *Sandbox) openCgroups() error {
	for _, procs := range sb.policy.Cgroups {
		// O_CREATE: a no-op on cgroupfs, where the kernel made the file
		// with the dir; only a test's plain dir has none.
		f, err := os.OpenFile(procs, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("opening %s: %w", procs, err)
		}
		sb.cgroupFiles = append(sb.cgroupFiles, f)
	}
	return nil
}

// closeFiles closes what Prepare passed to launchers.
func (sb *Sandbox) closeFiles() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	for _, f := range append(sb.cgroupFiles, sb.rulesets...) {
		f.Close()
	}
	sb.cgroupFiles, sb.rulesets = nil, nil
}
