package main

import (
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/npm"
	"github.com/sitehost/sitehost/internal/sandbox"
)

// nodeTools resolves, once at startup, the node builds run Hugo's Node
// tools with ("" when none is new enough), and the npm that installs
// sites' dependencies with the node it runs on ("" when there is none).
func nodeTools(ctx context.Context, sb config.ServerBuild, getenv func(string) string, log *slog.Logger) (node, npmNode, npmExe string, err error) {
	path := getenv("PATH")
	if node, err = build.FindNode(ctx, sb.Node, path, log); err != nil {
		return "", "", "", err
	}
	// npm itself runs on an older node too: the server's PATH's, when
	// none is new enough for Hugo's tools.
	npmNode = node
	if npmNode == "" {
		for _, dir := range filepath.SplitList(path) {
			if !filepath.IsAbs(dir) {
				continue
			}
			if p, err := exec.LookPath(filepath.Join(dir, "node")); err == nil {
				npmNode = p
				break
			}
		}
	}
	if npmNode != "" {
		if npmExe, err = npm.Find(ctx, sb.NPM, npmNode, path); err != nil {
			return "", "", "", err
		}
	}
	return node, npmNode, npmExe, nil
}

// newInstaller installs sites' dependencies with npmExe (cached in
// cacheDir), in the sandbox builds run in. The registry token is read from
// the environment here and goes to npm only.
func newInstaller(sb config.ServerBuild, npmNode, npmExe, cacheDir string, support *sandbox.Support, getenv func(string) string, log *slog.Logger) *npm.Installer {
	if npmExe == "" {
		log.Info("no npm for builds: sites with a package-lock.json fail (set server.build.npm or put npm and node on PATH)")
		support = nil
	} else {
		log.Info("npm for builds", "path", npmExe, "registry", sb.NPMRegistry, "sandbox", support.String())
	}
	token := ""
	if sb.NPMTokenEnv != "" {
		token = getenv(sb.NPMTokenEnv)
	}
	return npm.New(npm.Options{
		NPM: npmExe, Node: npmNode, Registry: sb.NPMRegistry, Token: token,
		CacheDir: cacheDir, MaxBytes: int64(sb.NPMMaxBytes), Timeout: sb.Timeout,
		Sandbox: support, Unsandboxed: sb.AllowUnsandboxed, Logger: log,
		// A registry or TLS proxy with a company CA: as the operator set
		// it for node. A path, not a secret.
		ExtraCACerts: getenv("NODE_EXTRA_CA_CERTS"),
	})
}
