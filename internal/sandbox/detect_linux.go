package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	missing  []string
}

// Detect finds what this system offers. exe is our own binary: the
// launcher, `exe sandbox-exec …`.
func Detect(exe string) *Support {
	s := &Support{exe: exe}
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

// findCgroups looks for a cgroup v2 subtree delegated to us (ours, with
// memory and pids enabled for children), else cgroup v1 memory and pids
// hierarchies we can make a sitehost/ group in, under our own cgroup.
func (s *Support) findCgroups() {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		s.missing = append(s.missing, "cgroups (no mountinfo)")
		return
	}
	own, _ := os.ReadFile("/proc/self/cgroup")
	for line := range strings.SplitSeq(string(mounts), "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 0 || len(f) < sep+3 || len(f) < 5 {
			continue
		}
		root, point, fstype, opts := f[3], f[4], f[sep+1], strings.Split(f[len(f)-1], ",")
		switch fstype {
		case "cgroup2":
			if s.v2 != "" {
				continue
			}
			if dir := underOwn(point, root, ownPath(own, "")); dir != "" && v2Delegated(dir) {
				s.v2 = dir
			}
		case "cgroup":
			for _, c := range []string{"memory", "pids"} {
				if !slices.Contains(opts, c) {
					continue
				}
				dir := underOwn(point, root, ownPath(own, c))
				if dir == "" {
					continue
				}
				dir = filepath.Join(dir, "sitehost")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					continue
				}
				if c == "memory" {
					s.v1Memory = dir
				} else {
					s.v1Pids = dir
				}
			}
		}
	}
	if s.v2 == "" && s.v1Memory == "" && s.v1Pids == "" {
		s.missing = append(s.missing, "cgroups (no delegated v2 subtree, no writable v1 memory/pids)")
	}
}

// ownPath is our cgroup in the hierarchy with controller c ("" for v2),
// from /proc/self/cgroup.
func ownPath(procCgroup []byte, c string) string {
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if c == "" && parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if c != "" && slices.Contains(strings.Split(parts[1], ","), c) {
			return parts[2]
		}
	}
	return ""
}

// underOwn is our cgroup's dir under the mount of a hierarchy whose root
// is mountRoot; "" when we are not in it.
func underOwn(point, mountRoot, own string) string {
	if own == "" {
		return ""
	}
	rel, err := filepath.Rel(mountRoot, own)
	if err != nil || strings.HasPrefix(rel, "..") {
		return ""
	}
	return filepath.Join(point, rel)
}

// v2Delegated: dir enables memory and pids for its children (or can,
// which only a cgroup without processes of its own can do).
func v2Delegated(dir string) bool {
	want := []string{"memory", "pids"}
	has := func() bool {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if err != nil {
			return false
		}
		f := strings.Fields(string(data))
		return slices.Contains(f, want[0]) && slices.Contains(f, want[1])
	}
	if has() {
		return true
	}
	os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids"), 0) //nolint:errcheck // has() tells
	return has()
}

