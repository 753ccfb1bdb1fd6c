package build_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/build/buildtest"
	"github.com/sitehost/sitehost/internal/npm"
	"github.com/sitehost/sitehost/internal/npm/npmtest"
)

// BenchmarkTailwind times the Tailwind v4 test site from its export to its
// output: npm install (cold: an empty install cache and npm cache, so
// every package comes from the registry; warm: the install kept for this
// lockfile, copied into the checkout) and then the Hugo build, through
// the real child with the server's node. See bench/README.md.
//
//	SITEHOST_NODE=… go test -tags extended -run XXX -bench Tailwind -benchtime 5x -count 1 ./internal/build
func BenchmarkTailwind(b *testing.B) {
	node := buildtest.Node(b)
	_, npmExe := npmtest.Tools(b)
	reg := npmtest.NewRegistry(b)
	tmpl, _ := nodeSite(b, reg, node, b.TempDir(), tailwindPkg, tailwindSite)
	if err := os.RemoveAll(filepath.Join(tmpl, "node_modules")); err != nil {
		b.Fatal(err)
	}
	builder := newBuilderB(b, build.Options{Node: node})
	run := func(b *testing.B, in *npm.Installer) (install, hugo time.Duration, res npm.Result) {
		b.StopTimer()
		src := filepath.Join(b.TempDir(), "src")
		if err := os.CopyFS(src, os.DirFS(tmpl)); err != nil {
			b.Fatal(err)
		}
		out := filepath.Join(b.TempDir(), "out")
		b.StartTimer()
		t := time.Now()
		res, err := in.Install(context.Background(), "bench", src, false)
		if err != nil {
			b.Fatal(err)
		}
		install = time.Since(t)
		t = time.Now()
		r, err := builder.Build(context.Background(), build.Request{
			Site: "bench", Src: src, Out: out, BaseURL: "https://example.test/", CacheDir: filepath.Join(b.TempDir(), "cache"),
			Settings: build.Settings{Tool: build.ToolHugo, Environment: "production", Minify: true},
		})
		if err != nil {
			b.Fatalf("%v\n%s", err, r.Log)
		}
		hugo = time.Since(t)
		return install, hugo, res
	}
	report := func(b *testing.B, install, hugo []time.Duration) {
		b.ReportMetric(float64(median(install).Milliseconds()), "ms-median/install")
		b.ReportMetric(float64(median(hugo).Milliseconds()), "ms-median/hugo-build")
	}
	b.Run("cold", func(b *testing.B) {
		var install, hugo []time.Duration
		for b.Loop() {
			in := npm.New(npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, CacheDir: b.TempDir()})
			i, h, _ := run(b, in)
			install, hugo = append(install, i), append(hugo, h)
		}
		report(b, install, hugo)
	})
	b.Run("warm", func(b *testing.B) {
		cache := b.TempDir()
		in := npm.New(npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, CacheDir: cache})
		run(b, in) // fills the cache, untimed
		var install, hugo []time.Duration
		before := reg.Requests()
		for b.Loop() {
			i, h, res := run(b, in)
			if !res.Cached {
				b.Fatal("not from the cache")
			}
			install, hugo = append(install, i), append(hugo, h)
		}
		if n := reg.Requests() - before; n != 0 {
			b.Fatalf("warm builds made %d registry requests", n)
		}
		report(b, install, hugo)
		files, size := treeSize(b, cache)
		b.Logf("kept install: %d files, %.1f MB", files, float64(size)/1e6)
	})
}

func newBuilderB(b *testing.B, opts build.Options) *build.Builder {
	b.Helper()
	bl, err := build.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return bl
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	for i := range s { // a few values: insertion sort
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

func treeSize(b *testing.B, dir string) (files int, size int64) {
	b.Helper()
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error { //nolint:errcheck // a figure for the log
		if err == nil && d.Type().IsRegular() {
			files++
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	return files, size
}
