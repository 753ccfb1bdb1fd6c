// Package npm installs a site's npm dependencies before its build, as
// Netlify and Cloudflare Pages run `npm ci` when a lockfile exists, but with
// no package's install scripts run: the server's npm, in a scratch folder
// outside the checkout, with no network but a proxy to the registry (see
// proxy) and no server environment. What it installs is kept per site,
// keyed by the lockfile's sha256, so an unchanged lockfile installs
// nothing: the kept node_modules is copied into the checkout (see copyTree
// for why a copy).
package npm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sitehost/sitehost/internal/diskuse"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/keylock"
	"github.com/sitehost/sitehost/internal/sandbox"
	"github.com/sitehost/sitehost/internal/tempdir"
)

// DefaultRegistry is npm's own registry.
const DefaultRegistry = "https://registry.npmjs.org/"

// Defaults for Options.
const (
	DefaultMaxBytes = 2 << 30 // what one install may write: node_modules and npm's scratch
	DefaultMaxFiles = 300_000
	DefaultTimeout  = 10 * time.Minute
	// MaxLockfile bounds the lockfile read for the build key.
	MaxLockfile = 64 << 20
	// keep is how many installs (lockfile hashes) are kept per site.
	keep = 2
)

// Lockfiles npm reads, in its order of preference.
var Lockfiles = []string{"npm-shrinkwrap.json", "package-lock.json"}

// otherLockfiles belong to package managers sitehost does not run.
var otherLockfiles = []string{"pnpm-lock.yaml", "yarn.lock", "bun.lockb", "bun.lock"}

// Options configure an Installer.
type Options struct {
	// NPM is the npm executable (absolute) and Node the node it runs on
	// (Find); NPM "" disables installs: a site with a lockfile fails with
	// a hint.
	NPM, Node string
	// Registry is the registry URL (default DefaultRegistry).
	Registry string
	// Token authenticates to Registry, for trusted builds only; "": none.
	Token string
	// CacheDir holds the kept installs (<site>/<hash>/node_modules) and
	// npm's own cache (_npm).
	CacheDir string
	// MaxBytes and MaxFiles bound what one install writes.
	MaxBytes int64
	MaxFiles int
	// Timeout bounds one install.
	Timeout time.Duration
	// Sandbox, when set, contains every install (see newSandbox): no
	// network but the registry proxy, no files but its own. nil: npm
	// runs as the server, as before the sandbox, and still reaches only
	// the registry, through the proxy.
	// An https Registry must be named by host name: npm's proxy agent
	// checks an IP address's certificate against "localhost".
	Sandbox *sandbox.Support
	// ExtraCACerts is a PEM file of CAs npm trusts besides node's own
	// (NODE_EXTRA_CA_CERTS): a registry or TLS proxy with a company CA.
	ExtraCACerts string
	// Unsandboxed runs untrusted installs (forks' pull requests) where no
	// sandbox contains them (server.build.allow_unsandboxed); by default
	// they are refused, as their builds are.
	Unsandboxed bool
	Logger      *slog.Logger
}

// Installer installs sites' npm dependencies. One per CacheDir.
type Installer struct {
	opts  Options
	locks keylock.Locks // one install per site at a time
}

// New returns an Installer.
func New(opts Options) *Installer {
	if opts.Registry == "" {
		opts.Registry = DefaultRegistry
	}
	if !strings.HasSuffix(opts.Registry, "/") {
		opts.Registry += "/"
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Installer{opts: opts}
}

// Result says what Install did.
type Result struct {
	Lockfile string        // "" when the site has nothing to install
	Hash     string        // sha256 of the lockfile
	Cached   bool          // node_modules came from an earlier install
	Skipped  string        // why nothing was installed for a lockfile ("": it was)
	Packages int           // top-level entries of node_modules
	Sandbox  string        // what contained npm ci ("unsandboxed" without Options.Sandbox; "" when cached)
	Took     time.Duration // install (or copy) time
}

// Hash is the cache and build key of a lockfile's content.
func Hash(lockfile []byte) string {
	sum := sha256.Sum256(lockfile)
	return hex.EncodeToString(sum[:])
}

// Detect returns the npm lockfile of the site at dir ("" when there is
// nothing to install: no package.json, or no lockfile of any kind). A
// package.json with only another package manager's lockfile is a user
// error naming it.
func Detect(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		return "", nil
	}
	for _, name := range Lockfiles {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
			return name, nil
		}
	}
	for _, name := range otherLockfiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return "", fault.Stalled(fmt.Errorf("npm: the site has %s but no package-lock.json or npm-shrinkwrap.json: only npm lockfiles are supported (run npm install and commit package-lock.json)", name))
		}
	}
	return "", nil
}

