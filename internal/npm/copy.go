package npm

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// copyTree copies the kept node_modules src into the checkout at dst.
//
// A copy, not hard links: a hard link is the cache's own inode, so a build
// that writes into node_modules (a PostCSS plugin, a template's
// resources.Copy target, anything the site runs) would change the cache for
// every later build, and the sandbox cannot tell the two paths apart. Go's
// io.Copy between files uses copy_file_range(2), which shares extents
// (a reflink) on file systems that can (Btrfs, XFS) and copies in the
// kernel elsewhere. Measured for the Tailwind v4 test site (bench/README.md).
//
// Symlinks are kept as they are (npm's node_modules/.bin entries) when they
// point inside src; any other is refused.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch t := d.Type(); {
		case t.IsDir():
			return os.Mkdir(to, 0o755)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !within(src, filepath.Join(filepath.Dir(p), target)) || filepath.IsAbs(target) {
				return fmt.Errorf("%s links outside node_modules (%s)", rel, target)
			}
			return os.Symlink(target, to)
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, to, fi.Mode().Perm())
		}
		return nil // sockets, fifos: nothing a build needs
	})
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func copyFile(from, to string, perm fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Find returns the npm builds install with: configured (absolute) or
// else npm on pathList; "" when there is none. npm runs on node, which
// Options.Node names.
func Find(ctx context.Context, configured, node, pathList string) (string, error) {
	p := configured
	if p == "" {
		for _, dir := range filepath.SplitList(pathList) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue
			}
			if fi, err := os.Stat(filepath.Join(dir, "npm")); err == nil && fi.Mode().IsRegular() {
				p = filepath.Join(dir, "npm")
				break
			}
		}
		if p == "" {
			return "", nil
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("npm %s: %w", p, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bin, err := os.MkdirTemp("", "sitehost-npm-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(bin)
	if err := os.Symlink(node, filepath.Join(bin, "node")); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, real, "--version")
	cmd.Env = []string{"PATH=" + bin, "HOME=" + bin}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm %s on node %s: %w: %s", real, node, err, strings.TrimSpace(string(out)))
	}
	return real, nil
}
