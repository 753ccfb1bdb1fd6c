// Package config loads sites.yaml (DESIGN §3): a strict decode that rejects
// unknown keys, the documented defaults applied in one place
// (withDefaults), and a Validate that lists every problem at once, each
// naming the file, line and key so an operator can fix them in one pass.
//
// Secrets never appear in the file: keys ending in _env hold the names of
// environment variables, and Validate rejects anything that looks like a
// value instead.
package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sitehost/sitehost/internal/site"
)

// MaxFileSize bounds what Load reads; a larger sites.yaml is a mistake.
const MaxFileSize = 1 << 20

// Config is a loaded sites.yaml.
type Config struct {
	File   string `yaml:"-"` // path it was loaded from (as given)
	Dir    string `yaml:"-"` // absolute dir of File; relative paths in the config are resolved against it
	Server Server `yaml:"server"`
	Sites  []Site `yaml:"sites"`

	// pos maps a key path ("sites[1].name") to the line it is on; bad holds
	// key paths whose value failed to decode, so Validate does not report
	// them a second time.
	pos map[string]int
	bad map[string]bool
}

// Server holds the process-wide settings.
type Server struct {
	DataDir       string        `yaml:"data_dir"`       // default "./data", absolute against Config.Dir
	HTTP          string        `yaml:"http"`           // default ":8080"
	HTTPS         string        `yaml:"https"`          // default "" (no TLS)
	Admin         string        `yaml:"admin"`          // default "127.0.0.1:9090"
	ControlHost   string        `yaml:"control_host"`   // optional hostname routed to the admin handler
	PreviewDomain string        `yaml:"preview_domain"` // default "localhost"
	PollInterval  time.Duration `yaml:"poll_interval"`  // default 1m; an explicit 0 means webhooks only
	APITokenEnv   string        `yaml:"api_token_env"`  // default "SITEHOST_API_TOKEN"
	Retention     int           `yaml:"retention"`      // deploys kept per site; default 20
	Storage       Storage       `yaml:"storage"`
	Cache         Cache         `yaml:"cache"`
	Limits        Limits        `yaml:"limits"`
	ACME          ACME          `yaml:"acme"`
	Build         ServerBuild   `yaml:"build"`
	Git           Git           `yaml:"git"`
	// Notifications receive every site's events.
	Notifications []Notification `yaml:"notifications"`
	// SelfHeal is how often live deploys are checked against the store
	// (manifest present, a sample of blobs present and intact); default
	// 10m, 0 = off.
	SelfHeal time.Duration `yaml:"self_heal"`
	// LeaseTime is how long a dead builder's per-site leases outlive it
	// (internal/lease). Builders share the sites through leases: role
	// builder always (default DefaultLeaseTime), role all when it is set
	// (several all-in-one replicas on a bucket); 0: role all builds every
	// site alone.
	LeaseTime time.Duration `yaml:"lease_time"`
	// AccessLog writes one log line per request (default true).
	AccessLog *bool `yaml:"access_log"`
	// Role is what this process does (Roles): all (default), edge or
	// builder. serve --role overrides it.
	Role string `yaml:"role"`
	// ShutdownDelay is how long a stopping process keeps serving with
	// /readyz failing, so load balancers take it out before it drains
	// (default 5s).
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
}

// The roles of server.role.
const (
	RoleAll     = "all"     // everything in one process
	RoleEdge    = "edge"    // data plane, TLS, webhooks, API; never builds
	RoleBuilder = "builder" // reconcile, builds, GC, self-heal, API; no data plane
)

// Roles are the values server.role takes.
var Roles = []string{RoleAll, RoleEdge, RoleBuilder}

// DefaultLeaseTime is server.lease_time for role builder.
const DefaultLeaseTime = 15 * time.Second

// Leases is how long this process's site leases last: 0 when it does not
// share sites through leases (an edge; role all without lease_time).
func (s Server) Leases() time.Duration {
	switch {
	case !s.Builds():
		return 0
	case s.LeaseTime > 0:
		return s.LeaseTime
	case s.Role == RoleBuilder:
		return DefaultLeaseTime
	}
	return 0
}

// Serves reports whether the role runs the data plane.
func (s Server) Serves() bool { return s.Role != RoleBuilder }

// Builds reports whether the role runs the reconcile loop and builds.
func (s Server) Builds() bool { return s.Role != RoleEdge }

