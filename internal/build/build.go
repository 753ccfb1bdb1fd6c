// Package build turns an exported site tree into the files to publish. Hugo
// runs in a child process of our own binary (the hidden `sitehost hugo-build`
// subcommand, see package hugochild), never in the server process: Hugo keeps
// global state, leaks memory across builds, cannot be cancelled and runs
// untrusted templates. This is the only package that starts processes.
package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sitehost/sitehost/internal/diskuse"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/sandbox"
)

// HugoVersion is the Hugo compiled into sitehost. It is part of every build
// key, so upgrading Hugo rebuilds every site once. hugochild's tests check it
// against Hugo's own version.
const HugoVersion = "0.165.0"

// keyFormat versions the build-key recipe itself.
const keyFormat = "sitehost-build-key/v2" // v2: manifests carry rules and compressed variants

// Tools.
const (
	ToolHugo = "hugo"
	ToolNone = "none"
)

// Settings are a site's build settings from sites.yaml.
type Settings struct {
	Tool        string            // hugo | none
	HugoVersion string            // a Hugo release to fetch and run, e.g. 0.152.2 ("": the compiled-in HugoVersion)
	Environment string            // Hugo environment, e.g. production
	Minify      bool              // hugo --minify
	Env         map[string]string // extra environment for the build (site config, not secret)
	SecretEnv   map[string]string // secret values, for trusted builds only; names go in the key, values never do
	NPMLock     string            // sha256 of the site's npm lockfile ("": none), in the key like the Hugo version
	Toolchain   string            // the server's other tools that shape the output (Builder.Toolchain), in the key
}

// Hugo is the version of Hugo that builds with these settings.
func (s Settings) Hugo() string {
	if s.HugoVersion == "" {
		return HugoVersion
	}
	return s.HugoVersion
}

