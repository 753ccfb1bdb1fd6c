package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
	s.cgroupsFrom(mounts, own)
}

// cgroupsFrom is findCgroups on a mount table (mountinfo) and our own
// cgroups (/proc/self/cgroup): a test lays them out in a temporary dir.
func (s *Support) cgroupsFrom(mounts, own []byte) {
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

// v2Delegated: dir has memory and pids (cgroup.controllers) and enables
// them for its children (cgroup.subtree_control), or can, which only a
// cgroup without processes of its own can do.
func v2Delegated(dir string) bool {
	has := func(file string) bool {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return false
		}
		f := strings.Fields(string(data))
		return slices.Contains(f, "memory") && slices.Contains(f, "pids")
	}
	if !has("cgroup.controllers") {
		return false
	}
	if has("cgroup.subtree_control") {
		return true
	}
	os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids"), 0) //nolint:errcheck // has() tells
	return has("cgroup.subtree_control")
}

// cgroups makes the build's cgroups and sets their limits; memByCgroup
// reports whether the memory limit is a cgroup's.
func (sb *Sandbox) cgroups(s *Support, id string, lim Limits) (memByCgroup bool, err error) {
	mk := func(parent string) (string, error) {
		dir := filepath.Join(parent, id+"@"+s.owner)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("making build cgroup: %w", err)
		}
		sb.dirs = append(sb.dirs, dir)
		sb.policy.Cgroups = append(sb.policy.Cgroups, filepath.Join(dir, "cgroup.procs"))
		return dir, nil
	}
	set := func(dir, file, v string, must bool) error {
		err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644) // 0o644: only a test's plain dir lacks the file
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
		sb.oom, sb.peak = filepath.Join(dir, "memory.events"), filepath.Join(dir, "memory.peak")
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
			sb.oom, sb.peak = filepath.Join(dir, "memory.oom_control"), filepath.Join(dir, "memory.max_usage_in_bytes")
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

// PeakMemory is the most memory the build's cgroup used (what counts
// against its limit), 0 when no cgroup measured it. Unlike the rusage of
// the process the server started, it never includes the server's own
// memory, which a vfork'd child shares until it executes.
func (sb *Sandbox) PeakMemory() int64 {
	if sb.peak == "" {
		return 0
	}
	data, err := os.ReadFile(sb.peak)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Close kills whatever the build left running and removes its cgroups;
// it closes the egress listener and socket.
func (sb *Sandbox) Close() error {
	sb.egress.close()
	sb.closeFiles()
	return sb.removeCgroups()
}

func (sb *Sandbox) removeCgroups() error {
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

// ownerTag names a live process for good: its pid and its start time
// (in clock ticks since boot, /proc/PID/stat), so a pid reused after a
// restart (pid 1 in a container) is not taken for the server that made a
// cgroup. "" when the process is gone.
func ownerTag(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after its last ')' start at field 3.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return strconv.Itoa(pid) + "-" + f[19] // field 22, starttime
}

// Sweep removes the build cgroups that a server killed mid-build left
// behind: those under our own cgroup dirs whose maker (the "@pid-start"
// New puts in their names) is gone, which no live server will use again.
// rmdir only: one that still holds processes refuses, and is logged and
// left. Cgroups named before makers were recorded are left too: from
// their name alone, one may be another server's, about to be joined. It
// returns how many it removed.
func (s *Support) Sweep(log *slog.Logger) int {
	removed := 0
	for _, parent := range []string{s.v2, s.v1Memory, s.v1Pids} {
		if parent == "" {
			continue
		}
		entries, err := os.ReadDir(parent)
		if err != nil {
			log.Warn("listing build cgroups", "dir", parent, "err", err)
			continue
		}
		for _, e := range entries {
			at := strings.LastIndexByte(e.Name(), '@')
			if !e.IsDir() || at < 0 {
				continue
			}
			owner := e.Name()[at+1:]
			pid, _, ok := strings.Cut(owner, "-")
			if !ok {
				continue
			}
			if n, err := strconv.Atoi(pid); err != nil || n <= 0 || ownerTag(n) == owner {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			if err := os.Remove(dir); err != nil {
				log.Warn("stale build cgroup left: it still has processes", "dir", dir, "err", err)
				continue
			}
			removed++
		}
	}
	if removed > 0 {
		log.Info("removed stale build cgroups", "count", removed)
	}
	return removed
}
