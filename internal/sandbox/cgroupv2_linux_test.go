package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCgroupV2Shapes runs the cgroup v2 path against the files the
// kernel documents (Documentation/admin-guide/cgroup-v2.rst), laid out in
// a temporary dir as a subtree delegated to us. Shapes, not a kernel:
// this machine mounts cgroup v1, and a v2 hierarchy cannot be mounted
// beside it for a test; what the kernel then does with the limits is
// TestHostile's on a v2 host.
func TestCgroupV2Shapes(t *testing.T) {
	const own = "/system.slice/sitehost.service"
	mount := t.TempDir()
	mountinfo := "24 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n" +
		"30 24 0:26 / " + mount + " rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	procCgroup := "0::" + own + "\n"
	dir := filepath.Join(mount, own)

	for _, tc := range []struct {
		name, controllers, subtree string
		delegated                  bool
	}{
		{"delegated", "cpuset cpu io memory pids\n", "memory pids\n", true},
		{"no memory controller here", "cpuset cpu io pids\n", "pids\n", false},
		{"our cgroup is not there", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(dir)
			if tc.controllers != "" {
				writeFiles(t, dir, map[string]string{"cgroup.controllers": tc.controllers, "cgroup.subtree_control": tc.subtree})
			}
			s := &Support{exe: "/usr/local/bin/sitehost", owner: "4242-1234567"}
			s.cgroupsFrom([]byte(mountinfo), []byte(procCgroup))
			if got := s.v2 == dir; got != tc.delegated {
				t.Fatalf("v2 dir %q, want delegated %v (%s)", s.v2, tc.delegated, dir)
			}
		})
	}

	s := &Support{exe: "/usr/local/bin/sitehost", owner: "4242-1234567"}
	writeFiles(t, dir, map[string]string{"cgroup.controllers": "cpu io memory pids\n", "cgroup.subtree_control": "memory pids\n"})
	s.cgroupsFrom([]byte(mountinfo), []byte(procCgroup))
	sb, err := s.New("b1", Paths{}, Limits{Memory: 256 << 20, Pids: 100})
	if err != nil {
		t.Fatal(err)
	}
	build := filepath.Join(dir, "b1@4242-1234567")
	t.Cleanup(func() { sb.dirs = nil }) // a plain dir: nothing for Close to kill or rmdir
	// What the kernel reads: decimal bytes, "0" for no swap, "1" to kill
	// the whole group on OOM, a decimal process count.
	for file, want := range map[string]string{"memory.max": "268435456", "memory.swap.max": "0", "memory.oom.group": "1", "pids.max": "100"} {
		data, err := os.ReadFile(filepath.Join(build, file))
		if err != nil || string(data) != want {
			t.Errorf("%s: %q (%v), want %q", file, data, err, want)
		}
	}
	if want := []string{filepath.Join(build, "cgroup.procs")}; strings.Join(sb.policy.Cgroups, " ") != want[0] {
		t.Errorf("the launcher joins %q, want %q", sb.policy.Cgroups, want)
	}
	if !strings.Contains(sb.String(), "cgroup v2 memory 256 MiB + pids 100") {
		t.Errorf("in force: %q, want the cgroup v2 limits", sb)
	}
	for _, rl := range sb.policy.Rlimits {
		if rl.Resource == unix.RLIMIT_DATA {
			t.Errorf("RLIMIT_DATA %d set beside the cgroup's memory.max", rl.Cur)
		}
	}

	// memory.events is flat keyed ("oom_kill N" among others); memory.peak
	// one number of bytes.
	events := "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\noom_group_kill 0\n"
	writeFiles(t, build, map[string]string{"memory.events": events, "memory.peak": "201326592\n"})
	if sb.OOMKilled() {
		t.Errorf("OOMKilled with %q", events)
	}
	if got := sb.PeakMemory(); got != 192<<20 {
		t.Errorf("PeakMemory %d, want %d", got, 192<<20)
	}
	events = "low 0\nhigh 0\nmax 41\noom 1\noom_kill 1\noom_group_kill 1\n"
	writeFiles(t, build, map[string]string{"memory.events": events})
	if !sb.OOMKilled() {
		t.Errorf("not OOMKilled with %q", events)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
