package gitsrc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bep/gitmap"
)

type runFunc func() error

func (f runFunc) Run() error { return f() }

// TestRunGitShimWithGitmap runs Hugo's git info reader against the shim,
// as a build would.
func TestRunGitShimWithGitmap(t *testing.T) {
	f := logFixture(t)
	cache := filepath.Join(t.TempDir(), "cache")
	r := f.open(Options{Dir: cache})
	head := mustFetch(t, r, "main")

	for _, prefix := range []string{"", "sub"} {
		t.Run(prefix, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := r.Export(context.Background(), head, prefix, dir); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{EnvGitDir: cache, EnvGitCommit: string(head), EnvGitPrefix: prefix}
			var calls [][]string
			repo, err := gitmap.Map(gitmap.Options{
				Repository: dir,
				GetGitCommandFunc: func(stdout, stderr io.Writer, args ...string) (gitmap.Runner, error) {
					calls = append(calls, args)
					return runFunc(func() error {
						if RunGitShim(args, stdout, stderr, func(k string) string { return env[k] }) != 0 {
							return errors.New("shim failed")
						}
						return nil
					}), nil
				},
			})
			if err != nil {
				t.Fatalf("gitmap.Map: %v (calls %q)", err, calls)
			}
			if repo.TopLevelAbsPath != filepath.ToSlash(dir) {
				t.Errorf("TopLevelAbsPath = %s, want %s", repo.TopLevelAbsPath, dir)
			}
			key := "sub/feature.md" // names are relative to the export
			if prefix == "sub" {
				key = "feature.md"
			}
			info := repo.Files[key]
			if info == nil || info.Subject != "feature work" || info.AuthorName != "Bob Proper" ||
				info.Hash != f.git("log", "-1", "--format=%H", "main", "--", "sub/feature.md") {
				t.Errorf("git info for feature.md = %+v", info)
			}
		})
	}
}

func TestRunGitShim(t *testing.T) {
	f := logFixture(t)
	cache := filepath.Join(t.TempDir(), "cache")
	r := f.open(Options{Dir: cache})
	head := mustFetch(t, r, "main")
	env := map[string]string{EnvGitDir: cache, EnvGitCommit: string(head), EnvGitPrefix: "sub"}
	getenv := func(k string) string { return env[k] }
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := RunGitShim(args, &stdout, &stderr, getenv)
		return code, stdout.String(), stderr.String()
	}

	if code, out, _ := run("-C", "/some/dir", "rev-parse", "--show-cdup"); code != 0 || out != "\n" {
		t.Errorf("rev-parse = %d %q", code, out)
	}
	want := string(f.gitRaw(append(gitLogArgs("main"), "--", "sub/")...))
	want = strings.NewReplacer("\nsub/", "\n", "\n\"sub/", "\n\"").Replace(want)
	logArgs := []string{"-c", "diff.renames=0", "-c", "log.showSignature=0", "-C", "/some/dir", "log", "--name-only", "--no-merges", GitLogFormat}
	for _, rev := range []string{"", "HEAD", string(head)[:10]} {
		args := logArgs
		if rev != "" {
			args = append(args[:len(args):len(args)], rev)
		}
		if code, out, errOut := run(args...); code != 0 || out != want {
			t.Errorf("log %q = %d, stderr %q, output equal: %v", rev, code, errOut, out == want)
		}
	}
	// gitmap before v1.6.0 (Hugo releases before v0.13x) asks without the body.
	wantNoBody := string(f.gitRaw(append(gitLogArgsFormat("main", GitLogFormatNoBody), "--", "sub/")...))
	wantNoBody = strings.NewReplacer("\nsub/", "\n", "\n\"sub/", "\n\"").Replace(wantNoBody)
	noBody := append(logArgs[:len(logArgs)-1:len(logArgs)-1], GitLogFormatNoBody)
	if code, out, errOut := run(noBody...); code != 0 || out != wantNoBody || out == want {
		t.Errorf("log without body = %d, stderr %q, output equal: %v", code, errOut, out == wantNoBody)
	}

	for _, args := range [][]string{
		{"status"},
		{"-C", "x", "rev-parse", "HEAD"},
		{"log", "--name-only", "--no-merges", GitLogFormat, "-p"},
		{"log", "--name-only", GitLogFormat},
		{"log", "--name-only", "--no-merges", GitLogFormat, "main"},
		{"log", "--name-only", "--no-merges", GitLogFormat, GitLogFormatNoBody},
		{"log", "--name-only", "--no-merges"},
		{"-c", "core.fsmonitor=evil", "config", "x"},
		{"-c"},
		{},
	} {
		code, out, errOut := run(args...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "sitehost: git ") {
			t.Errorf("git %q = %d %q %q; want exit 1 and a message", args, code, out, errOut)
		}
	}
	if _, _, errOut := run("status"); errOut != "sitehost: git status is not available in builds\n" {
		t.Errorf("status message = %q", errOut)
	}
	delete(env, EnvGitDir)
	if code, _, errOut := run(logArgs...); code != 1 || !strings.Contains(errOut, EnvGitDir) {
		t.Errorf("log without env = %d %q", code, errOut)
	}
}