// AccessLogOn reports whether requests are logged.
func (s Server) AccessLogOn() bool { return s.AccessLog == nil || *s.AccessLog }

// Notification is an outgoing webhook for deploy events.
type Notification struct {
	URL string `yaml:"url"`
	// URLEnv names an environment variable holding the URL, for URLs that
	// are secrets themselves (Slack's incoming webhooks).
	URLEnv    string   `yaml:"url_env"`
	SecretEnv string   `yaml:"secret_env"` // HMAC-SHA256 signing key; optional
	Format    string   `yaml:"format"`     // json (default) or slack
	Events    []string `yaml:"events"`     // default all
}

// NotificationEvents are the events a notification can ask for.
var NotificationEvents = []string{"deploy_started", "deploy_succeeded", "deploy_failed", "preview_ready", "preview_removed", "rolled_back"}

// Credentials authenticate to a site's repository, for fetching private
// repositories and for write-back.
type Credentials struct {
	Username            string `yaml:"username"`               // https; default "git"
	PasswordEnv         string `yaml:"password_env"`           // https password or token
	SSHKeyFile          string `yaml:"ssh_key_file"`           // ssh; absolute against the config's dir
	SSHKeyPassphraseEnv string `yaml:"ssh_key_passphrase_env"` // optional
}

// Storage selects where deploys are published.
type Storage struct {
	Kind string `yaml:"kind"` // "fs" (default) or "s3"
	Path string `yaml:"path"` // fs only; default <data_dir>/store, absolute
	S3   S3     `yaml:"s3"`
}

// S3 configures an S3-compatible object store.
type S3 struct {
	Endpoint     string `yaml:"endpoint"`
	Bucket       string `yaml:"bucket"`
	Region       string `yaml:"region"`
	AccessKeyEnv string `yaml:"access_key_env"`
	SecretKeyEnv string `yaml:"secret_key_env"`
	TLS          bool   `yaml:"tls"`
}

// Cache bounds the data plane's blob cache, which also keeps sites serving
// while object storage is down.
type Cache struct {
	Memory ByteSize `yaml:"memory"` // small hot blobs in memory; default 64MiB, 0 = off
	Disk   ByteSize `yaml:"disk"`   // blobs on local disk under data_dir (s3 only); default 1GiB, 0 = off
}

// Limits bound what clients of the data plane (server.http and
// server.https) may hold: connections, and how long they may take to send
// a request or read an answer. The admin listener has its own.
type Limits struct {
	// ConnsPerIP is the most connections one client address may have
	// open; one more is closed at once. Default 256, 0 = no limit.
	ConnsPerIP int `yaml:"conns_per_ip"`
	// Conns is the most connections open in all; default 10000, 0 = no limit.
	Conns int `yaml:"conns"`
	// ReadHeaderTimeout bounds reading a request's headers; default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes a keep-alive connection waiting this long for
	// its next request; default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// WriteTimeout is the time an answer may take to write, plus
	// size / WriteMinRate for a file body; default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// WriteMinRate is the slowest a client may read a file, per second;
	// default 64KiB.
	WriteMinRate ByteSize `yaml:"write_min_rate"`
}

// ACME configures certificate issuance when Server.HTTPS is set.
type ACME struct {
	Email  string `yaml:"email"`
	CA     string `yaml:"ca"`      // directory URL; empty leaves the choice to the TLS package
	CARoot string `yaml:"ca_root"` // PEM file trusted for the CA, absolute against Config.Dir
}

