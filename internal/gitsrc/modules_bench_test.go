package gitsrc

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkExportThemeSubmodule exports a site whose theme is a submodule
// (300 files, ~1.2 MB, like a real theme): cold, with an empty submodule
// cache (the theme is fetched), and warm, with the cache of an earlier
// export (nothing fetched). Metrics: fetches per export and the bytes the
// cache holds after the cold fetch.
func BenchmarkExportThemeSubmodule(b *testing.B) {
	theme := newFixture(b)
	for i := range 300 {
		theme.write(fmt.Sprintf("layouts/partials/p%03d.html", i), strings.Repeat(fmt.Sprintf("<div class=\"p%d\">{{ .Title }}</div>\n", i), 100))
	}
	theme.commit("theme")
	bare := theme.bare(filepath.Join(b.TempDir(), "theme.git"))
	s := newFixture(b)
	s.write("content/index.md", "home")
	s.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", bare, "themes/t")
	c := s.commit("add theme")

	export := func(b *testing.B, modules *ModuleCache, dir string) {
		r := s.open(Options{ModuleDir: dir, Modules: modules})
		mustFetch(b, r, string(c))
		if _, err := r.Export(context.Background(), c, "", filepath.Join(b.TempDir(), "out")); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("cold", func(b *testing.B) {
		var fetches, bytes int64
		for b.Loop() {
			b.StopTimer()
			modules, dir := NewModuleCache(), filepath.Join(b.TempDir(), "_modules")
			b.StartTimer()
			export(b, modules, dir)
			fetches += modules.fetches.Load()
			bytes = dirSize(b, dir)
		}
		b.ReportMetric(float64(fetches)/float64(b.N), "fetches/op")
		b.ReportMetric(float64(bytes)/1e6, "MB-cached")
	})
	b.Run("warm", func(b *testing.B) {
		modules, dir := NewModuleCache(), filepath.Join(b.TempDir(), "_modules")
		export(b, modules, dir)
		before := modules.fetches.Load()
		for b.Loop() {
			export(b, modules, dir)
		}
		b.ReportMetric(float64(modules.fetches.Load()-before)/float64(b.N), "fetches/op")
	})
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