// Sandbox is one build's: its cgroups and the launcher's policy.
type Sandbox struct {
	exe     string
	policy  policy
	nsFlags uintptr
	userNS  bool
	inForce []string
	dirs    []string // cgroups made for this build, removed by Close
	oom     string   // file with the oom_kill count
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
	sb := &Sandbox{exe: s.exe, nsFlags: s.nsFlags, userNS: s.userNS}
	if s.landlock > 0 {
		sb.policy.Landlock = s.landlock
		sb.policy.RO, sb.policy.RX, sb.policy.RW = paths.ReadOnly, paths.ReadExec, paths.ReadWrite
		sb.inForce = append(sb.inForce, fmt.Sprintf("landlock v%d", s.landlock))
	}
	if s.nsFlags != 0 {
		sb.inForce = append(sb.inForce, nsNames(s.nsFlags)+" namespaces")
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

// cgroups makes the build's cgroups and sets their limits; memByCgroup
// reports whether the memory limit is a cgroup's.
func (sb *Sandbox) cgroups(s *Support, id string, lim Limits) (memByCgroup bool, err error) {
	mk := func(parent string) (string, error) {
		dir := filepath.Join(parent, id)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("making build cgroup: %w", err)
		}
		sb.dirs = append(sb.dirs, dir)
		sb.policy.Cgroups = append(sb.policy.Cgroups, filepath.Join(dir, "cgroup.procs"))
		return dir, nil
	}
	set := func(dir, file, v string, must bool) error {
		err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0)
		if err != nil && must {
			return fmt.Errorf("setting %s: %w", file, err)
		}
		return nil
	}
	var parts []string
	pids := strconv.FormatInt(lim.Pids, 10)
	switch {
	case s.v2 != "":
		dir, err := mk(s.v2)
		if err != nil {
			return false, err
		}
		if lim.Memory > 0 {
			if err := set(dir, "memory.max", strconv.FormatInt(lim.Memory, 10), true); err != nil {
				return false, err
			}
			set(dir, "memory.swap.max", "0", false)  //nolint:errcheck // no swap accounting: nothing to limit
			set(dir, "memory.oom.group", "1", false) //nolint:errcheck // best effort: the whole build goes
			parts = append(parts, "memory "+mib(lim.Memory))
			memByCgroup = true
		}
		if err := set(dir, "pids.max", pids, true); err != nil {
			return false, err
		}
		parts = append(parts, "pids "+pids)
		sb.oom = filepath.Join(dir, "memory.events")
		sb.inForce = append(sb.inForce, "cgroup v2 "+strings.Join(parts, " + "))
	case s.v1Memory != "" || s.v1Pids != "":
		if s.v1Memory != "" && lim.Memory > 0 {
			dir, err := mk(s.v1Memory)
			if err != nil {
				return false, err
			}
			m := strconv.FormatInt(lim.Memory, 10)
			if err := set(dir, "memory.limit_in_bytes", m, true); err != nil {
				return false, err
			}
			set(dir, "memory.memsw.limit_in_bytes", m, false) //nolint:errcheck // no swap accounting: nothing to limit
			parts = append(parts, "memory "+mib(lim.Memory))
			memByCgroup = true
			sb.oom = filepath.Join(dir, "memory.oom_control")
		}
		if s.v1Pids != "" {
			dir, err := mk(s.v1Pids)
			if err != nil {
				return false, err
			}
			if err := set(dir, "pids.max", pids, true); err != nil {
				return false, err
			}
			parts = append(parts, "pids "+pids)
		}
		if len(parts) > 0 {
			sb.inForce = append(sb.inForce, "cgroup v1 "+strings.Join(parts, " + "))
		}
	}
	return memByCgroup, nil
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

// OOMKilled reports whether the kernel killed a process of the build for
// going over its cgroup memory limit.
func (sb *Sandbox) OOMKilled() bool {
	if sb.oom == "" {
		return false
	}
	data, err := os.ReadFile(sb.oom)
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

// Close kills whatever the build left running and removes its cgroups.
func (sb *Sandbox) Close() error {
	var errs []error
	for _, dir := range sb.dirs {
		errs = append(errs, removeCgroup(dir))
	}
	sb.dirs = nil
	return errors.Join(errs...)
}

// removeCgroup kills the processes left in dir and removes it. A killed
// process leaves its cgroup a moment after it dies: rmdir is retried for
// up to a few seconds.
func removeCgroup(dir string) error {
	var err error
	for range 300 {
		if data, rerr := os.ReadFile(filepath.Join(dir, "cgroup.procs")); rerr == nil {
			for f := range strings.FieldsSeq(string(data)) {
				if pid, perr := strconv.Atoi(f); perr == nil && pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // may be gone already
				}
			}
		}
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("removing build cgroup: %w", err)
}