// Install gives the site at dir the node_modules its lockfile describes,
// from the site's cache or installed with npm ci (no scripts). Untrusted
// builds never use the registry token, nor installs made with it.
func (in *Installer) Install(ctx context.Context, site, dir string, untrusted bool) (Result, error) {
	start := time.Now()
	name, err := Detect(dir)
	if err != nil || name == "" {
		return Result{}, err
	}
	res := Result{Lockfile: name}
	lock, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return res, fmt.Errorf("npm: reading %s: %w", name, err)
	}
	res.Hash = Hash(lock)
	if in.opts.NPM == "" {
		// As before sitehost ran npm: the build goes on without, and says so.
		res.Skipped = fmt.Sprintf("the site has %s, but this server has no npm (server.build.npm): building without node_modules", name)
		return res, nil
	}
	token := in.opts.Token
	if untrusted {
		token = ""
	}
	// Installs made with the token may hold private packages: they live
	// apart, so an untrusted build never sees them.
	siteDir := filepath.Join(in.opts.CacheDir, site)
	entry := filepath.Join(siteDir, res.Hash)
	npmCache := filepath.Join(in.opts.CacheDir, "_npm")
	if token != "" {
		entry += "-private"
		npmCache = filepath.Join(in.opts.CacheDir, "_npm-private", site)
	}
	unlock, err := in.locks.Lock(ctx, site)
	if err != nil {
		return res, err
	}
	defer unlock()

	modules := filepath.Join(entry, "node_modules")
	if _, err := os.Stat(filepath.Join(entry, doneFile)); err != nil {
		if err := in.install(ctx, &res, untrusted, siteDir, entry, npmCache, token, name, dir, lock); err != nil {
			return res, err
		}
		// npm's cache only saves downloads: past the limit it starts over.
		if diskuse.Check(2*in.opts.MaxBytes, 4*in.opts.MaxFiles, npmCache) != nil {
			in.opts.Logger.Info("npm: emptying npm's cache, over twice server.build.npm_max_bytes", "dir", npmCache)
			os.RemoveAll(npmCache) //nolint:errcheck // a cache: the next install refills it
		}
	} else {
		res.Cached = true
	}
	now := time.Now()
	os.Chtimes(filepath.Join(entry, doneFile), now, now) //nolint:errcheck // only the eviction order
	in.evict(siteDir)

	// npm ci starts from an empty node_modules; so do we.
	dst := filepath.Join(dir, "node_modules")
	if err := os.RemoveAll(dst); err != nil {
		return res, fmt.Errorf("npm: removing the checkout's node_modules: %w", err)
	}
	if err := copyTree(modules, dst); err != nil {
		return res, fmt.Errorf("npm: copying node_modules into the checkout: %w", err)
	}
	if ents, err := os.ReadDir(dst); err == nil {
		res.Packages = len(ents)
	}
	res.Took = time.Since(start)
	return res, nil
}

// doneFile marks a complete install in an entry; its mtime is the last use.
const doneFile = "installed"

// stagePrefix names the folders installs run in, beside the entries.
const stagePrefix = ".install-"

