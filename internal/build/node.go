package build

import (
	"context"
	"encoding/json"
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
	"time"
)

// Node in the build child. Hugo runs css.PostCSS, css.TailwindCSS and
// js.Babel as `node <script>` (the script from the site's node_modules/.bin,
// installed by package npm before the build), each after checking both the
// tool's name and "node" against security.exec.allow. The child's bin dir
// gets a "node" that is the server's own, resolved once at startup
// (FindNode).
//
// What the child may run is the server's ceiling (server.build.exec_allow)
// intersected with what the site's own security.exec.allow accepts (the
// site can narrow, never widen) and with what the server has (no Dart Sass,
// no "sass"). HUGO_SECURITY is written with the ceiling, then narrowed
// (NarrowExec) by whoever can read the site's config with Hugo: the
// compiled-in child itself (hugochild), or, for a fetched release, the
// parent from that release's `hugo config` run without HUGO_SECURITY.

// Tool names server.build.exec_allow may hold.
const (
	ToolSass        = "sass"
	ToolNode        = "node"
	ToolPostCSS     = "postcss"
	ToolTailwindCSS = "tailwindcss"
	ToolBabel       = "babel"
)

// ExecTools are the tools sitehost knows how to give a build.
var ExecTools = []string{ToolSass, ToolNode, ToolPostCSS, ToolTailwindCSS, ToolBabel}

// DefaultExecAllow is the ceiling when server.build.exec_allow is unset.
var DefaultExecAllow = ExecTools

// MinNode is the oldest Node that runs Hugo's Node tools: Hugo installs an
// ESM resolver hook with module.registerHooks (Node 22.15).
const MinNode = "22.15.0"

// FindNode returns the node builds run: configured (absolute) or else node
// on pathList (the server's PATH), resolved to its real file; "" when there
// is none or it is older than MinNode (logged: the site's Node tools then
// fail). A configured one that does not run or is too old is an error.
func FindNode(ctx context.Context, configured, pathList string, log *slog.Logger) (string, error) {
	p := configured
	if p == "" {
		for _, dir := range filepath.SplitList(pathList) {
			if dir != "" && filepath.IsAbs(dir) && CheckExecutable(filepath.Join(dir, "node")) == nil {
				p = filepath.Join(dir, "node")
				break
			}
		}
		if p == "" {
			log.Info("no node for builds (css.PostCSS, css.TailwindCSS and js.Babel fail): set server.build.node or put node on PATH")
			return "", nil
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		err = CheckExecutable(real)
	}
	var v string
	if err == nil {
		v, err = nodeVersion(ctx, real)
	}
	if err == nil && !versionAtLeast(v, MinNode) {
		err = fmt.Errorf("node v%s is older than v%s, which Hugo's Node tools need", v, MinNode)
	}
	switch {
	case err != nil && configured != "":
		return "", fmt.Errorf("server.build.node %s: %w", configured, err)
	case err != nil:
		log.Warn("no node for builds (css.PostCSS, css.TailwindCSS and js.Babel fail): set server.build.node", "path", p, "err", err)
		return "", nil
	}
	log.Info("node for builds", "path", real, "version", v)
	return real, nil
}

func nodeVersion(ctx context.Context, p string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, "--version")
	cmd.Env = []string{"PATH=" + os.DevNull}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", p, err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), nil
}

// versionAtLeast compares dotted numeric versions.
func versionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := range b {
		var x, y int
		if i < len(a) {
			x, _ = strconv.Atoi(a[i])
		}
		y, _ = strconv.Atoi(b[i])
		if x != y {
			return x > y
		}
	}
	return true
}

// tools are the tools the ceiling allows and this server has: no "sass"
// without Dart Sass, no Node tool without node.
func (b *Builder) tools() []string {
	ceiling := b.opts.ExecAllow
	if ceiling == nil {
		ceiling = DefaultExecAllow
	}
	var out []string
	for _, t := range ExecTools {
		switch {
		case !slices.Contains(ceiling, t):
		case t == ToolSass && b.opts.DartSass == "":
		case t != ToolSass && b.opts.Node == "":
		default:
			out = append(out, t)
		}
	}
	return out
}

// nodeChild puts the server's node in the child's bin dir when a Node tool
// may run.
func (b *Builder) nodeChild(bin string) error {
	if !slices.Contains(b.tools(), ToolNode) {
		return nil
	}
	if err := os.Symlink(b.opts.Node, filepath.Join(bin, "node")); err != nil {
		return fmt.Errorf("linking node: %w", err)
	}
	return nil
}

// withTools adds tools to security.exec.allow, each as ^name$.
func withTools(allow []string, tools []string) []string {
	if len(tools) > 0 && len(allow) == 1 && allow[0] == "none" {
		allow = nil
	}
	for _, t := range tools {
		allow = append(allow, "^"+regexp.QuoteMeta(t)+"$")
	}
	return allow
}

// nodePermissions is security.node.permissions (Hugo 0.161+): Node's
// permission model on, reading the site only, writing nothing. Tailwind
// CSS v4 does not run without native addons and workers (its Rust core),
// so it gets those, as Hugo's own default does; not child processes (only
// its libc detection wants one, and falls back without).
func nodePermissions(tools []string) map[string]any {
	addons := []string{}
	if slices.Contains(tools, ToolTailwindCSS) {
		addons = []string{ToolTailwindCSS}
	}
	return map[string]any{
		"disable": false, "allowRead": []string{"."}, "allowWrite": []string{},
		"allowAddons": addons, "allowWorker": addons, "allowChildProcess": []string{},
	}
}

