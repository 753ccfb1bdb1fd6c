package sandbox

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// deadOwner is the owner tag of a process that has exited: what a
// server killed mid-build leaves in its cgroups' names.
func deadOwner(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tag := ownerTag(cmd.Process.Pid)
	cmd.Process.Kill() //nolint:errcheck // Wait reaps it either way
	cmd.Wait()         //nolint:errcheck // killed
	if tag == "" || ownerTag(cmd.Process.Pid) == tag {
		t.Fatalf("owner tag %q of a process, and after it exited %q", tag, ownerTag(cmd.Process.Pid))
	}
	return tag
}

// TestSweep runs against this machine's own cgroups (v1 or a delegated
// v2): build cgroups made by New for a server that has since died are
// removed; one that still holds a process stays, and so do the live
// server's own.
func TestSweep(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := Detect(exe)
	if s.v2 == "" && s.v1Memory == "" && s.v1Pids == "" {
		t.Skipf("no cgroup we can make build cgroups in: %s", s)
	}
	id := "test-sweep-" + strconv.Itoa(os.Getpid())
	lim := Limits{Memory: 64 << 20}
	dead := *s
	dead.owner = deadOwner(t)
	// A server that died mid-build: Close never ran.
	stale, err := dead.New(id+"-stale", Paths{}, lim)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := dead.New(id+"-busy", Paths{}, lim)
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.New(id+"-live", Paths{}, lim)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if len(stale.dirs) == 0 || len(busy.dirs) == 0 {
		t.Skipf("no build cgroup made here: %s", stale)
	}
	// A build process that outlived its server.
	sleep := exec.Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		busy.Close() //nolint:errcheck // kills the sleep; its dirs are checked above
		sleep.Wait() //nolint:errcheck // killed
	}()
	for _, procs := range busy.policy.Cgroups {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(sleep.Process.Pid)), 0); err != nil {
			sleep.Process.Kill() //nolint:errcheck // failing anyway
			t.Fatalf("moving a process into %s: %v", procs, err)
		}
	}

	var log bytes.Buffer
	removed := s.Sweep(slog.New(slog.NewTextHandler(&log, nil)))
	for _, dir := range stale.dirs {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("stale empty cgroup %s: %v, want removed", dir, err)
		}
	}
	for _, dir := range slices.Concat(busy.dirs, live.dirs) {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("cgroup %s: %v, want kept", dir, err)
		}
	}
	if removed < len(stale.dirs) {
		t.Errorf("Sweep reports %d removed, want at least %d", removed, len(stale.dirs))
	}
	if !strings.Contains(log.String(), "stale build cgroup left") || !strings.Contains(log.String(), filepath.Base(busy.dirs[0])) {
		t.Errorf("log does not name the cgroup left behind:\n%s", log.String())
	}
	stale.dirs = nil
}