// ServerBuild limits builds.
type ServerBuild struct {
	Concurrency int           `yaml:"concurrency"` // default 1
	Timeout     time.Duration `yaml:"timeout"`     // default 10m
	Memory      ByteSize      `yaml:"memory"`      // default 1GiB
	// GoProxy is where Hugo Modules are downloaded from, a list like
	// GOPROXY: URLs (https, http, file) separated by "," (next on not
	// found) or "|" (next on any error), or "off" (only a committed
	// _vendor/). Default DefaultGoProxy.
	GoProxy string `yaml:"goproxy"`
	// HugoReleases is where the Hugo releases sites ask for
	// (build.hugo_version, HUGO_VERSION in netlify.toml) are fetched: a base
	// URL with {version}, under which the assets are named as on Hugo's
	// GitHub releases: https, file, or plain http to loopback only (the
	// release runs as the server's user). Default DefaultHugoReleases.
	HugoReleases string `yaml:"hugo_releases"`
	// DartSass is the Dart Sass executable builds may run for transpiler
	// dartsass, absolute against Config.Dir; empty: sass or dart-sass on
	// the server's PATH, if one supports --embedded.
	DartSass string `yaml:"dart_sass"`
	// Node is the node builds run Hugo's Node tools with (css.PostCSS,
	// css.TailwindCSS, js.Babel), v22.15 or later, absolute against
	// Config.Dir; empty: node on the server's PATH. npm runs on it too.
	Node string `yaml:"node"`
	// NPM installs a site's dependencies when its path has package.json
	// and package-lock.json (or npm-shrinkwrap.json), with no install
	// scripts; absolute against Config.Dir; empty: npm on the server's PATH.
	NPM string `yaml:"npm"`
	// NPMRegistry is where packages come from (https, or plain http to a
	// loopback host). Default DefaultNPMRegistry.
	NPMRegistry string `yaml:"npm_registry"`
	// NPMTokenEnv names the environment variable holding a token for
	// NPMRegistry (private packages). It goes to npm only, in an npmrc
	// outside the checkout, never to the build, never for untrusted builds.
	NPMTokenEnv string `yaml:"npm_token_env"`
	// NPMMaxBytes bounds what one install writes. Default DefaultNPMMaxBytes.
	NPMMaxBytes ByteSize `yaml:"npm_max_bytes"`
	// ExecAllow is the ceiling of the programs a build may run, among
	// sass, node, postcss, tailwindcss and babel; a site's own
	// security.exec.allow can narrow it, never widen it. Default
	// DefaultExecAllow; [] allows none.
	ExecAllow []string `yaml:"exec_allow"`
	// AllowUnsandboxed runs untrusted builds (fork previews) even where
	// this system has no build sandbox (not Linux, or no Landlock and no
	// user namespaces); by default they are refused.
	AllowUnsandboxed bool `yaml:"allow_unsandboxed"`
}

// Git holds settings for every git fetch.
type Git struct {
	// Rewrite maps URL prefixes to others before anything is fetched —
	// site repositories, submodules and the config repository — as git's
	// url.<to>.insteadOf = <from> does; the longest matching from wins.
	Rewrite []GitRewrite `yaml:"rewrite"`
}

// GitRewrite is one rule of server.git.rewrite.
type GitRewrite struct {
	From string `yaml:"from"` // a URL prefix, e.g. https://github.com/
	To   string `yaml:"to"`   // what it becomes, e.g. https://mirror.internal/github/
}

// Site is one entry of the sites list.
type Site struct {
	Name     site.Name `yaml:"name"`
	Repo     string    `yaml:"repo"`    // https://, http://, ssh://, user@host:path or file://; local paths become file://<abs>
	Ref      string    `yaml:"ref"`     // default "main"
	Path     string    `yaml:"path"`    // default "."; cleaned, slash-separated, inside the repo
	Domains  []string  `yaml:"domains"` // lowercase, no trailing dot; the first is primary
	Build    SiteBuild `yaml:"build"`
	Previews Previews  `yaml:"previews"`
	Branches []string  `yaml:"branches"`
	Webhook  Webhook   `yaml:"webhook"`
	Forge    Forge     `yaml:"forge"`
	Pin      string    `yaml:"pin"` // "" or a full 40-hex commit SHA, lowercased
	Rules    Rules     `yaml:"rules"`
	Skew     Skew      `yaml:"skew_protection"`
	// Credentials for the repository (private repositories, write-back).
	Credentials   Credentials    `yaml:"credentials"`
	Notifications []Notification `yaml:"notifications"`
	// WriteBack records each production publish in the site's repository:
	// "note" (a git note on the commit, refs/notes/sitehost), "tag" (a tag
	// sitehost/<site>/live) or "" (off, the default).
	WriteBack string `yaml:"write_back"`
	Line      int    `yaml:"-"` // line of this entry in the file, for messages
}

