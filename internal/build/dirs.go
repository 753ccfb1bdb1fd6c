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
	allowed := []string{realDir(src), realDir(cacheDir)}
	check := func(what, p string) {
		real := realDir(p)
		for _, root := range allowed {
			if real == root || strings.HasPrefix(real, root+string(filepath.Separator)) {
				return
			}
		}
		problems = append(problems, Problem{File: "hugo config", Message: fmt.Sprintf("%s %q is outside the site: not allowed", what, p)})
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