// Key returns the build key: the sha256 of everything that determines the
// output. A tree built before with the same settings is never built again.
func Key(tree string, s Settings, baseURL string) string {
	h := sha256.New()
	field := func(k, v string) { fmt.Fprintf(h, "%s=%d:%s\n", k, len(v), v) }
	field("format", keyFormat)
	field("tree", tree)
	field("tool", s.Tool)
	if s.Tool != ToolNone {
		field("hugo", s.Hugo())
		field("environment", s.Environment)
		field("minify", strconv.FormatBool(s.Minify))
		field("baseURL", baseURL)
		for _, k := range sortedKeys(s.Env) {
			field("env."+k, s.Env[k])
		}
		for _, k := range sortedKeys(s.SecretEnv) {
			field("secret", k)
		}
		if s.NPMLock != "" { // only then: keys of sites without npm stay as they were
			field("npm.lock", s.NPMLock)
		}
		if s.Toolchain != "" { // likewise for servers without Dart Sass
			field("toolchain", s.Toolchain)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// GitHistory lets Hugo's enableGitInfo read commit history without a git
// binary and without running git on repo content: the child finds a "git"
// in its PATH that is our own binary answering from the fetch cache.
type GitHistory struct {
	Dir    string // bare repo of the site's fetch cache
	Commit string // the commit being built
	Prefix string // the site's path inside the repo
}

// Request is one build.
type Request struct {
	Site     string // for logs
	Src      string // exported tree (the site root)
	Out      string // empty or missing directory the output goes to
	BaseURL  string
	CacheDir string // per-site Hugo cache, kept between builds (see cache.go)
	// Untrusted builds (pull requests from forks) read a copy of the
	// site's cache and never write it back: no planted entries.
	Untrusted bool
	Settings  Settings
	Git       *GitHistory // nil: no history available
	// Log, when set, also receives the build's output as it is written,
	// for followers of a running build.
	Log io.Writer

	sandbox *sandbox.Sandbox // set by Build: every process of the build runs in it
}

// Result describes a finished build, successful or not.
type Result struct {
	Dir      string        // where the publishable files are: Out for Hugo, Src for tool none
	Log      []byte        // captured build output (size-limited)
	Duration time.Duration // wall time
	MaxRSS   int64         // peak memory of the build: its cgroup's when sandboxed, else the child's rusage (which includes the server's own, shared until exec)
	Sandbox  string        // the sandbox's mechanisms in force, e.g. "landlock v7, user+net+pid+ipc+uts namespaces, …"
}

// Problem is one build error, with the position when Hugo knows it.
type Problem struct {
	File    string `json:"file,omitempty"` // relative to the site root
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
	case p.File != "":
		return p.File + ": " + p.Message
	}
	return p.Message
}

// UserError is a build that failed because of the site's content: a template
// or config error, a timeout, too much memory. Retrying the same commit gives
// the same result, so callers wait for a new commit instead.
type UserError struct {
	Problems []Problem
}

func (e *UserError) Error() string {
	if len(e.Problems) == 0 {
		return "build failed"
	}
	msg := e.Problems[0].String()
	if n := len(e.Problems) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return msg
}

// FaultKind makes a user error stalled: wait for a new commit.
func (e *UserError) FaultKind() fault.Kind { return fault.KindStalled }

// IsUserError reports whether err is the site's fault (not worth a retry).
func IsUserError(err error) bool {
	var ue *UserError
	return errors.As(err, &ue)
}

// Options configure a Builder.
type Options struct {
	// Exe is the sitehost binary that serves `hugo-build` (default: os.Executable).
	Exe string
	// Timeout bounds one build's wall time (default 10m).
	Timeout time.Duration
	// Memory is the build's hard memory limit (a cgroup's, else
	// RLIMIT_DATA); the child's GOMEMLIMIT is 80% of it (0: none).
	Memory int64
	// MaxLog caps the captured build log (default 1 MiB).
	MaxLog int
	// MaxOutput and MaxOutputFiles bound what one build writes in all
	// (defaults 4 GiB and 200,000: a deploy's limits, with room for
	// caches).
	MaxOutput      int64
	MaxOutputFiles int
	// Releases fetches the Hugo releases sites ask for; nil: only the
	// compiled-in Hugo builds.
	Releases Releases
	// DartSass is the absolute path of the Dart Sass builds may run
	// (FindDartSass); "": none, transpiler dartsass fails with a hint.
	DartSass string
	// DartSassVersion is its compiler version (FindDartSass): a new one
	// may compile the same SCSS differently, so it is in every Hugo build's
	// key (Toolchain).
	DartSassVersion string
	// Node is the absolute path of the node builds run Hugo's Node tools
	// with (FindNode); "": none.
	Node string
	// ExecAllow is the ceiling of the tools a build may run (ExecTools;
	// nil: DefaultExecAllow). See node.go.
	ExecAllow []string
	// CacheLimit bounds a site's kept Hugo cache (default CacheLimit).
	CacheLimit int64
	// Unsandboxed runs untrusted builds even where no sandbox contains
	// them (server.build.allow_unsandboxed); otherwise they are refused.
	Unsandboxed bool
	// NoSandbox runs every build outside the sandbox, as before it
	// existed: for measuring what it costs. Untrusted builds are then
	// refused unless Unsandboxed.
	NoSandbox bool
	// ScratchDir is where each build makes its scratch folder (default
	// os.TempDir()); the server gives a folder of its own (tempdir), so
	// the next server removes what a killed one left.
	ScratchDir string
	// Logger, never nil.
	Logger *slog.Logger
}

// Builder runs builds.
type Builder struct {
	opts    Options
	sandbox *sandbox.Support
	self    string // our own binary: the sandbox's launcher
}

// New returns a Builder.
func New(opts Options) (*Builder, error) {
	if opts.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding our own executable: %w", err)
		}
		opts.Exe = exe
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	if opts.MaxLog <= 0 {
		opts.MaxLog = 1 << 20
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = 4 << 30
	}
	if opts.MaxOutputFiles <= 0 {
		opts.MaxOutputFiles = 200_000
	}
	if opts.CacheLimit <= 0 {
		opts.CacheLimit = CacheLimit
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// The launcher executes absolute paths only: builds run in the
	// site's dir, with the child's PATH.
	if p, err := exec.LookPath(opts.Exe); err == nil {
		opts.Exe = p
	}
	exe, err := filepath.Abs(opts.Exe)
	if err != nil {
		return nil, fmt.Errorf("finding our own executable: %w", err)
	}
	opts.Exe = exe
	// The launcher is the running binary, whatever Exe is (tests run a
	// script as the child): it answers `sandbox-exec` (cmd/sitehost's
	// child, and the TestMain of tests that build).
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding our own executable: %w", err)
	}
	sb := sandbox.Detect(self)
	opts.Logger.Info("build sandbox", "mechanisms", sb.String())
	return &Builder{opts: opts, sandbox: sb, self: self}, nil
}

// Toolchain names the server's tools besides Hugo that shape a build's
// output, for Settings.Toolchain: "dart-sass 1.108.2", or "" with none.
func (b *Builder) Toolchain() string {
	if b.opts.DartSass == "" || b.opts.DartSassVersion == "" {
		return ""
	}
	return "dart-sass " + b.opts.DartSassVersion
}

// Sandbox is what this system offers the builder's processes, detected
// once by New: the npm install step runs in the same.
func (b *Builder) Sandbox() *sandbox.Support { return b.sandbox }

// Build builds req. A *UserError means the site is at fault; any other
// error is ours (or the machine's) and worth a retry.
func (b *Builder) Build(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	if req.Settings.Tool == ToolNone {
		msg := []byte("build.tool is none: publishing the tree as it is\n")
		if req.Log != nil {
			req.Log.Write(msg) //nolint:errcheck // a follower's problem
		}
		return Result{Dir: req.Src, Log: msg, Duration: time.Since(start)}, nil
	}
	if req.Settings.Tool != ToolHugo {
		return Result{}, &UserError{Problems: []Problem{{Message: fmt.Sprintf("unknown build tool %q", req.Settings.Tool)}}}
	}
	res, err := b.hugo(ctx, req)
	res.Duration = time.Since(start)
	return res, err
}

// ChildRequest is what the parent sends the hugo-build child on stdin.
type ChildRequest struct {
	Src         string `json:"src"`
	Out         string `json:"out"`
	BaseURL     string `json:"base_url"`
	Environment string `json:"environment"`
	Minify      bool   `json:"minify"`
	CacheDir    string `json:"cache_dir"`
	GC          bool   `json:"gc"` // hugo --gc: drop cache entries this build did not use
	ResultFile  string `json:"result_file"`
}

// ChildResult is what the child writes to ResultFile.
type ChildResult struct {
	OK       bool      `json:"ok"`
	Problems []Problem `json:"problems,omitempty"`
}

func (b *Builder) hugo(ctx context.Context, req Request) (Result, error) {
	res := Result{Dir: req.Out}
	// A release the site asks for is fetched before the timeout starts:
	// the download is ours, not the build's.
	var release *Release
	if v := req.Settings.Hugo(); v != HugoVersion {
		r, err := b.release(ctx, req, v)
		if err != nil {
			return res, err
		}
		release = &r
	}
	scratch, err := os.MkdirTemp(b.opts.ScratchDir, "sitehost-build-")
	if err != nil {
		return res, fmt.Errorf("making build scratch dir: %w", err)
	}
	defer os.RemoveAll(scratch)
	home := filepath.Join(scratch, "home")
	bin := filepath.Join(scratch, "bin")
	for _, d := range []string{home, bin, req.Out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return res, fmt.Errorf("making %s: %w", d, err)
		}
	}
	hc := b.openCache(req, scratch) // cache.go: the site's Hugo cache, seeded into this build
	defer hc.close()
	sb, err := b.newSandbox(req, scratch, hc.dir(), release) // sandbox.go
	if err != nil {
		return res, err
	}
	res.Sandbox = "none"
	if sb != nil {
		defer func() {
			if err := sb.Close(); err != nil {
				b.opts.Logger.Warn("removing build sandbox", "site", req.Site, "err", err)
			}
		}()
		req.sandbox, res.Sandbox = sb, sb.String()
	}
	env, err := b.childEnv(req, home, bin)
	if err != nil {
		return res, err
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(parent, b.opts.Timeout)
	defer cancel()
	// What the build writes in all — output, scratch, cache, resources —
	// is bounded too: the kernel bounds each file (RLIMIT_FSIZE), this the
	// sum, before the disk fills.
	ctx, over := context.WithCancelCause(ctx)
	defer over(nil)
	written := []string{req.Out, scratch, hc.dir(), filepath.Join(req.Src, "resources")}
	go diskuse.Watch(ctx, b.opts.MaxOutput, b.opts.MaxOutputFiles, over, written...)
	logw := &capped{max: b.opts.MaxLog, tee: req.Log}
	fmt.Fprintf(logw, "Sandbox: %s\n", res.Sandbox)
	hc.log(logw)
	var (
		cmd      *exec.Cmd
		runErr   error
		problems []Problem
		ok       bool
	)
	if release == nil {
		cmd, runErr, problems, ok, err = b.runChild(ctx, req, env, logw, scratch, hc.dir())
	} else {
		cmd, runErr, problems, ok, err = b.runRelease(ctx, req, *release, env, logw, hc.dir())
	}
	res.Log = logw.bytes()
	overMemory := b.memoryProblem(req, res.Log) // before the sandbox's cgroup goes
	if cmd != nil && cmd.ProcessState != nil {
		if ru, isRU := cmd.ProcessState.SysUsage().(*syscall.Rusage); isRU {
			res.MaxRSS = ru.Maxrss * 1024
		}
	}
	if sb != nil {
		if peak := sb.PeakMemory(); peak > 0 { // the cgroup's: the build alone
			res.MaxRSS = peak
		}
	}
	switch {
	case parent.Err() != nil: // we were stopped: not the site's fault
		return res, fmt.Errorf("building %s: %w", req.Site, parent.Err())
	case errors.As(context.Cause(ctx), new(*diskuse.OverError)):
		return res, &UserError{Problems: []Problem{{Message: fmt.Sprintf("build killed: it %v (output, temporary files and caches together)", context.Cause(ctx))}}}
	case ctx.Err() != nil:
		msg := fmt.Sprintf("build timed out after %s (killed with every process it started)", b.opts.Timeout)
		if last := lastLines(res.Log, 5); last != "" {
			msg += "; the last lines it printed:\n" + last
		}
		return res, &UserError{Problems: []Problem{{Message: msg}}}
	case err != nil:
		return res, err
	case ok:
		// A build faster than the watcher's look is measured once more.
		if err := diskuse.Check(b.opts.MaxOutput, b.opts.MaxOutputFiles, written...); err != nil {
			return res, &UserError{Problems: []Problem{{Message: fmt.Sprintf("build refused: it %v (output, temporary files and caches together)", err)}}}
		}
		hc.save()
		res.Log = hc.logAfter(res.Log, req.Log)
		return res, nil
	case overMemory != nil:
		return res, overMemory
	case len(problems) > 0:
		for i := range problems {
			problems[i].File = relativeTo(req.Src, problems[i].File)
			if h := b.ExecHint(problems[i].Message); h != "" {
				problems[i].Message += "; " + h
			}
		}
		return res, &UserError{Problems: problems}
	}
	// No verdict: the child crashed or never started. Killed by the
	// kernel for memory is the site's fault; anything else is ours.
	if ws, isWS := cmdWaitStatus(cmd); isWS && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return res, &UserError{Problems: []Problem{{Message: "build was killed (out of memory?)"}}}
	}
	if runErr == nil {
		runErr = errors.New("exited without a result")
	}
	return res, fmt.Errorf("running hugo for %s: %w", req.Site, runErr)
}

