package config

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/hugorelease"
	"github.com/sitehost/sitehost/internal/site"
)

// DefaultExecAllow is server.build.exec_allow's default: every tool
// sitehost can give a build (ExecTools).
var DefaultExecAllow = ExecTools

// ExecTools are the programs server.build.exec_allow may name.
var ExecTools = []string{"sass", "node", "postcss", "tailwindcss", "babel"}

// The documented defaults (DESIGN §3).
const (
	DefaultDataDir       = "./data"
	DefaultHTTP          = ":8080"
	DefaultAdmin         = "127.0.0.1:9090"
	DefaultPreviewDomain = "localhost"
	DefaultPollInterval  = time.Minute
	DefaultAPITokenEnv   = "SITEHOST_API_TOKEN"
	DefaultRetention     = 20
	MaxRetention         = 100 // publish keeps a channel history of 100 deploys
	DefaultStorageKind   = "fs"
	DefaultS3AccessKey   = "S3_ACCESS_KEY"
	DefaultS3SecretKey   = "S3_SECRET_KEY"
	DefaultCacheMemory   = 64 * MiB
	DefaultCacheDisk     = 1 * GiB
	DefaultConcurrency   = 1
	DefaultBuildTimeout  = 10 * time.Minute
	DefaultBuildMemory   = 1 * GiB
	DefaultGoProxy       = "https://proxy.golang.org"
	DefaultHugoReleases  = hugorelease.DefaultReleases
	DefaultNPMRegistry   = "https://registry.npmjs.org/"
	DefaultNPMMaxBytes   = 2 * GiB
	DefaultRef           = "main"
	DefaultTool          = "hugo"
	DefaultEnvironment   = "production"
	DefaultPreviewTTL    = 7 * 24 * time.Hour
	DefaultForks         = "no-secrets"
	DefaultProxyTimeout  = 26 * time.Second // Netlify's proxy timeout
	DefaultProxyMaxBytes = 64 * MiB
	DefaultMaxFile       = 100 * MiB // per file; Cloudflare Pages allows 25 MiB
	DefaultSkewDeploys   = 3
	DefaultSkewGrace     = time.Hour
	MaxSkewDeploys       = 20
	DefaultSelfHeal      = 10 * time.Minute
	DefaultRole          = RoleAll
	DefaultShutdownDelay = 5 * time.Second

	// server.limits: nginx and Caddy cap neither connections per client
	// nor in total by default; 256 per address is well above a browser's
	// 6 per host (or a NAT of a few dozen), 10,000 in all well below the
	// usual file descriptor limit (with the store's and the builds').
	DefaultConnsPerIP        = 256
	DefaultConns             = 10000
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultWriteTimeout      = 10 * time.Second
	DefaultWriteMinRate      = 64 * KiB
)

// has reports whether key was written in the file, so an explicit zero
// (poll_interval: 0) is kept rather than replaced by the default.
func (c *Config) has(key string) bool {
	_, ok := c.pos[key]
	return ok
}

