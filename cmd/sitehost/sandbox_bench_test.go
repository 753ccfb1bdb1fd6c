//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
)

// BenchmarkSandbox builds the 200-page benchmark site (without git info) with the compiled-in
// Hugo inside the build sandbox and outside it (Options.NoSandbox), one of
// each per iteration in alternating order, so both see the same machine.
// The difference is the sandbox's cost per build: the launcher's exec,
// making and removing the build's cgroups, the namespaces and Landlock.
// Besides wall time it reports the CPU time the build's processes used
// (user+system, from RUSAGE_CHILDREN), which other load on the machine
// moves far less: on a busy VM the wall times swing by more than the
// sandbox costs.
//
//	go test -tags extended -run XXX -bench Sandbox -benchtime 10x ./cmd/sitehost
func BenchmarkSandbox(b *testing.B) {
	src := filepath.Join(b.TempDir(), "site")
	writeBenchSite(b, src)
	// Without enableGitInfo, as BenchmarkHugoRelease: no fetch cache here.
	if err := os.WriteFile(filepath.Join(src, "hugo.toml"), []byte("title = \"Bench Blog\"\n[taxonomies]\n  tag = \"tags\"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	builders := map[bool]*build.Builder{}
	for _, off := range []bool{false, true} {
		bl, err := build.New(build.Options{NoSandbox: off, Memory: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		builders[off] = bl
	}
	took, cpu := map[bool][]time.Duration{}, map[bool][]time.Duration{}
	childCPU := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	sandbox := ""
	i := 0
	for b.Loop() {
		for _, off := range []bool{i%2 == 0, i%2 != 0} {
			t, c := time.Now(), childCPU()
			res, err := builders[off].Build(context.Background(), build.Request{
				Site: "bench", Src: src, Out: filepath.Join(b.TempDir(), "out"), BaseURL: "http://blog.test/",
				CacheDir: filepath.Join(b.TempDir(), "cache"),
				Settings: build.Settings{Tool: build.ToolHugo, Environment: "production", Minify: true},
			})
			if err != nil {
				b.Fatalf("%v\n%s", err, res.Log)
			}
			took[off] = append(took[off], time.Since(t))
			cpu[off] = append(cpu[off], childCPU()-c)
			if !off {
				sandbox = res.Sandbox
			}
		}
		i++
	}
	in, out := benchMedian(took[false]), benchMedian(took[true])
	b.ReportMetric(benchMS(in), "ms-median/sandboxed")
	b.ReportMetric(benchMS(out), "ms-median/unsandboxed")
	b.ReportMetric(100*(benchMS(in)-benchMS(out))/benchMS(out), "%-overhead")
	cin, cout := benchMedian(cpu[false]), benchMedian(cpu[true])
	b.ReportMetric(benchMS(cin), "cpu-ms-median/sandboxed")
	b.ReportMetric(benchMS(cout), "cpu-ms-median/unsandboxed")
	b.Logf("sandbox: %s", sandbox)
	b.Logf("sandboxed build (ms): %s", benchFmtMS(took[false]))
	b.Logf("unsandboxed build (ms): %s", benchFmtMS(took[true]))
	b.Logf("sandboxed build, cpu (ms): %s", benchFmtMS(cpu[false]))
	b.Logf("unsandboxed build, cpu (ms): %s", benchFmtMS(cpu[true]))
}