// command prepares one process of a build: in the build's sandbox, with
// procAttr's process group (and, on Linux, Pdeathsig).
func command(ctx context.Context, req Request, env []string, exe string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = req.Src
	cmd.Env = env
	cmd.SysProcAttr = procAttr() // procattr_*.go
	sandboxCommand(cmd, req)     // sandbox.go
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runChild builds with the compiled-in Hugo: our own binary as the
// hugo-build child, which writes its verdict to a result file. ok and
// problems are its verdict; neither means it gave none.
func (b *Builder) runChild(ctx context.Context, req Request, env []string, logw io.Writer, scratch, cacheDir string) (cmd *exec.Cmd, runErr error, problems []Problem, ok bool, err error) {
	cr := ChildRequest{
		Src: req.Src, Out: req.Out, BaseURL: req.BaseURL,
		Environment: req.Settings.Environment, Minify: req.Settings.Minify,
		CacheDir: cacheDir, GC: true, ResultFile: filepath.Join(scratch, "result.json"),
	}
	in, err := json.Marshal(cr)
	if err != nil {
		return nil, nil, nil, false, fmt.Errorf("encoding child request: %w", err)
	}
	cmd = command(ctx, req, env, b.opts.Exe, "hugo-build")
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout, cmd.Stderr = logw, logw
	b.opts.Logger.Debug("starting hugo build", "site", req.Site, "src", req.Src, "base_url", req.BaseURL)
	runErr = cmd.Run()
	var out ChildResult
	data, readErr := os.ReadFile(cr.ResultFile)
	if readErr == nil {
		readErr = json.Unmarshal(data, &out)
	}
	if readErr != nil {
		return cmd, errors.Join(runErr, readErr), nil, false, nil
	}
	return cmd, runErr, out.Problems, out.OK, nil
}

// lastLines is the last n non-empty lines of log: where a build that
// hangs was when it stopped talking.
func lastLines(log []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append(out, l)
		}
	}
	slices.Reverse(out)
	return strings.Join(out, "\n")
}

