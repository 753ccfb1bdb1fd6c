package reconcile_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// TestMaxFileKeepsLiveDeploy: a file over build.max_file, in the git tree
// or in the build output, fails the deploy with an error naming it and
// both sizes, is not retried, and the live deploy stays.
func TestMaxFileKeepsLiveDeploy(t *testing.T) {
	const max = 1 << 20
	for _, tt := range []struct {
		name    string
		fromGit bool
		want    string
	}{
		{"from git", true, "files/big.bin is 1.0 MB (1048577 bytes), over the limit of 1.0 MB (1048576 bytes) per file (build.max_file)"},
		{"from the build output", false, "out/big.bin is 1.0 MB (1048577 bytes), over the limit of 1.0 MB (1048576 bytes) per file (build.max_file)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log lockedBuffer
			f := newLoggedFixture(t, reconcile.Spec{MaxFile: max}, 0, slog.New(slog.NewTextHandler(&log, nil)))
			if st := f.sync(t); st.State != site.Synced {
				t.Fatalf("status %+v, want Synced", st)
			}
			live := f.live(t)
			builds := f.builder.n.Load()
			if tt.fromGit {
				f.repo.Write("files/big.bin", strings.Repeat("x", max+1))
			} else {
				f.builder.output = func(dir string) error {
					return writeSized(filepath.Join(dir, "out", "big.bin"), max+1)
				}
				f.repo.Write("index.html", "<h1>two</h1>")
			}
			f.repo.Commit("too big")
			st := f.sync(t)
			if st.State != site.Failed || !strings.Contains(st.Error, tt.want) {
				t.Fatalf("status %+v, want Failed with %q", st, tt.want)
			}
			if got := f.live(t); got.Deploy != live.Deploy {
				t.Errorf("live deploy %s, want %s still", got.Deploy, live.Deploy)
			}
			if tt.fromGit && f.builder.n.Load() != builds {
				t.Error("built although the tree has a file over max_file")
			}
			if strings.Contains(log.String(), "will retry") {
				t.Errorf("a file over max_file is retried:\n%s", log.String())
			}
		})
	}
}

// writeSized writes size bytes to a new file.
func writeSized(name string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, bytes.Repeat([]byte("x"), int(size)), 0o644)
}

// TestMaxFileLeavesBuildInputs: with a build, a file over build.max_file
// in the tree is the build's input (an original it resizes) and reaches
// the build; only the output is held to the limit.
func TestMaxFileLeavesBuildInputs(t *testing.T) {
	const max = 1 << 20
	errBuilt := errors.New("the build ran")
	f := newFixture(t, reconcile.Spec{MaxFile: max, Build: build.Settings{Tool: build.ToolHugo}}, 0)
	f.builder.fail = func(int64) error { return fault.Stalled(errBuilt) }
	f.repo.Write("assets/original.png", strings.Repeat("x", max+1))
	f.repo.Commit("a big original")
	st := f.sync(t)
	if st.State != site.Failed || !strings.Contains(st.Error, errBuilt.Error()) {
		t.Fatalf("status %+v, want the build to have run", st)
	}
}