// withDefaults fills every unset setting with its documented default and
// normalises values (absolute paths, lowercase domains, file:// repos).
// It is the only place defaults live. Strings default when empty; numbers
// and durations only when absent, since 0 can be meant.
func (c *Config) withDefaults() {
	s := &c.Server
	setStr(&s.DataDir, DefaultDataDir)
	s.DataDir = c.abs(s.DataDir)
	setStr(&s.HTTP, DefaultHTTP)
	setStr(&s.Admin, DefaultAdmin)
	setStr(&s.PreviewDomain, DefaultPreviewDomain)
	s.PreviewDomain = site.Hostname(s.PreviewDomain)
	s.ControlHost = site.Hostname(s.ControlHost)
	setStr(&s.APITokenEnv, DefaultAPITokenEnv)
	if !c.has("server.poll_interval") {
		s.PollInterval = DefaultPollInterval
	}
	if !c.has("server.retention") {
		s.Retention = DefaultRetention
	}

	setStr(&s.Storage.Kind, DefaultStorageKind)
	if s.Storage.Kind == "fs" {
		setStr(&s.Storage.Path, filepath.Join(s.DataDir, "store"))
	}
	if s.Storage.Path != "" {
		s.Storage.Path = c.abs(s.Storage.Path)
	}
	if s.Storage.Kind == "s3" {
		setStr(&s.Storage.S3.AccessKeyEnv, DefaultS3AccessKey)
		setStr(&s.Storage.S3.SecretKeyEnv, DefaultS3SecretKey)
	}
	if !c.has("server.cache.memory") {
		s.Cache.Memory = DefaultCacheMemory
	}
	if !c.has("server.cache.disk") {
		s.Cache.Disk = DefaultCacheDisk
	}
	if !c.has("server.limits.conns_per_ip") {
		s.Limits.ConnsPerIP = DefaultConnsPerIP
	}
	if !c.has("server.limits.conns") {
		s.Limits.Conns = DefaultConns
	}
	if !c.has("server.limits.read_header_timeout") {
		s.Limits.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if !c.has("server.limits.idle_timeout") {
		s.Limits.IdleTimeout = DefaultIdleTimeout
	}
	if !c.has("server.limits.write_timeout") {
		s.Limits.WriteTimeout = DefaultWriteTimeout
	}
	if !c.has("server.limits.write_min_rate") {
		s.Limits.WriteMinRate = DefaultWriteMinRate
	}
	if s.ACME.CARoot != "" {
		s.ACME.CARoot = c.abs(s.ACME.CARoot)
	}
	if s.Build.DartSass != "" {
		s.Build.DartSass = c.abs(s.Build.DartSass)
	}
	if s.Build.Node != "" {
		s.Build.Node = c.abs(s.Build.Node)
	}
	if s.Build.NPM != "" {
		s.Build.NPM = c.abs(s.Build.NPM)
	}

	if !c.has("server.self_heal") {
		s.SelfHeal = DefaultSelfHeal
	}
	setStr(&s.Role, DefaultRole)
	if !c.has("server.shutdown_delay") {
		s.ShutdownDelay = DefaultShutdownDelay
	}
	for i := range s.Notifications {
		setStr(&s.Notifications[i].Format, "json")
	}

	if !c.has("server.build.concurrency") {
		s.Build.Concurrency = DefaultConcurrency
	}
	if !c.has("server.build.timeout") {
		s.Build.Timeout = DefaultBuildTimeout
	}
	if !c.has("server.build.memory") {
		s.Build.Memory = DefaultBuildMemory
	}
	setStr(&s.Build.GoProxy, DefaultGoProxy)
	setStr(&s.Build.HugoReleases, DefaultHugoReleases)
	setStr(&s.Build.NPMRegistry, DefaultNPMRegistry)
	if !c.has("server.build.npm_max_bytes") {
		s.Build.NPMMaxBytes = DefaultNPMMaxBytes
	}
	if !c.has("server.build.exec_allow") {
		s.Build.ExecAllow = slices.Clone(DefaultExecAllow)
	} else if s.Build.ExecAllow == nil {
		s.Build.ExecAllow = []string{} // exec_allow: [] allows none
	}

	for i := range c.Sites {
		st := &c.Sites[i]
		key := func(k string) string { return fmt.Sprintf("sites[%d].%s", i, k) }
		st.Repo = c.repoURL(st.Repo)
		setStr(&st.Ref, DefaultRef)
		st.Path = path.Clean(st.Path) // "" and "./" become "."; "docs/" becomes "docs"
		for j, d := range st.Domains {
			st.Domains[j] = site.Hostname(d)
		}
		setStr(&st.Build.Tool, DefaultTool)
		setStr(&st.Build.Environment, DefaultEnvironment)
		if st.Build.MaxFile == 0 { // 0 is no use as a limit: it means the default
			st.Build.MaxFile = DefaultMaxFile
		}
		if st.Build.Minify == nil {
			st.Build.Minify = ptr(true)
		}
		if st.Previews.Enabled == nil {
			st.Previews.Enabled = ptr(true)
		}
		if !c.has(key("previews.ttl")) {
			st.Previews.TTL = DefaultPreviewTTL
		}
		setStr(&st.Previews.Forks, DefaultForks)
		st.Pin = strings.ToLower(st.Pin)
		for j := range st.Notifications {
			setStr(&st.Notifications[j].Format, "json")
		}
		if st.Credentials.SSHKeyFile != "" {
			st.Credentials.SSHKeyFile = c.abs(st.Credentials.SSHKeyFile)
		}
		if !c.has(key("rules.proxy_timeout")) {
			st.Rules.ProxyTimeout = DefaultProxyTimeout
		}
		if !c.has(key("rules.proxy_max_bytes")) {
			st.Rules.ProxyMaxBytes = DefaultProxyMaxBytes
		}
		if !c.has(key("skew_protection.deploys")) {
			st.Skew.Deploys = DefaultSkewDeploys
		}
		if !c.has(key("skew_protection.grace")) {
			st.Skew.Grace = DefaultSkewGrace
		}
	}
}

func setStr(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func ptr[T any](v T) *T { return &v }

// abs resolves p against the config's directory.
func (c *Config) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Dir, p)
}

// repoURL turns a local path ("/srv/blog", "./blog", "../blog") into a
// file:// URL against the config's directory; other forms are left for
// Validate to judge.
func (c *Config) repoURL(r string) string {
	if isLocalPath(r) {
		return "file://" + filepath.ToSlash(c.abs(r))
	}
	return r
}

func isLocalPath(r string) bool {
	return r == "." || r == ".." || strings.HasPrefix(r, "/") ||
		strings.HasPrefix(r, "./") || strings.HasPrefix(r, "../")
}
