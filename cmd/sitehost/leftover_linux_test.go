package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKilledServerScratchRemoved: the build scratch folder of a sitehost
// killed with SIGKILL is removed when the next one starts; the folder of
// one still running is not.
func TestKilledServerScratchRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // this test's servers, in process and out
	scratchOf := func(p *sitehostProcess) string {
		t.Helper()
		var dir string
		deadline := time.Now().Add(time.Minute) // a guard against hanging, not an assertion
		for dir == "" {
			m, _ := filepath.Glob(filepath.Join(tmp, fmt.Sprintf("%s%d-*.lock", scratchPrefix, p.cmd.Process.Pid)))
			if len(m) == 1 {
				dir = strings.TrimSuffix(m[0], ".lock")
			}
			if p.cmd.ProcessState != nil || time.Now().After(deadline) {
				t.Fatalf("sitehost made no scratch folder in %s:\n%s", tmp, p.out)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return dir
	}
	start := func() *sitehostProcess {
		cfg := testConfig(t, t.TempDir(), "  []\n")
		return startProcess(t, cfg.File, "", map[string]string{"TMPDIR": tmp})
	}
	killed, live := start(), start()
	killedDir, liveDir := scratchOf(killed), scratchOf(live)
	// What a build was writing when the server was killed.
	if err := os.MkdirAll(filepath.Join(killedDir, "sitehost-build-1", "home"), 0o755); err != nil {
		t.Fatal(err)
	}
	killed.kill()

	srv := startServer(t, testConfig(t, t.TempDir(), "  []\n"), nil)
	if _, err := os.Stat(killedDir); !os.IsNotExist(err) {
		t.Errorf("the killed server's scratch %s survived the next start: %v", killedDir, err)
	}
	if _, err := os.Stat(liveDir); err != nil {
		t.Errorf("the running server's scratch was removed: %v", err)
	}
	if !strings.HasPrefix(srv.scratch.Path(), tmp) {
		t.Errorf("scratch %s is not under TMPDIR %s", srv.scratch.Path(), tmp)
	}
}
