package build_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/build"
)

// needSandbox skips where this kernel offers no Landlock, except in CI.
func needSandbox(t *testing.T, res build.Result) {
	t.Helper()
	if !strings.Contains(res.Sandbox, "landlock") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no landlock in CI: sandbox %q", res.Sandbox)
		}
		t.Skipf("no landlock here: sandbox %q", res.Sandbox)
	}
}

// TestBuildIsSandboxed: a build says which sandbox it ran in, in its
// Result and as the first line of its log.
func TestBuildIsSandboxed(t *testing.T) {
	b := newBuilder(t, build.Options{Memory: 512 << 20})
	res, err := b.Build(context.Background(), hugoRequest(t, copySite(t, nil)))
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	needSandbox(t, res)
	if !strings.HasPrefix(string(res.Log), "Sandbox: "+res.Sandbox+"\n") {
		t.Errorf("the log does not start with the sandbox: %q", res.Log[:min(len(res.Log), 200)])
	}
	for _, want := range []string{"namespaces", "memory 512 MiB", "pids 512", "rlimits cpu/fsize/nofile"} {
		if !strings.Contains(res.Sandbox, want) {
			t.Errorf("sandbox %q lacks %q", res.Sandbox, want)
		}
	}
}

// TestBuildStatsInSandbox: build.buildStats writes hugo_stats.json at the
// site's root (Tailwind sites read it), the one file of the read-only
// checkout a build may write.
func TestBuildStatsInSandbox(t *testing.T) {
	b := newBuilder(t, build.Options{})
	conf, err := os.ReadFile("testdata/site/hugo.toml")
	if err != nil {
		t.Fatal(err)
	}
	req := hugoRequest(t, copySite(t, map[string]string{
		"hugo.toml":         string(conf) + "\n[build.buildStats]\n  enable = true\n",
		"layouts/home.html": `<p class="from-the-template">hi</p>`,
	}))
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	needSandbox(t, res)
	stats, err := os.ReadFile(filepath.Join(req.Src, "hugo_stats.json"))
	if err != nil || !strings.Contains(string(stats), "from-the-template") {
		t.Errorf("hugo_stats.json: %v %q", err, stats)
	}
}

// TestUntrustedNeedsSandbox: an untrusted build (a fork's pull request)
// that nothing would contain is refused, unless the operator opted out
// (server.build.allow_unsandboxed).
func TestUntrustedNeedsSandbox(t *testing.T) {
	for _, optOut := range []bool{false, true} {
		b := newBuilder(t, build.Options{NoSandbox: true, Unsandboxed: optOut})
		req := hugoRequest(t, copySite(t, nil))
		req.Untrusted = true
		res, err := b.Build(context.Background(), req)
		switch {
		case optOut && err != nil:
			t.Errorf("opted out: %v\n%s", err, res.Log)
		case optOut && res.Sandbox != "none":
			t.Errorf("opted out: sandbox %q, want none", res.Sandbox)
		case !optOut && (!build.IsUserError(err) || !strings.Contains(err.Error(), "server.build.allow_unsandboxed")):
			t.Errorf("no sandbox: %v, want a refusal naming server.build.allow_unsandboxed", err)
		}
	}
}

// TestMemoryLimitKillsBuild is the audit's case: build.memory 256MiB and a
// template that allocates without bound. The kernel kills the build near
// 256 MiB and the failure says it went over its memory limit.
func TestMemoryLimitKillsBuild(t *testing.T) {
	const limit = 256 << 20
	for name, tmpl := range map[string]string{
		"doubling":       `{{ $s := "0123456789abcdef" }}{{ range seq 64 }}{{ $s = printf "%s%s" $s $s }}{{ end }}{{ len $s }}`,
		"strings.Repeat": `{{ range seq 64 }}{{ $s := strings.Repeat 1500000000 "x" }}{{ len $s }}{{ end }}`,
	} {
		t.Run(name, func(t *testing.T) {
			b := newBuilder(t, build.Options{Memory: limit})
			res, err := b.Build(context.Background(), hugoRequest(t, copySite(t, map[string]string{"layouts/home.html": tmpl})))
			needSandbox(t, res)
			if !build.IsUserError(err) || !strings.Contains(err.Error(), "memory limit") || !strings.Contains(err.Error(), "256 MiB") {
				t.Fatalf("want a user error saying the memory limit, 256 MiB; got %v\n%s", err, res.Log)
			}
			t.Logf("%v; peak RSS %d MiB; sandbox %s", err, res.MaxRSS>>20, res.Sandbox)
			if res.MaxRSS > limit+limit/4 {
				t.Errorf("peak RSS %d MiB: not killed near the limit", res.MaxRSS>>20)
			}
		})
	}
}
