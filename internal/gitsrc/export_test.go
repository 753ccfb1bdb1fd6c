package gitsrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/site"
)

// exportFixture commits regular and executable files, symlinks to a host
// file and to a directory, and a submodule gitlink.
func exportFixture(t *testing.T) (*fixture, site.Commit) {
	f := newFixture(t)
	f.write("index.md", "home")
	f.write("bin/run.sh", "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(f.dir, "bin/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write("docs/a.md", "a")
	f.write("docs/sub/b.md", "b")
	for name, target := range map[string]string{"hostname": "/etc/hostname", "docs/dirlink": "sub"} {
		if err := os.Symlink(target, filepath.Join(f.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	f.git("add", "-A")
	f.git("update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",vendor/mod")
	return f, f.commitIndex("content")
}

func TestExport(t *testing.T) {
	f, c := exportFixture(t)
	r := f.open(Options{})
	mustFetch(t, r, "main")
	ctx := context.Background()

	dir := filepath.Join(t.TempDir(), "out") // absent is fine
	res, err := r.Export(ctx, c, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{"index.md": 0o644, "bin/run.sh": 0o755, "docs/a.md": 0o644, "docs/sub/b.md": 0o644}
	if got := listFiles(t, dir); !maps.Equal(got, want) {
		t.Errorf("exported %v, want %v", got, want)
	}
	wantSkipped := []string{"docs/dirlink", "hostname", "vendor/mod"}
	slices.Sort(res.Skipped)
	if !slices.Equal(res.Skipped, wantSkipped) {
		t.Errorf("Skipped = %v, want %v", res.Skipped, wantSkipped)
	}
	if res.Files != 4 || res.Bytes != int64(len("home#!/bin/sh\nab")) {
		t.Errorf("Files, Bytes = %d, %d", res.Files, res.Bytes)
	}
	if host, err := os.ReadFile("/etc/hostname"); err == nil {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if b, _ := os.ReadFile(p); bytes.Equal(b, host) {
					t.Errorf("%s has the content of /etc/hostname", p)
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := f.git("rev-parse", string(c)+"^{tree}"); res.Tree != want {
		t.Errorf("Tree = %s, want %s", res.Tree, want)
	}

	sub := t.TempDir() // empty is fine
	res, err = r.Export(ctx, c, "docs/", sub)
	if err != nil {
		t.Fatal(err)
	}
	if got := listFiles(t, sub); !maps.Equal(got, map[string]fs.FileMode{"a.md": 0o644, "sub/b.md": 0o644}) {
		t.Errorf("subdir export = %v", got)
	}
	if want := f.git("rev-parse", string(c)+":docs"); res.Tree != want || !slices.Equal(res.Skipped, []string{"dirlink"}) {
		t.Errorf("subdir export = %+v, want tree %s and dirlink skipped", res, want)
	}
}

func TestExportRejects(t *testing.T) {
	f, c := exportFixture(t)
	r := f.open(Options{})
	mustFetch(t, r, "main")
	ctx := context.Background()

	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Export(ctx, c, "", full); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("export into non-empty dir: %v", err)
	}
	if got := listFiles(t, full); len(got) != 1 {
		t.Errorf("non-empty dir changed: %v", got)
	}
	for _, p := range []string{"nope", "index.md", "../x", "/docs", "docs/../.."} {
		if _, err := r.Export(ctx, c, p, t.TempDir()); !errors.Is(err, ErrPathNotFound) {
			t.Errorf("Export(path %q) = %v, want ErrPathNotFound", p, err)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	dir := t.TempDir()
	if _, err := r.Export(canceled, c, "", dir); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Export = %v", err)
	}
	if got := listFiles(t, dir); len(got) != 0 {
		t.Errorf("failed export left %v", got)
	}
}

func TestExportLimits(t *testing.T) {
	f, c := exportFixture(t)
	for _, lim := range []ExportLimits{{MaxFiles: 3}, {MaxBytes: 10}} {
		t.Run(fmt.Sprintf("%+v", lim), func(t *testing.T) {
			r := f.open(Options{Limits: lim})
			mustFetch(t, r, "main")
			dir := t.TempDir()
			if _, err := r.Export(context.Background(), c, "", dir); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Export = %v, want ErrTooLarge", err)
			}
			if got := listFiles(t, dir); len(got) != 0 {
				t.Errorf("failed export left %v", got)
			}
		})
	}
}

// TestExportMaxFile: a file over MaxFile fails the export with a message
// naming it and both sizes; one at the limit is written whole, streamed
// from the pack (it is over largeObject).
func TestExportMaxFile(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "home")
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB
	f.write("static/big.bin", big)
	c := f.commit("big")
	for _, tt := range []struct {
		max     int64
		wantErr string
	}{
		{max: int64(len(big))},
		{max: 0},  // the default, 100 MiB
		{max: -1}, // none
		{max: int64(len(big)) - 1, wantErr: "static/big.bin is 3.1 MB (3145728 bytes), over the limit of 3.1 MB (3145727 bytes) per file"},
	} {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			r := f.open(Options{Limits: ExportLimits{MaxFile: tt.max}})
			mustFetch(t, r, "main")
			dir := t.TempDir()
			_, err := r.Export(context.Background(), c, "", dir)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrFileTooLarge) || fault.KindOf(err) != fault.KindStalled || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Export = %v, want stalled ErrFileTooLarge with %q", err, tt.wantErr)
				}
				if got := listFiles(t, dir); len(got) != 0 {
					t.Errorf("failed export left %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "static/big.bin"))
			if err != nil || string(got) != big {
				t.Errorf("exported %d bytes (%v), want the %d committed", len(got), err, len(big))
			}
		})
	}
}

func TestExportSkipsDotGit(t *testing.T) {
	f := newFixture(t)
	f.write("ok.md", "ok")
	c := f.commit("ok")
	// git add refuses .git paths, so build the hostile tree by hand.
	blob := f.git("hash-object", "-w", "--stdin")
	dotgit := string(f.gitIn("100644 blob "+blob+"\tconfig\n", "mktree"))
	entries := f.git("ls-tree", string(c)) + "\n"
	for _, name := range []string{".git", ".GIT", ".Git.", "x"} {
		entries += "040000 tree " + strings.TrimSpace(dotgit) + "\t" + name + "\n"
	}
	tree := strings.TrimSpace(string(f.gitIn(entries, "mktree")))
	evil := site.Commit(f.git("commit-tree", "-m", "evil", tree))
	f.git("update-ref", "refs/heads/evil", string(evil))

	r := f.open(Options{})
	mustFetch(t, r, "evil")
	dir := t.TempDir()
	res, err := r.Export(context.Background(), evil, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := listFiles(t, dir); !maps.Equal(got, map[string]fs.FileMode{"ok.md": 0o644, "x/config": 0o644}) {
		t.Errorf("exported %v", got)
	}
	if len(res.Skipped) != 3 {
		t.Errorf("Skipped = %v, want the three .git dirs", res.Skipped)
	}
}

func TestTreeHash(t *testing.T) {
	f, c := exportFixture(t)
	r := f.open(Options{})
	mustFetch(t, r, "main")
	for p, rev := range map[string]string{"": "^{tree}", ".": "^{tree}", "docs": ":docs", "docs/": ":docs", "./docs/sub": ":docs/sub"} {
		got, err := r.TreeHash(c, p)
		if want := f.git("rev-parse", string(c)+rev); err != nil || got != want {
			t.Errorf("TreeHash(%q) = %s, %v; want %s", p, got, err, want)
		}
	}
	for _, p := range []string{"nope", "index.md", "docs/dirlink", "vendor/mod", ".."} {
		if _, err := r.TreeHash(c, p); !errors.Is(err, ErrPathNotFound) {
			t.Errorf("TreeHash(%q) = %v, want ErrPathNotFound", p, err)
		}
	}
}

// listFiles maps every non-directory under dir to its permissions, and
// fails on anything that is not a regular file.
func listFiles(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			t.Errorf("%s is not a regular file: %v", p, info.Mode())
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = info.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadFile(t *testing.T) {
	f, c := exportFixture(t)
	r := f.open(Options{})
	mustFetch(t, r, "main")
	data, hash, err := r.ReadFile(c, "docs/sub/b.md", 100)
	if want := f.git("rev-parse", string(c)+":docs/sub/b.md"); err != nil || string(data) != "b" || hash != want {
		t.Errorf("ReadFile(docs/sub/b.md) = %q, %s, %v; want \"b\", %s", data, hash, err, want)
	}
	if _, _, err := r.ReadFile(c, "bin/run.sh", 3); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFile over the limit = %v, want ErrTooLarge", err)
	}
	// Directories, symlinks, submodules and missing files are not files.
	for _, p := range []string{"nope", "docs", "docs/dirlink", "hostname", "vendor/mod", "nope/a.md", "", "../x"} {
		if _, _, err := r.ReadFile(c, p, 100); !errors.Is(err, ErrPathNotFound) {
			t.Errorf("ReadFile(%q) = %v, want ErrPathNotFound", p, err)
		}
	}
}