// Rules configures how a site's Netlify rules (_redirects, _headers,
// netlify.toml) are applied.
type Rules struct {
	// Strict: a deploy whose rules have errors fails instead of going live
	// with the good rules.
	Strict bool `yaml:"strict"`
	// Proxy lets rules with status 200 to an absolute URL proxy there. Off
	// by default, so no site is an open relay.
	Proxy bool `yaml:"proxy"`
	// ProxyPrivate also allows proxy targets on loopback, private and
	// link-local addresses (a backend on the same host). Off by default: a
	// preview from a fork must not reach the machine's neighbours.
	ProxyPrivate  bool          `yaml:"proxy_private"`
	ProxyTimeout  time.Duration `yaml:"proxy_timeout"`   // default 26s, Netlify's
	ProxyMaxBytes ByteSize      `yaml:"proxy_max_bytes"` // response body limit; default 64MiB
	// CountryHeader names the request header a trusted front proxy sets to
	// the client's ISO 3166 country (CF-IPCountry, X-Country-Code), for
	// Country= conditions. Empty: Country rules never match.
	CountryHeader string `yaml:"country_header"`
}

// Skew keeps the assets of recent deploys reachable after a new one goes
// live, so pages loaded before it keep working.
type Skew struct {
	Deploys int           `yaml:"deploys"` // previous deploys whose assets still answer; default 3, 0 = off
	Grace   time.Duration `yaml:"grace"`   // for how long after they were replaced; default 1h
}

// SiteBuild says how a site is built.
type SiteBuild struct {
	Tool        string            `yaml:"tool"`         // "hugo" (default) or "none"
	HugoVersion string            `yaml:"hugo_version"` // a Hugo release, e.g. 0.152.2; "": HUGO_VERSION from netlify.toml, else the compiled-in Hugo
	Environment string            `yaml:"environment"`  // default "production"
	Minify      *bool             `yaml:"minify"`       // default true
	Env         map[string]string `yaml:"env"`          // plain, non-secret variables
	SecretEnv   []string          `yaml:"secret_env"`   // names of server env vars passed to trusted builds
	// MaxFile is the largest file a deploy may publish, from git (tool
	// none) or from the build output; a larger one fails the deploy.
	// Default DefaultMaxFile, also when 0.
	MaxFile ByteSize `yaml:"max_file"`
}

// MinifyOn reports whether output is minified (true when unset).
func (b SiteBuild) MinifyOn() bool { return b.Minify == nil || *b.Minify }

// Previews configures pull request previews.
type Previews struct {
	Enabled *bool         `yaml:"enabled"` // default true
	TTL     time.Duration `yaml:"ttl"`     // default 168h; an explicit 0 keeps previews until the PR closes
	Forks   string        `yaml:"forks"`   // "no-secrets" (default), "off" or "on"
}

// On reports whether previews are enabled (true when unset).
func (p Previews) On() bool { return p.Enabled == nil || *p.Enabled }

// Webhook configures inbound webhook verification.
type Webhook struct {
	SecretEnv string `yaml:"secret_env"`
}

// Forge configures status reporting to the repository's host.
type Forge struct {
	Kind     string `yaml:"kind"` // github, gitlab, gitea, forgejo or bitbucket
	API      string `yaml:"api"`  // base API URL; empty = the forge's public default
	TokenEnv string `yaml:"token_env"`
}

// Load reads and parses the config at path. See Parse for the result.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("loading config: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, &Problem{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize), Err: ErrBadValue}
	}
	return Parse(path, data)
}

// Parse decodes data strictly, applies the defaults and validates the
// result. file names the source in messages and anchors relative paths.
//
// The error joins every problem found (see Problems). The config is
// returned alongside it when the document could be walked at all, so a
// caller can still inspect it; it is nil only when the YAML itself cannot
// be parsed. A config returned with an error must not be used to serve.
func Parse(file string, data []byte) (*Config, error) {
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("resolving config directory: %w", err)
	}
	c := &Config{File: file, Dir: dir}
	probs, ok := c.decode(data)
	if !ok {
		return nil, joinSorted(probs)
	}
	c.withDefaults()
	if err := c.Validate(); err != nil {
		probs = append(probs, Problems(err)...)
	}
	if len(probs) > 0 {
		return c, joinSorted(probs)
	}
	return c, nil
}

// Site returns the site called name.
func (c *Config) Site(name site.Name) (*Site, bool) {
	for i := range c.Sites {
		if c.Sites[i].Name == name {
			return &c.Sites[i], true
		}
	}
	return nil, false
}

// PrimaryDomain returns the first domain, which the others redirect to,
// or "" for a site reachable only through preview hosts.
func (s *Site) PrimaryDomain() string {
	if len(s.Domains) == 0 {
		return ""
	}
	return s.Domains[0]
}
