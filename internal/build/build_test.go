package build_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/build/hugochild"
	"github.com/sitehost/sitehost/internal/sandbox"
)

// TestMain lets this test binary serve as the sandbox launcher and the
// hugo-build child, exactly as the sitehost binary does, and as the sass
// shim.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "sass" {
		os.Exit(build.RunSassShim(os.Args[1:], os.Environ(), os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == sandbox.Arg {
		os.Exit(sandbox.Main(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "hugo-build" {
		os.Exit(hugochild.Main(os.Stdin, os.Stderr))
	}
	os.Exit(m.Run())
}

func newBuilder(t *testing.T, opts build.Options) *build.Builder {
	t.Helper()
	b, err := build.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copySite copies testdata/site, with overrides, into a fresh dir.
func copySite(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.CopyFS(dir, os.DirFS("testdata/site")); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func hugoRequest(t *testing.T, src string) build.Request {
	return build.Request{
		Site: "test", Src: src, Out: filepath.Join(t.TempDir(), "out"), BaseURL: "https://example.test/sub/",
		CacheDir: filepath.Join(t.TempDir(), "cache"),
		Settings: build.Settings{Tool: build.ToolHugo, Environment: "staging", Minify: false},
	}
}

func TestHugoBuild(t *testing.T) {
	b := newBuilder(t, build.Options{})
	req := hugoRequest(t, copySite(t, nil))
	req.Settings.Env = map[string]string{"HUGO_PARAMS_GREETING": "hello-from-site-env"}
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	if res.Dir != req.Out {
		t.Errorf("result dir %q, want %q", res.Dir, req.Out)
	}
	html, err := os.ReadFile(filepath.Join(req.Out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h1>Build test</h1>", "base=https://example.test/sub/", "env=staging", "param=[hello-from-site-env]"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("index.html lacks %q: %s", want, html)
		}
	}
	if !strings.Contains(string(res.Log), "Total in") {
		t.Errorf("build log does not have Hugo's output: %q", res.Log)
	}
	if res.MaxRSS <= 0 {
		t.Errorf("MaxRSS = %d, want the child's peak memory", res.MaxRSS)
	}
	// No lock file or anything else written into the source tree.
	if _, err := os.Stat(filepath.Join(req.Src, ".hugo_build.lock")); err == nil {
		t.Error("build wrote .hugo_build.lock into the source tree")
	}
}

func TestHugoTemplateErrorHasPosition(t *testing.T) {
	b := newBuilder(t, build.Options{})
	src := copySite(t, map[string]string{"layouts/home.html": "ok\n\n{{ .Nope.Nope }}\n"})
	res, err := b.Build(context.Background(), hugoRequest(t, src))
	var ue *build.UserError
	if !errors.As(err, &ue) {
		t.Fatalf("want *UserError, got %v", err)
	}
	p := ue.Problems[0]
	if p.File != "layouts/home.html" || p.Line != 3 || p.Column == 0 {
		t.Errorf("problem %+v, want layouts/home.html line 3", p)
	}
	if !strings.HasPrefix(err.Error(), "layouts/home.html:3:") {
		t.Errorf("error %q does not start with file:line", err)
	}
	if !strings.Contains(string(res.Log), "ERROR") {
		t.Errorf("log lacks the error: %q", res.Log)
	}
}

func TestHugoConfigError(t *testing.T) {
	b := newBuilder(t, build.Options{})
	src := copySite(t, map[string]string{"hugo.toml": "title = \n"})
	_, err := b.Build(context.Background(), hugoRequest(t, src))
	if !build.IsUserError(err) {
		t.Fatalf("want a user error for a broken hugo.toml, got %v", err)
	}
}

func TestServerEnvironmentNeverReachesBuild(t *testing.T) {
	t.Setenv("HUGO_PARAMS_GREETING", "server-value-must-not-leak")
	b := newBuilder(t, build.Options{})
	req := hugoRequest(t, copySite(t, nil))
	if _, err := b.Build(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(req.Out, "index.html"))
	if strings.Contains(string(html), "server-value") || !strings.Contains(string(html), "param=[]") {
		t.Errorf("server environment reached the build: %s", html)
	}
}

func TestReservedEnvRefused(t *testing.T) {
	b := newBuilder(t, build.Options{})
	for _, k := range []string{"PATH", "HUGO_SECURITY", "SITEHOST_GIT_DIR", "SITEHOST_DART_SASS", "DART_SASS_BINARY", "GOMEMLIMIT"} {
		req := hugoRequest(t, copySite(t, nil))
		req.Settings.Env = map[string]string{k: "x"}
		if _, err := b.Build(context.Background(), req); !build.IsUserError(err) || !strings.Contains(err.Error(), k) {
			t.Errorf("env %s: got %v, want a user error naming it", k, err)
		}
	}
}

func TestToolNone(t *testing.T) {
	b := newBuilder(t, build.Options{})
	src := t.TempDir()
	res, err := b.Build(context.Background(), build.Request{Src: src, Settings: build.Settings{Tool: build.ToolNone}})
	if err != nil || res.Dir != src {
		t.Fatalf("tool none: %v, dir %q", err, res.Dir)
	}
	if _, err := b.Build(context.Background(), build.Request{Src: src, Settings: build.Settings{Tool: "jekyll"}}); !build.IsUserError(err) {
		t.Errorf("unknown tool: %v", err)
	}
}

// TestTimeoutKillsProcessGroup: a build that outlives its timeout is a user
// error, and everything it started dies with it. The build runs in its own
// pid namespace, so its child is found by its unique command line.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	req := hugoRequest(t, copySite(t, nil))
	startedFile := filepath.Join(req.Out, "grandchild.started") // the output: a dir the build may write
	sleep := fmt.Sprintf("60.%d", os.Getpid())                  // this test's own sleep
	script := filepath.Join(dir, "slow-build")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho Start building sites\necho rendering the home page\n/bin/sleep "+sleep+" &\necho started > "+startedFile+"\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, build.Options{Exe: script, Timeout: 300 * time.Millisecond})
	_, err := b.Build(context.Background(), req)
	if !build.IsUserError(err) || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("want a timeout user error, got %v", err)
	}
	// The failure says where the build was: the last lines it printed.
	if !strings.Contains(err.Error(), "Start building sites\nrendering the home page") {
		t.Errorf("timeout error %q lacks the last lines printed", err)
	}
	if _, err := os.Stat(startedFile); err != nil {
		t.Fatal(err)
	}
	// sleeping does find such a process.
	probe := exec.Command("/bin/sleep", sleep+"1")
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	found := sleeping(t, sleep+"1")
	probe.Process.Kill() //nolint:errcheck // waited for below
	probe.Wait()         //nolint:errcheck // killed
	if found != probe.Process.Pid {
		t.Fatalf("sleeping found %d, not the probe %d", found, probe.Process.Pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for pid := sleeping(t, sleep); pid != 0; pid = sleeping(t, sleep) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // best effort, the test fails anyway
			t.Fatal("the build's own child survived the timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleeping is the pid of a process running `/bin/sleep arg`, 0 if none.
func sleeping(t *testing.T, arg string) int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if cmdline, err := os.ReadFile(p); err == nil && string(cmdline) == "/bin/sleep\x00"+arg+"\x00" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	return 0
}

func TestCancelIsNotUserError(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "slow-build")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec /bin/sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, build.Options{Exe: script})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := b.Build(ctx, hugoRequest(t, copySite(t, nil)))
	if err == nil || build.IsUserError(err) {
		t.Fatalf("a cancelled build is ours to retry, not the site's fault: %v", err)
	}
}

func TestLogIsCapped(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "noisy-build")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n/usr/bin/head -c 100000 /dev/zero | /usr/bin/tr '\\0' x\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, build.Options{Exe: script, MaxLog: 1000})
	req := hugoRequest(t, copySite(t, nil))
	req.CacheDir = "" // no cache, no cache notes: the log is the child's alone
	res, err := b.Build(context.Background(), req)
	if err == nil || build.IsUserError(err) {
		t.Errorf("a child that died without a result: %v, want an infrastructure error", err)
	}
	// The log starts with the sandbox's line, then the child's output.
	want := fmt.Sprintf("truncated: %d more bytes", 99000+len("Sandbox: "+res.Sandbox+"\n"))
	if len(res.Log) > 1100 || !strings.HasPrefix(string(res.Log), "Sandbox: ") || !strings.Contains(string(res.Log), want) {
		t.Errorf("log not capped: %d bytes, tail %q", len(res.Log), res.Log[max(0, len(res.Log)-80):])
	}
}

func TestKey(t *testing.T) {
	base := build.Settings{Tool: "hugo", Environment: "production", Minify: true, Env: map[string]string{"A": "1"}, SecretEnv: map[string]string{"S": "secret"}}
	k := build.Key("tree1", base, "https://a.test/")
	if len(k) != 64 || k != build.Key("tree1", base, "https://a.test/") {
		t.Fatalf("key %q not a stable sha256", k)
	}
	mod := func(f func(*build.Settings)) build.Settings {
		s := base
		s.Env = map[string]string{"A": "1"}
		s.SecretEnv = map[string]string{"S": "secret"}
		f(&s)
		return s
	}
	differs := map[string]string{
		"tree":        build.Key("tree2", base, "https://a.test/"),
		"base URL":    build.Key("tree1", base, "https://b.test/"),
		"environment": build.Key("tree1", mod(func(s *build.Settings) { s.Environment = "staging" }), "https://a.test/"),
		"minify":      build.Key("tree1", mod(func(s *build.Settings) { s.Minify = false }), "https://a.test/"),
		"env value":   build.Key("tree1", mod(func(s *build.Settings) { s.Env["A"] = "2" }), "https://a.test/"),
		"secret name": build.Key("tree1", mod(func(s *build.Settings) { s.SecretEnv = map[string]string{"T": "secret"} }), "https://a.test/"),
		"tool":        build.Key("tree1", mod(func(s *build.Settings) { s.Tool = "none" }), "https://a.test/"),
		"npm lock":    build.Key("tree1", mod(func(s *build.Settings) { s.NPMLock = "ab12" }), "https://a.test/"),
		"toolchain":   build.Key("tree1", mod(func(s *build.Settings) { s.Toolchain = "dart-sass 1.108.2" }), "https://a.test/"),
	}
	for what, other := range differs {
		if other == k {
			t.Errorf("changing the %s does not change the key", what)
		}
	}
	if build.Key("tree1", mod(func(s *build.Settings) { s.SecretEnv["S"] = "rotated" }), "https://a.test/") != k {
		t.Error("a secret's value must not be in the key (rotating it would rebuild, and the key is stored)")
	}
	none := build.Settings{Tool: "none"}
	if build.Key("t", none, "https://a.test/") != build.Key("t", none, "https://b.test/") {
		t.Error("tool none publishes the tree as is: the base URL must not matter")
	}
}

// TestOutputLimit: what a build writes in all is bounded, whether the
// build outruns the watcher or not.
func TestOutputLimit(t *testing.T) {
	b := newBuilder(t, build.Options{MaxOutput: 1 << 20})
	req := hugoRequest(t, copySite(t, map[string]string{
		"layouts/home.html": `{{ strings.Repeat 3000000 "x" }}`,
	}))
	res, err := b.Build(context.Background(), req)
	if !build.IsUserError(err) || !strings.Contains(err.Error(), "wrote more than 1.0 MB") {
		t.Fatalf("got %v, want the output limit\n%s", err, res.Log)
	}
}
