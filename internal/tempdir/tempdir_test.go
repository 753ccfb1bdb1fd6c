package tempdir_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sitehost/sitehost/internal/tempdir"
)

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestSweep: a held folder stays, an unheld one (its owner died: nothing
// holds its lock) goes with its lock file, a lock being taken and what
// has another prefix are left alone. Owners in other processes are
// TestKilledWritersTempRemoved's (fsstore).
func TestSweep(t *testing.T) {
	parent := t.TempDir()
	held, err := tempdir.Claim(parent, "w-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(held.Path(), "put-1"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(parent, "w-99999-0123456789ab")
	newLock := filepath.Join(parent, "w-99998-0123456789ab.lock-new")
	other := filepath.Join(parent, "x-99997-0123456789ab")
	for _, d := range []string{dead, other} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(d+".lock", nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(newLock, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	n, err := tempdir.Sweep(parent, "w-")
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 removed", n, err)
	}
	for p, want := range map[string]bool{
		held.Path(): true, held.Path() + ".lock": true, filepath.Join(held.Path(), "put-1"): true,
		dead: false, dead + ".lock": false, newLock: true, other: true, other + ".lock": true,
	} {
		if got := exists(t, p); got != want {
			t.Errorf("%s exists: %v, want %v", p, got, want)
		}
	}
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	if exists(t, held.Path()) || exists(t, held.Path()+".lock") {
		t.Error("Release left the folder or its lock")
	}
}

func TestOwned(t *testing.T) {
	for name, want := range map[string]bool{
		"w-12-0123456789ab":          true,
		"w-12-0123456789ab.lock":     true,
		"w-12-0123456789ab.lock-new": true,
		"put-123":                    false,
		"w-x-0123456789ab":           false,
		"w-12-0123456789":            false,
		"w-12-0123456789zz":          false,
		"v-12-0123456789ab":          false,
	} {
		if got := tempdir.Owned(name, "w-"); got != want {
			t.Errorf("Owned(%q) = %v, want %v", name, got, want)
		}
	}
}
