package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/units"
)

// ExportResult describes an Export.
type ExportResult struct {
	Tree    string   // tree hash of the exported directory, as TreeHash
	Files   int      // files written
	Bytes   int64    // bytes written
	Skipped []string // symlinks, submodules without a .gitmodules entry and .git entries, relative to dir
}

// Export writes the files under p at commit into dir, which must be empty
// or absent, with p stripped. Only regular (0644) and executable (0755)
// files are written: symlinks could point Hugo at host files, so they are
// skipped with a warning, and no path with a ".git" element is ever
// written. Submodules are fetched into the shared caches and exported,
// recursively, at the commit each gitlink pins (see ModuleDir); a gitlink
// without a .gitmodules entry is skipped with a warning. Writes go through os.Root, so
// nothing lands outside dir. On error dir is left empty.
func (r *Repo) Export(ctx context.Context, commit site.Commit, p, dir string) (ExportResult, error) {
	c, err := getCommit(r.st, commit)
	if err != nil {
		return ExportResult{}, fmt.Errorf("exporting %s: %w", commit, err)
	}
	h, err := subtree(r.st, c.TreeHash, p)
	if err != nil {
		return ExportResult{}, fmt.Errorf("exporting %s:%s: %w", commit.Short(), p, err)
	}
	created, err := prepareDir(dir)
	if err != nil {
		return ExportResult{}, fmt.Errorf("exporting to %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return ExportResult{}, fmt.Errorf("exporting to %s: %w", dir, err)
	}
	run := &exportRun{repo: r, root: root, commit: commit, res: ExportResult{Tree: h.String()}}
	e := &exporter{run: run, st: r.st, url: r.origURL, rootTree: c.TreeHash}
	err = e.tree(ctx, h, "", repoPath(p))
	root.Close()
	if err != nil {
		cleanDir(dir, created)
		return ExportResult{}, fmt.Errorf("exporting %s:%s to %s: %w", commit.Short(), p, dir, err)
	}
	return run.res, nil
}

// exportRun is one Export: where it writes and what it has written, shared
// by the site's tree and its submodules so the limits count them all.
type exportRun struct {
	repo   *Repo // the site's: limits, logger, submodule caches
	root   *os.Root
	commit site.Commit
	res    ExportResult
}

// exporter writes the trees of one repository: the site's or a
// submodule's.
type exporter struct {
	run      *exportRun
	st       storer.EncodedObjectStorer
	url      string          // remote URL, for relative submodule URLs
	rootTree plumbing.Hash   // of the commit, for .gitmodules
	mods     []gitmodule     // parsed .gitmodules, once needed
	paths    map[string]bool // the paths .gitmodules names, once needed
	depth    int             // submodule nesting
}

// repoPath is p as a path from the repository root, "" for the root.
func repoPath(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// tree writes tree h at output path rel; rp is its path in the
// repository, which differs from rel when a subpath or a submodule is
// exported.
func (e *exporter) tree(ctx context.Context, h plumbing.Hash, rel, rp string) error {
	t, err := object.GetTree(e.st, h)
	if err != nil {
		return fmt.Errorf("reading tree %s: %w", h, err)
	}
	for _, ent := range t.Entries {
		name, entPath := ent.Name, ent.Name
		if rel != "" {
			name = rel + "/" + ent.Name
		}
		if rp != "" {
			entPath = rp + "/" + ent.Name
		}
		if reason := badName(ent.Name); reason != "" {
			e.skip(ctx, name, reason)
			continue
		}
		if ent.Mode != filemode.Submodule && e.modulePath(entPath) {
			// Real repositories have these; git submodule update would
			// stop, but the files are the site's and it builds with them.
			e.run.repo.log.WarnContext(ctx, ".gitmodules names a path that holds plain files; exporting them",
				"commit", string(e.run.commit), "path", name)
		}
		switch ent.Mode {
		case filemode.Dir:
			if err := e.run.root.Mkdir(name, 0o755); err != nil {
				return err
			}
			if err := e.tree(ctx, ent.Hash, name, entPath); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated:
			if err := e.file(ctx, ent.Hash, name, 0o644); err != nil {
				return err
			}
		case filemode.Executable:
			if err := e.file(ctx, ent.Hash, name, 0o755); err != nil {
				return err
			}
		case filemode.Symlink:
			e.skip(ctx, name, "symlink")
		case filemode.Submodule:
			if err := e.submodule(ctx, ent.Hash, name, entPath); err != nil {
				return err
			}
		default:
			e.skip(ctx, name, "unsupported mode "+ent.Mode.String())
		}
	}
	return nil
}

func (e *exporter) file(ctx context.Context, h plumbing.Hash, name string, perm fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lim := e.run.repo.limits
	if e.run.res.Files >= lim.MaxFiles {
		return fmt.Errorf("%w: more than %d files", ErrTooLarge, lim.MaxFiles)
	}
	// The size comes from the object's header, before anything is inflated.
	blob, err := object.GetBlob(e.st, h)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if lim.MaxFile > 0 && blob.Size > lim.MaxFile {
		return fmt.Errorf("%w: %s is %s (%d bytes), over the limit of %s (%d bytes) per file (build.max_file)",
			ErrFileTooLarge, name, units.Bytes(blob.Size), blob.Size, units.Bytes(lim.MaxFile), lim.MaxFile)
	}
	if e.run.res.Bytes+blob.Size > lim.MaxBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	src, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	defer src.Close()
	f, err := e.run.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(src, blob.Size))
	if err == nil {
		err = f.Chmod(perm) // exact mode regardless of umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	e.run.res.Files++
	e.run.res.Bytes += n
	return nil
}

func (e *exporter) skip(ctx context.Context, name, reason string) {
	e.run.repo.log.WarnContext(ctx, "skipping tree entry", "commit", string(e.run.commit), "path", name, "reason", reason)
	e.run.res.Skipped = append(e.run.res.Skipped, name)
}

// badName says why a tree entry name must not be written, or "". A ".git"
// element (any case, with trailing dots or spaces that some filesystems
// ignore) could plant repository config for a later git run.
func badName(name string) string {
	switch {
	case name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00"):
		return "invalid name"
	case strings.EqualFold(strings.TrimRight(name, ". "), ".git"):
		return ".git entry"
	}
	return ""
}

// prepareDir makes sure dir exists and is empty; created reports whether
// it had to be made.
func prepareDir(dir string) (created bool, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return false, err
	}
	if len(ents) > 0 {
		return false, errors.New("directory not empty")
	}
	return false, nil
}

func cleanDir(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		os.RemoveAll(filepath.Join(dir, ent.Name()))
	}
}
