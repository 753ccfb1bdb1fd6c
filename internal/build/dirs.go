package build

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// DirProblems checks where a site's config makes Hugo write besides the
// output: resourceDir and every file cache (caches.<name>.dir). Hugo
// accepts absolute paths there, so without this a site could write its
// processed images into another site's cache, or anywhere the server
// can. Each must resolve inside the site (src) or the build's own cache
// dir. caches maps a cache's name to its dir as configured, with Hugo's
// placeholders (:resourceDir, :cacheDir, :project) still in it.
func DirProblems(src, cacheDir, resourceDir string, caches map[string]string) []Problem {
	var problems []Problem
	check := func(what, p string) {
		if pr, out := outside(what, p, src, cacheDir); out {
			problems = append(problems, pr)
		}
	}
	rd := resourceDir
	if rd == "" {
		rd = "resources"
	}
	if !filepath.IsAbs(rd) {
		rd = filepath.Join(src, rd)
	}
	check("resourceDir", rd)
	names := make([]string, 0, len(caches))
	for name := range caches {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		dir := filepath.ToSlash(filepath.Clean(caches[name]))
		parts := strings.Split(dir, "/")
		for i, part := range parts {
			switch strings.ToLower(part) {
			case ":resourcedir":
				parts[i] = filepath.ToSlash(rd)
			case ":cachedir":
				parts[i] = filepath.ToSlash(cacheDir)
			case ":project":
				parts[i] = filepath.Base(src)
			}
		}
		d := filepath.FromSlash(strings.Join(parts, "/"))
		if !filepath.IsAbs(d) {
			d = filepath.Join(src, d)
		}
		check("caches."+name+".dir", filepath.Clean(d))
	}
	return problems
}

// Module is one of a site's Hugo modules as Hugo resolved it: its dir and
// its mounts' sources (relative to Dir, or absolute).
type Module struct {
	Path   string
	Dir    string
	Mounts []string
}

// ModuleProblems refuses modules that reach outside the site: Hugo lets a
// project mount absolute paths and name an absolute theme dir
// (notes/libraries.md §1.5.3); the export already dropped symlinks. Every
// module dir and mount source must lie inside src.
func ModuleProblems(src string, mods []Module) []Problem {
	var problems []Problem
	for _, m := range mods {
		if m.Dir == "" {
			continue
		}
		if p, out := outside("module "+m.Path, m.Dir, src); out {
			problems = append(problems, p)
		}
		for _, s := range m.Mounts {
			if !filepath.IsAbs(s) {
				s = filepath.Join(m.Dir, s)
			}
			if p, out := outside("mount source", s, src); out {
				problems = append(problems, p)
			}
		}
	}
	return problems
}

// outside is the problem of path p (what it is) when it resolves outside
// every one of roots.
func outside(what, p string, roots ...string) (Problem, bool) {
	real := realDir(p)
	for _, root := range roots {
		root = realDir(root)
		if real == root || strings.HasPrefix(real, root+string(filepath.Separator)) {
			return Problem{}, false
		}
	}
	return Problem{File: "hugo config", Message: fmt.Sprintf("%s %q is outside the site: not allowed", what, p)}, true
}

// realDir resolves symlinks in the part of p that exists.
func realDir(p string) string {
	p = filepath.Clean(p)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir, base := filepath.Split(p)
	if dir == "" || dir == p {
		return p
	}
	return filepath.Join(realDir(filepath.Clean(dir)), base)
}