// NarrowExec returns the HUGO_SECURITY policy sec with exec.allow cut to
// the tools the site's own security.exec.allow accepts. Our git shim
// stays: it is how sitehost gives Hugo commit history, not a site's tool.
func NarrowExec(sec string, siteAccepts func(name string) bool) (string, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(sec), &m); err != nil {
		return "", fmt.Errorf("reading HUGO_SECURITY: %w", err)
	}
	ex, _ := m["exec"].(map[string]any)
	var kept []string
	for _, p := range list(ex["allow"]) {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "^"), "$")
		if name == "git" || (name != "none" && siteAccepts(name)) {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		kept = []string{"none"}
	}
	if ex != nil {
		ex["allow"] = kept
	}
	out, err := json.Marshal(m)
	return string(out), err
}

// ExecHint is the advice to add to a build error in which Hugo refused to
// run a tool ("" otherwise): whether the server's ceiling, the server's
// missing node or Dart Sass, or the site's own security.exec.allow stood
// in the way.
func (b *Builder) ExecHint(msg string) string {
	m := deniedExec.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	tool := m[1]
	ceiling := b.opts.ExecAllow
	if ceiling == nil {
		ceiling = DefaultExecAllow
	}
	switch {
	case tool == "npx":
		// Older releases (v0.123.4 here) run every Node tool as `npx <tool>`.
		return fmt.Sprintf("this Hugo runs Node tools through npx, which sitehost does not give builds: pin a Hugo that runs node_modules/.bin itself (v0.143.0 and later do, as does the compiled-in v%s)", HugoVersion)
	case !slices.Contains(ExecTools, tool):
		return fmt.Sprintf("sitehost builds cannot run %q (the tools it can give a build: %s)", tool, strings.Join(ExecTools, ", "))
	case !slices.Contains(ceiling, tool):
		return fmt.Sprintf("the site needs %q, which this server does not allow: server.build.exec_allow is [%s]", tool, strings.Join(ceiling, ", "))
	case tool == ToolSass && b.opts.DartSass == "":
		return "this server has no Dart Sass (server.build.dart_sass)"
	case tool != ToolSass && b.opts.Node == "":
		return fmt.Sprintf("this server has no node v%s or later (server.build.node)", MinNode)
	}
	return fmt.Sprintf("the site's own security.exec.allow does not accept %q: add \"^%s$\" to it (server.build.exec_allow allows it)", tool, tool)
}

// deniedExec is Hugo's refusal of a program by security.exec.allow.
var deniedExec = regexp.MustCompile(`access denied: "([^"]+)" is not whitelisted in policy "security\.exec\.allow"`)

// siteExecAllow reads security.exec.allow from `hugo config --format json`
// output, and matches names as Hugo's whitelist does: "none" or nothing
// accepts nothing; "! re" denies; only denials accept everything else.
func siteExecAllow(conf []byte) (func(string) bool, error) {
	var got struct {
		Security map[string]any `json:"security"`
	}
	if err := json.Unmarshal(conf, &got); err != nil {
		return nil, fmt.Errorf("reading hugo config: %w", err)
	}
	var allow, deny []*regexp.Regexp
	for _, p := range list(field(got.Security, "exec", "allow")) {
		p = strings.TrimSpace(p)
		if p == "none" {
			return func(string) bool { return false }, nil
		}
		neg := strings.HasPrefix(p, "! ")
		re, err := regexp.Compile(strings.TrimPrefix(p, "! "))
		if err != nil {
			return nil, fmt.Errorf("security.exec.allow %q: %w", p, err)
		}
		if neg {
			deny = append(deny, re)
		} else {
			allow = append(allow, re)
		}
	}
	return func(name string) bool {
		for _, re := range deny {
			if re.MatchString(name) {
				return false
			}
		}
		if len(allow) == 0 {
			return len(deny) > 0
		}
		for _, re := range allow {
			if re.MatchString(name) {
				return true
			}
		}
		return false
	}, nil
}

// narrowRelease narrows env's HUGO_SECURITY for release r to what the
// site's own config allows, read by that release without our policy.
func (b *Builder) narrowRelease(ctx context.Context, req Request, r Release, env []string, logw io.Writer) ([]string, []Problem, error) {
	own := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "HUGO_SECURITY=") })
	conf, _, problems, runErr := b.hugoConfig(ctx, req, r, own, logw, "config", "--format", "json")
	if runErr != nil || len(problems) > 0 {
		return nil, problems, runErr
	}
	accepts, err := siteExecAllow(conf)
	if err != nil {
		return nil, []Problem{{File: "hugo config", Message: err.Error()}}, nil
	}
	out := slices.Clone(env)
	for i, kv := range out {
		if sec, ok := strings.CutPrefix(kv, "HUGO_SECURITY="); ok {
			n, err := NarrowExec(sec, accepts)
			if err != nil {
				return nil, nil, err
			}
			out[i] = "HUGO_SECURITY=" + n
		}
	}
	return out, nil, nil
}
