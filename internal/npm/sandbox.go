package npm

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sitehost/sitehost/internal/sandbox"
)

// installMemory is the hard memory limit of one install: npm ci of a
// large lockfile stays well under it.
const installMemory = 2 << 30

// newSandbox is one install's sandbox (package sandbox): npm reads and
// runs node's install and its own, reads the system and what TLS needs,
// writes only stage, npmCache and /dev/null, and its one way out is the
// sandbox's egress listener, which the install's proxy serves: a network
// namespace of its own with only that (or, without one, TCP to that port
// only). It resolves no names: the proxy does. Close removes its cgroups.
func (in *Installer) newSandbox(stage, npmCache string) (*sandbox.Sandbox, error) {
	paths := sandbox.Paths{
		ReadOnly:  sandbox.SystemRead(),
		ReadExec:  sandbox.SystemExec(),
		ReadWrite: []string{stage, npmCache, "/dev/null"},
		Egress:    true,
	}
	if in.opts.ExtraCACerts != "" {
		paths.ReadOnly = append(paths.ReadOnly, sandbox.WithTarget(in.opts.ExtraCACerts)...)
	}
	// Node's whole install (bin/node and what it loads beside it), and
	// npm's: usually the same one (lib/node_modules/npm).
	for _, p := range sandbox.WithTarget(in.opts.Node) {
		paths.ReadExec = append(paths.ReadExec, filepath.Dir(filepath.Dir(p)))
	}
	paths.ReadExec = append(paths.ReadExec, in.opts.NPM)
	if script, err := filepath.EvalSymlinks(in.opts.NPM); err == nil {
		paths.ReadExec = append(paths.ReadExec, npmDir(script))
	}
	id := "npm-" + strings.TrimPrefix(filepath.Base(stage), ".install-")
	sb, err := in.opts.Sandbox.New(id, paths, sandbox.Limits{Memory: installMemory, CPU: in.opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("npm: making the install sandbox: %w", err)
	}
	return sb, nil
}

// registryPort is the TCP port of the registry URL: its own, or the
// scheme's.
func registryPort(registry string) (uint16, error) {
	u, err := url.Parse(registry)
	if err != nil {
		return 0, fmt.Errorf("npm: registry %q: %w", registry, err)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("npm: registry %q: bad port %q", registry, p)
		}
		return uint16(n), nil
	}
	switch u.Scheme {
	case "https":
		return 443, nil
	case "http":
		return 80, nil
	}
	return 0, fmt.Errorf("npm: registry %q: not an http or https URL", registry)
}

// npmDir is the dir of the npm install that script (npm's own bin/npm or
// bin/npm-cli.js, symlinks resolved) belongs to: npm's scripts require
// their modules from beside bin.
func npmDir(script string) string {
	dir := filepath.Dir(script)
	if filepath.Base(dir) == "bin" {
		return filepath.Dir(dir)
	}
	return dir
}
