package diskuse_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sitehost/sitehost/internal/diskuse"
)

func write(t *testing.T, p string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write(t, filepath.Join(a, "x"), 600)
	write(t, filepath.Join(b, "d", "y"), 500)
	for _, tt := range []struct {
		name     string
		maxBytes int64
		maxFiles int
		dirs     []string
		over     bool
	}{
		{"under", 1100, 10, []string{a, b}, false},
		{"bytes summed across dirs", 1099, 10, []string{a, b}, true},
		{"one dir", 600, 10, []string{a}, false},
		{"files (dirs count)", 1 << 20, 3, []string{a, b}, true},
		{"missing dir", 1, 1, []string{filepath.Join(a, "none")}, false},
	} {
		err := diskuse.Check(tt.maxBytes, tt.maxFiles, tt.dirs...)
		var over *diskuse.OverError
		if errors.As(err, &over) != tt.over {
			t.Errorf("%s: %v, want over=%v", tt.name, err, tt.over)
		}
	}
}

func TestWatchStops(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		diskuse.Watch(ctx, 100, 1000, cancel, dir)
		close(done)
	}()
	write(t, filepath.Join(dir, "big"), 101)
	<-done
	var over *diskuse.OverError
	if !errors.As(context.Cause(ctx), &over) || over.MaxBytes != 100 {
		t.Errorf("cause %v, want an OverError", context.Cause(ctx))
	}
}