// install runs npm ci in a scratch folder beside entry holding only the
// site's package.json and lockfile, then renames what it made into entry.
// It sets res.Sandbox.
func (in *Installer) install(ctx context.Context, res *Result, untrusted bool, siteDir, entry, npmCache, token, lockName, src string, lock []byte) error {
	if err := os.MkdirAll(siteDir, 0o755); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	// The stage of an install whose process was killed is removed here;
	// one another process is running keeps its flock, and stays (tempdir).
	if _, err := tempdir.Sweep(siteDir, stagePrefix); err != nil {
		in.opts.Logger.Warn("npm: removing the stage of an install that was killed", "err", err)
	}
	st, err := tempdir.Claim(siteDir, stagePrefix)
	if err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	defer st.Release() //nolint:errcheck // a stage left, the next install sweeps
	stage := st.Path()
	work, home, bin := filepath.Join(stage, "work"), filepath.Join(stage, "home"), filepath.Join(stage, "bin")
	for _, d := range []string{work, home, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("npm: %w", err)
		}
	}
	pkg, err := os.ReadFile(filepath.Join(src, "package.json"))
	if err != nil {
		return fmt.Errorf("npm: reading package.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(work, "package.json"), pkg, 0o644); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	if err := os.WriteFile(filepath.Join(work, lockName), lock, 0o644); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	// npm is a node script (#!/usr/bin/env node): its PATH has node and
	// nothing else.
	if err := os.Symlink(in.opts.Node, filepath.Join(bin, "node")); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	// The registry and its token in an npmrc of ours, outside the
	// checkout, and npm reads no other (the site's own .npmrc is not
	// copied: it could name another registry or turn scripts back on).
	npmrc := filepath.Join(stage, "npmrc")
	if err := os.WriteFile(npmrc, []byte(npmrcFor(in.opts.Registry, token)), 0o600); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stage, "globalrc"), nil, 0o600); err != nil {
		return fmt.Errorf("npm: %w", err)
	}

	// The watcher stops npm through the context, so exec kills the
	// process group only while it runs (never a reused process group).
	ctx, cancel := context.WithTimeout(ctx, in.opts.Timeout)
	defer cancel()
	ctx, stopFor := context.WithCancelCause(ctx)
	defer stopFor(nil)
	px, err := newProxy(in.opts.Registry, in.opts.Logger)
	if err != nil {
		return err
	}
	defer px.close()
	prog := in.opts.NPM
	res.Sandbox = "unsandboxed"
	var sb *sandbox.Sandbox
	var ln net.Listener // the proxy's, when there is no sandbox
	proxyAddr := ""
	if in.opts.Sandbox != nil {
		// Landlock allows only what exists: npm's cache too.
		if err := os.MkdirAll(npmCache, 0o755); err != nil {
			return fmt.Errorf("npm: %w", err)
		}
		if sb, err = in.newSandbox(stage, npmCache); err != nil {
			return err
		}
		defer sb.Close() //nolint:errcheck // its cgroups: emptied when npm is gone
		res.Sandbox = sb.String()
		proxyAddr = sb.EgressAddr()
	} else {
		// Trusted and unsandboxed, npm still reaches the registry only
		// through the proxy: the lockfile is the site's all the same.
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("npm: the registry proxy: %w", err)
		}
		defer ln.Close()
		proxyAddr = ln.Addr().String()
	}
	res.Sandbox += ", registry " + px.addr + " only, through sitehost's proxy"
	// npm's proxy settings: ours, for every host (no noproxy).
	proxyURL := "http://" + proxyAddr + "/"
	args := []string{"ci",
		"--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier",
		"--include=dev", "--install-links=false",
		"--userconfig=" + npmrc, "--globalconfig=" + filepath.Join(stage, "globalrc"),
		"--cache=" + npmCache, "--registry=" + in.opts.Registry,
		"--proxy=" + proxyURL, "--https-proxy=" + proxyURL, "--noproxy=",
		"--loglevel=warn", "--color=false", "--progress=false",
	}
	if sb != nil {
		if prog, args, err = sb.Command(prog, args); err != nil {
			return fmt.Errorf("npm: %w", err)
		}
	}
	if err := sandbox.Admit(sb, untrusted, in.opts.Unsandboxed); err != nil {
		return fault.Stalled(fmt.Errorf("npm: untrusted install refused: %w; server.build.allow_unsandboxed: true runs such installs anyway", err))
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + bin, "HOME=" + home, "TMPDIR=" + home, "NODE_ENV=development"}
	if in.opts.ExtraCACerts != "" {
		cmd.Env = append(cmd.Env, "NODE_EXTRA_CA_CERTS="+in.opts.ExtraCACerts)
	}
	var out bytes.Buffer
	cw := &capWriter{b: &out, max: 64 << 10} // one writer: exec serialises its writes
	cmd.Stdout, cmd.Stderr = cw, cw
	cmd.SysProcAttr = procAttr() // procattr_*.go
	if sb != nil {
		sb.SysProcAttr(cmd.SysProcAttr)
		cmd.ExtraFiles = sb.Files()
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("npm: starting %s: %w", in.opts.NPM, err)
	}
	if sb != nil {
		// The sandbox's listener, made in npm's own network namespace
		// where it has one.
		if ln, err = sb.Egress(ctx); err != nil {
			stopFor(err)
			cmd.Wait() //nolint:errcheck // the launcher's failure is in its output
			return fmt.Errorf("npm: %w: %s", err, lastLines(out.String(), 5))
		}
	}
	go px.serve(ln)
	watch, stopWatch := context.WithCancel(ctx)
	go diskuse.Watch(watch, in.opts.MaxBytes, in.opts.MaxFiles, stopFor, stage)
	runErr := cmd.Wait()
	stopWatch()
	px.close()
	var over *diskuse.OverError
	switch cause := context.Cause(ctx); {
	case errors.As(cause, &over):
		return fault.Stalled(overLimit(over))
	case runErr != nil && sb != nil && sb.OOMKilled():
		return fault.Stalled(fmt.Errorf("npm ci went over its memory limit of %d MiB: killed", installMemory>>20))
	case runErr != nil && errors.Is(cause, context.DeadlineExceeded):
		return fault.Transient(fmt.Errorf("npm ci took more than %s: killed", in.opts.Timeout))
	case runErr != nil && cause != nil:
		return fmt.Errorf("npm ci: %w", cause)
	}
	if runErr != nil {
		err := parseError(out.String(), runErr)
		var ne *Error
		if errors.As(err, &ne) {
			// npm may name only a URL: say who refused, and what.
			ne.Message += px.refusedHint()
		}
		return err
	}
	if err := diskuse.Check(in.opts.MaxBytes, in.opts.MaxFiles, stage); errors.As(err, &over) {
		return fault.Stalled(overLimit(over))
	}
	modules := filepath.Join(work, "node_modules")
	if _, err := os.Stat(modules); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(modules, 0o755); err != nil { // a lockfile with no dependencies
			return fmt.Errorf("npm: %w", err)
		}
	}
	// Into place: a fresh entry dir, then the done marker last, so a
	// crash leaves an entry that is installed again.
	if err := os.RemoveAll(entry); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	if err := os.Mkdir(entry, 0o755); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	if err := os.Rename(modules, filepath.Join(entry, "node_modules")); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	if err := os.WriteFile(filepath.Join(entry, doneFile), nil, 0o644); err != nil {
		return fmt.Errorf("npm: %w", err)
	}
	in.opts.Logger.Info("npm ci", "entry", entry, "took", time.Since(start).Round(time.Millisecond), "sandbox", res.Sandbox)
	return nil
}

