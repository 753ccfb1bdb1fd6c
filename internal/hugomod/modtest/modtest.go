// Package modtest lays out a Go module proxy in a directory for tests,
// with real zips made by golang.org/x/mod/zip, served as a file:// URL.
package modtest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// Module is one module version and its files (path → content).
type Module struct {
	Path, Version string
	Files         map[string]string
}

// ProxyDir is a laid-out proxy.
type ProxyDir struct {
	// Root is the directory; URL is file://Root, usable as a GOPROXY.
	Root, URL string
	// Sums are go.sum lines for every module version (zip and go.mod).
	Sums []string
}

// Proxy writes <root>/<escaped path>/@v/{list,<v>.info,<v>.mod,<v>.zip}
// for mods.
func Proxy(t testing.TB, mods ...Module) *ProxyDir {
	t.Helper()
	root := t.TempDir()
	p := &ProxyDir{Root: root, URL: "file://" + filepath.ToSlash(root)}
	versions := map[string][]string{}
	for _, m := range mods {
		mv := module.Version{Path: m.Path, Version: m.Version}
		escPath, err := module.EscapePath(m.Path)
		if err != nil {
			t.Fatal(err)
		}
		escVer, err := module.EscapeVersion(m.Version)
		if err != nil {
			t.Fatal(err)
		}
		vdir := filepath.Join(root, filepath.FromSlash(escPath), "@v")
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		src := t.TempDir()
		for name, data := range m.Files {
			f := filepath.Join(src, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		zipName := filepath.Join(vdir, escVer+".zip")
		zf, err := os.Create(zipName)
		if err != nil {
			t.Fatal(err)
		}
		if err := modzip.CreateFromDir(zf, mv, src); err != nil {
			t.Fatal(err)
		}
		if err := zf.Close(); err != nil {
			t.Fatal(err)
		}
		gomod, ok := m.Files["go.mod"]
		if !ok {
			gomod = "module " + m.Path + "\n"
		}
		write(t, filepath.Join(vdir, escVer+".mod"), gomod)
		write(t, filepath.Join(vdir, escVer+".info"), fmt.Sprintf("{\"Version\":%q,\"Time\":\"2024-01-01T00:00:00Z\"}\n", m.Version))
		h, err := dirhash.HashZip(zipName, dirhash.Hash1)
		if err != nil {
			t.Fatal(err)
		}
		hm, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return os.Open(filepath.Join(vdir, escVer+".mod"))
		})
		if err != nil {
			t.Fatal(err)
		}
		p.Sums = append(p.Sums, m.Path+" "+m.Version+" "+h, m.Path+" "+m.Version+"/go.mod "+hm)
		versions[vdir] = append(versions[vdir], m.Version)
	}
	for vdir, vs := range versions {
		slices.Sort(vs)
		list := ""
		for _, v := range vs {
			list += v + "\n"
		}
		write(t, filepath.Join(vdir, "list"), list)
	}
	return p
}

func write(t testing.TB, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
