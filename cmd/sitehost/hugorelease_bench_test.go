package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/hugorelease"
	"github.com/sitehost/sitehost/internal/hugorelease/releasetest"
)

// benchRelease is the fetched Hugo the benchmark compares with the
// compiled-in one: a release with the same template lookup (v0.146+), so
// both render the same 200-page site.
const benchRelease = "0.155.3"

// BenchmarkHugoRelease builds the 200-page benchmark site (without git
// info) with the compiled-in Hugo (the hugo-build child) and with a fetched
// release run directly (its `config mounts` check, then its build), in the
// same sandbox, to the same kind of output. The difference is what a
// fetched Hugo costs per build; the fetch itself happens once per machine
// and is not timed.
//
//	go test -tags extended -run XXX -bench HugoRelease -benchtime 10x ./cmd/sitehost
func BenchmarkHugoRelease(b *testing.B) {
	src := filepath.Join(b.TempDir(), "site")
	writeBenchSite(b, src)
	if err := os.WriteFile(filepath.Join(src, "hugo.toml"), []byte("title = \"Bench Blog\"\n[taxonomies]\n  tag = \"tags\"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	exe := releasetest.Hugo(b, benchRelease)
	mirror := releasetest.NewMirror(b, map[string]string{benchRelease: exe})
	store, err := hugorelease.New(hugorelease.Options{Releases: mirror.URL, Dir: filepath.Join(b.TempDir(), "hugo")})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := store.Hugo(context.Background(), benchRelease); err != nil {
		b.Fatal(err)
	}
	b.Logf("first fetch of v%s from a loopback mirror (download, sha256, unpack): %s", benchRelease, time.Since(start).Round(time.Millisecond))
	builder, err := build.New(build.Options{Releases: store})
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []string{"", benchRelease} {
		name := "compiled-in-v" + build.HugoVersion
		if v != "" {
			name = "release-v" + v
		}
		b.Run(name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				out := filepath.Join(b.TempDir(), "out")
				t := time.Now()
				res, err := builder.Build(context.Background(), build.Request{
					Site: "bench", Src: src, Out: out, BaseURL: "http://blog.test/", CacheDir: filepath.Join(b.TempDir(), "cache"),
					Settings: build.Settings{Tool: build.ToolHugo, HugoVersion: v, Environment: "production", Minify: true},
				})
				if err != nil {
					b.Fatalf("%v\n%s", err, res.Log)
				}
				took = append(took, time.Since(t))
			}
			b.ReportMetric(benchMS(benchMedian(took)), "ms-median/build")
			b.Logf("%s build (ms): %s", name, benchFmtMS(took))
		})
	}
}