// npmrcFor is the npmrc npm reads: the registry, and the token scoped to
// it (npm's "nerf dart", //host/path/:_authToken).
func npmrcFor(registry, token string) string {
	s := "registry=" + registry + "\n"
	if token == "" {
		return s
	}
	if u, err := url.Parse(registry); err == nil {
		s += "//" + u.Host + u.Path + ":_authToken=" + token + "\n"
	}
	return s
}

// overLimit is an install killed past the server's limits.
func overLimit(over *diskuse.OverError) error {
	return fmt.Errorf("npm ci: the install %w (the server's limit, server.build.npm_max_bytes): killed", over)
}

// Error is npm ci's failure: its error code, the package it names and its
// own message.
type Error struct {
	Code      string // npm's code, e.g. E404, ETARGET, EINTEGRITY, ECONNREFUSED
	Package   string // the package it was about, when npm says
	Message   string // npm's "npm error" lines
	transient bool
}

func (e *Error) Error() string {
	var what []string
	if e.Code != "" {
		what = append(what, e.Code)
	}
	if e.Package != "" {
		what = append(what, "package "+e.Package)
	}
	s := "npm ci failed"
	if len(what) > 0 {
		s += " (" + strings.Join(what, ", ") + ")"
	}
	return s + ": " + e.Message
}