func cmdWaitStatus(cmd *exec.Cmd) (syscall.WaitStatus, bool) {
	if cmd.ProcessState == nil {
		return 0, false
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws, ok
}

func relativeTo(root, file string) string {
	if file == "" || !filepath.IsAbs(file) {
		return file
	}
	if rel, err := filepath.Rel(root, file); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return file
}

// reservedEnv may not be set by a site: the sandbox depends on them.
var reservedEnv = regexp.MustCompile(`^(PATH|HOME|TMPDIR|GOMEMLIMIT|GOMAXPROCS|GOGC|HUGO_SECURITY|HUGO_CACHEDIR|HUGO_ENVIRONMENT|HUGO_ENV|DART_SASS_BINARY|SITEHOST_.*)$`)

// childEnv is the child's whole environment: nothing from the server's own
// environment, so no server secret can reach a template.
func (b *Builder) childEnv(req Request, home, bin string) ([]string, error) {
	var env []string
	add := func(k, v string) error {
		if reservedEnv.MatchString(k) {
			return &UserError{Problems: []Problem{{Message: fmt.Sprintf("build env %s is reserved by sitehost", k)}}}
		}
		env = append(env, k+"="+v)
		return nil
	}
	for _, k := range sortedKeys(req.Settings.Env) {
		if err := add(k, req.Settings.Env[k]); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedKeys(req.Settings.SecretEnv) {
		if err := add(k, req.Settings.SecretEnv[k]); err != nil {
			return nil, err
		}
	}
	sec, err := securityJSON(req.Settings.Hugo(), req.Settings, req.Git != nil, b.tools())
	if err != nil {
		return nil, err
	}
	env = append(env,
		"PATH="+bin,
		"HOME="+home,
		"TMPDIR="+home,
		"HUGO_SECURITY="+sec,
	)
	if env, err = b.sassChild(env, bin); err != nil {
		return nil, err
	}
	if err := b.nodeChild(bin); err != nil {
		return nil, err
	}
	if b.opts.Memory > 0 {
		env = append(env, fmt.Sprintf("GOMEMLIMIT=%d", b.opts.Memory*8/10))
	}
	if req.Git != nil {
		// Hugo finds "git" in PATH: our own binary, answering from the cache.
		if err := os.Symlink(b.opts.Exe, filepath.Join(bin, "git")); err != nil {
			return nil, fmt.Errorf("linking git shim: %w", err)
		}
		env = append(env,
			"SITEHOST_GIT_DIR="+req.Git.Dir,
			"SITEHOST_GIT_COMMIT="+req.Git.Commit,
			"SITEHOST_GIT_PREFIX="+req.Git.Prefix,
		)
	}
	return env, nil
}

// securityJSON is the locked HUGO_SECURITY. It is applied after the site's
// own config (notes/libraries.md §1.5.1), so a site cannot loosen it, and it
// sets every leaf because Hugo merges it deeply. getenv sees only HUGO_*
// and the names the site declared; exec our git shim and the tools
// (node.go), which the site's own exec.allow narrows later (NarrowExec).
func securityJSON(version string, s Settings, git bool, tools []string) (string, error) {
	getenv := []string{"^HUGO_"}
	for _, k := range append(sortedKeys(s.Env), sortedKeys(s.SecretEnv)...) {
		getenv = append(getenv, "^"+regexp.QuoteMeta(k)+"$")
	}
	// What Hugo runs sees HOME and TMPDIR, both the build's scratch home
	// (childEnv): without them node asks the password file for a home and
	// writes temporary files to /tmp, which the sandbox does not allow.
	execAllow, osEnv := []string{"none"}, []string{"^(HOME|TMPDIR)$"}
	if git {
		execAllow = []string{"^git$"}
		osEnv = append(osEnv, "^SITEHOST_GIT_(DIR|COMMIT|PREFIX)$")
	}
	execAllow = withTools(execAllow, tools)
	none := []string{"none"}
	sec := map[string]any{
		"enableInlineShortcodes": false,
		"exec":                   map[string]any{"allow": execAllow, "osEnv": osEnv},
		"funcs":                  map[string]any{"getenv": getenv},
		"http":                   map[string]any{"urls": none, "methods": none, "mediaTypes": none},
	}
	// Keys newer releases added, set only where the release knows them:
	// the policy is expressed in the config of the Hugo that runs.
	if !since(version, "0.122.0") {
		// v0.114–v0.121 let a site turn the JS-template-literal guard off.
		sec["goTemplates"] = map[string]any{"allowActionJSTmpl": false}
	}
	if since(version, "0.161.0") {
		sec["node"] = map[string]any{"permissions": nodePermissions(tools)}
	}
	if since(version, "0.162.0") {
		sec["allowContent"] = []string{"! ^text/html$"}
	}
	b, err := json.Marshal(sec)
	return string(b), err
}

// capped keeps the first max bytes written and counts the rest.
type capped struct {
	buf     bytes.Buffer
	max     int
	dropped int
	tee     io.Writer // optional: also gets what is kept
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	kept := p
	switch {
	case room >= len(p):
	case room > 0:
		kept = p[:room]
		c.dropped += len(p) - room
	default:
		kept = nil
		c.dropped += len(p)
	}
	c.buf.Write(kept)
	if c.tee != nil && len(kept) > 0 {
		c.tee.Write(kept) //nolint:errcheck // a follower's problem, not the build's
	}
	return len(p), nil
}

func (c *capped) bytes() []byte {
	if c.dropped > 0 {
		note := fmt.Sprintf("\n… build log truncated: %d more bytes\n", c.dropped)
		c.buf.WriteString(note)
		if c.tee != nil {
			io.WriteString(c.tee, note) //nolint:errcheck // a follower's problem
		}
	}
	return c.buf.Bytes()
}

var _ io.Writer = (*capped)(nil)