// FaultKind: a network failure, or an npm that failed without a code, is
// worth a retry; anything else (a missing package or version, a lockfile
// out of step with package.json, an integrity mismatch) fails the same way
// until the site changes.
func (e *Error) FaultKind() fault.Kind {
	if e.transient {
		return fault.KindTransient
	}
	return fault.KindStalled
}

// networkCodes are npm's codes for a registry it could not talk to.
var networkCodes = regexp.MustCompile(`^(E(CONNREFUSED|CONNRESET|TIMEDOUT|NOTFOUND|AI_AGAIN|HOSTUNREACH|NETUNREACH|PIPE|PROTO)|ERR_SOCKET_TIMEOUT|E5\d\d|E429|EFETCH|UND_ERR_.*)$`)

var (
	npmErrorLine = regexp.MustCompile(`^npm (?:error|ERR!) ?(.*)$`)
	errCode      = regexp.MustCompile(`^code (\S+)`)
	notInReg     = regexp.MustCompile(`'([^']+)' is not in this registry`)
	getURL       = regexp.MustCompile(`(?:GET|fetch|request to) (?:\d+ )?https?://[^/\s]+/(?:\S+?/)??((?:@[^/\s]+(?:/|%2[fF]))?[^/@\s]+)(?:/-/\S*)?(?:\s|$)`)
	noVersion    = regexp.MustCompile(`No matching version found for (\S+?)\.?$`)
	// noisy: npm's pointers to its log, bare status codes, and the
	// JavaScript stack and error object it dumps for a network failure.
	noisy = regexp.MustCompile(`^(A complete log of this run can be found in|Log files were not written|You can rerun the command with|If you are behind a proxy|\s*$|\d{3}\s*$|\d{3}\s+(Note that you can also install from a|tarball, folder, http url, or git url)|\s+at |\s+\w+: .*$|[{}]$|(syscall|errno) )`)
)

// parseError makes an *Error of npm's output.
func parseError(out string, runErr error) error {
	e := &Error{}
	var msg []string
	for line := range strings.SplitSeq(out, "\n") {
		m := npmErrorLine.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil {
			continue
		}
		text := m[1]
		if c := errCode.FindStringSubmatch(text); c != nil {
			e.Code = c[1]
			continue
		}
		if noisy.MatchString(text) || strings.HasPrefix(text, "/") {
			continue
		}
		msg = append(msg, strings.TrimSpace(text))
		if e.Package == "" {
			for _, re := range []*regexp.Regexp{notInReg, noVersion, getURL} {
				if p := re.FindStringSubmatch(text); p != nil {
					e.Package, _ = url.PathUnescape(p[1])
					break
				}
			}
		}
	}
	msg = slices.Compact(msg)
	if len(msg) == 0 {
		msg = []string{fmt.Sprintf("%v; it printed: %s", runErr, lastLines(out, 10))}
	}
	e.Message = strings.Join(msg, "\n")
	// No code: npm did not get as far as judging the site (it crashed,
	// or could not start): ours, worth a retry.
	e.transient = e.Code == "" || networkCodes.MatchString(e.Code)
	return e
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// evict keeps the keep most recently used installs of a site.
func (in *Installer) evict(siteDir string) {
	ents, err := os.ReadDir(siteDir)
	if err != nil {
		return
	}
	type used struct {
		dir string
		at  time.Time
	}
	var all []used
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		at := time.Time{} // an unfinished entry goes first
		if fi, err := os.Stat(filepath.Join(siteDir, e.Name(), doneFile)); err == nil {
			at = fi.ModTime()
		}
		all = append(all, used{filepath.Join(siteDir, e.Name()), at})
	}
	slices.SortFunc(all, func(a, b used) int { return b.at.Compare(a.at) })
	for _, u := range all[min(keep, len(all)):] {
		if err := os.RemoveAll(u.dir); err != nil {
			in.opts.Logger.Warn("npm: removing an old install", "dir", u.dir, "err", err)
		}
	}
}

// capWriter keeps the first max bytes.
type capWriter struct {
	b   *bytes.Buffer
	max int
}

func (c *capWriter) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
