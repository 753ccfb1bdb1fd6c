package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/site"
)

func TestExampleConfigValidates(t *testing.T) {
	c, err := Load("../../sites.yaml")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if len(c.Sites) != 2 {
		t.Fatalf("got %d sites, want 2", len(c.Sites))
	}
	blog, ok := c.Site("blog")
	if !ok || blog.PrimaryDomain() != "blog.example.com" {
		t.Errorf("blog primary domain = %q, %v", blog.PrimaryDomain(), ok)
	}
	docs, ok := c.Site("docs")
	if !ok || docs.Path != "docs" || docs.Build.Tool != "none" {
		t.Errorf("docs = %+v, %v; want path docs, tool none", docs, ok)
	}
	if _, ok := c.Site("nope"); ok {
		t.Error(`Site("nope") found a site`)
	}
}

// want is one problem a bad file must produce: its sentinel and the start
// of its text, "<file>:<line>: <key>: ".
type want struct {
	is error
	at string
}

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want []want // every problem, in order
		// notContain guards against echoing secrets.
		notContain string
	}{
		{file: "unknown-key.yaml", want: []want{
			{ErrUnknownKey, "unknown-key.yaml:6: sites[0].bogus: unknown key"},
		}},
		{file: "duplicate-site.yaml", want: []want{
			{ErrDuplicateSite, `duplicate-site.yaml:4: sites[1].name: duplicate site "blog" (first defined at line 2)`},
		}},
		{file: "duplicate-domain.yaml", want: []want{
			{ErrDuplicateDomain, `duplicate-domain.yaml:9: sites[1].domains[1]: duplicate domain "example.com": already used by site "blog" at line 4`},
		}},
		{file: "bad-name.yaml", want: []want{
			{ErrBadName, `bad-name.yaml:2: sites[0].name: bad name "Blog_1"`},
		}},
		{file: "missing-repo.yaml", want: []want{
			{ErrMissing, "missing-repo.yaml:4: sites[0].repo: required"},
		}},
		{file: "bad-duration.yaml", want: []want{
			{ErrBadValue, `bad-duration.yaml:3: server.poll_interval: bad duration "5 minutes": `},
		}},
		{file: "lease-time.yaml", want: []want{
			{ErrBadValue, "lease-time.yaml:2: server.lease_time: must be 0 (no leases) or at least 3s"},
		}},
		{file: "bad-storage-kind.yaml", want: []want{
			{ErrBadValue, `bad-storage-kind.yaml:3: server.storage.kind: want fs or s3, got "gcs"`},
		}},
		{file: "inline-secret.yaml", notContain: "Zm9vYmFy", want: []want{
			{ErrBadValue, "inline-secret.yaml:7: sites[0].build.secret_env[1]: holds a value, not an environment variable name"},
		}},
		{file: "path-escape.yaml", want: []want{
			{ErrBadValue, `path-escape.yaml:4: sites[0].path: path "../other" escapes the repository`},
		}},
		{file: "syntax.yaml", want: []want{
			{ErrBadValue, "syntax.yaml:3: yaml: "},
		}},
		{file: "rules.yaml", want: []want{
			{ErrBadValue, "rules.yaml:6: sites[0].rules.proxy_timeout: must be positive"},
			{ErrBadValue, "rules.yaml:7: sites[0].rules.proxy_max_bytes: must be positive"},
			{ErrBadValue, `rules.yaml:8: sites[0].rules.country_header: "CF IPCountry" is not an HTTP header name`},
			{ErrBadValue, "rules.yaml:9: sites[0].skew_protection.deploys: want 0 (off) to 20, got 21"},
			{ErrBadValue, "rules.yaml:9: sites[0].skew_protection.grace: must not be negative"},
		}},
		{file: "limits.yaml", want: []want{
			{ErrBadValue, "limits.yaml:3: server.limits.conns_per_ip: 300 is more than server.limits.conns (200)"},
			{ErrBadValue, "limits.yaml:5: server.limits.read_header_timeout: must be positive, got 0s"},
			{ErrBadValue, "limits.yaml:6: server.limits.idle_timeout: must be positive, got -1s"},
			{ErrBadValue, "limits.yaml:7: server.limits.write_min_rate: must be positive"},
			{ErrUnknownKey, "limits.yaml:8: server.limits.max_ranges: unknown key"},
		}},
		{file: "gitops.yaml", notContain: "ghp_secret", want: []want{
			{ErrBadValue, "gitops.yaml:2: server.self_heal: must not be negative"},
			{ErrBadValue, `gitops.yaml:4: server.notifications[0].url: want an http(s) URL, got "ftp:`}, // a prefix: the test joins it as a path
			{ErrBadValue, `gitops.yaml:5: server.notifications[0].format: want json or slack, got "xml"`},
			{ErrBadValue, "gitops.yaml:6: server.notifications[1].url: give url or url_env, not both"},
			{ErrBadValue, `gitops.yaml:11: sites[0].write_back: want note, tag or off, got "commit"`},
			{ErrBadValue, "gitops.yaml:12: sites[0].credentials.password_env: holds a value, not an environment variable name"},
			{ErrBadValue, "gitops.yaml:12: sites[0].credentials: give password_env (https) or ssh_key_file (ssh), not both"},
			{ErrBadValue, `gitops.yaml:16: sites[0].notifications[0].events[1]: want one of deploy_started`},
		}},
		{file: "multi.yaml", notContain: "s3cr3t", want: []want{
			{ErrUnknownKey, "multi.yaml:2: server.htp: unknown key"},
			{ErrBadValue, `multi.yaml:3: server.retention: want an integer, got "lots"`},
			{ErrMissing, "multi.yaml:6: server.storage.s3.bucket: required"},
			{ErrMissing, "multi.yaml:7: server.storage.s3.endpoint: required"},
			{ErrBadValue, `multi.yaml:9: server.build.timeout: bad duration "10 minutes"`},
			{ErrBadValue, `multi.yaml:13: sites[0].domains[1]: "bad_host.example.com" is not a valid hostname`},
			{ErrMissing, "multi.yaml:14: sites[0].forge.token_env: required"},
			{ErrBadValue, `multi.yaml:15: sites[0].pin: want a full commit SHA`},
			{ErrDuplicateSite, `multi.yaml:16: sites[1].name: duplicate site "blog" (first defined at line 11)`},
			{ErrBadValue, `multi.yaml:17: sites[1].repo: unsupported scheme "ftp"`},
			{ErrBadValue, `multi.yaml:19: sites[1].previews.forks: want no-secrets, off or on, got "maybe"`},
			{ErrBadValue, `multi.yaml:20: sites[1].previews.enabled: want true or false, got "yes"`},
			{ErrMissing, "multi.yaml:21: sites[2].repo: required"},
			{ErrDuplicateDomain, `multi.yaml:22: sites[2].domains[0]: duplicate domain "blog.example.com": already used by site "blog" at line 13`},
			{ErrBadValue, `multi.yaml:22: sites[2].domains[1]: "pr-7--blog.localhost" is reserved`},
			{ErrBadValue, "multi.yaml:23: sites[2].webhook.secret_env: holds a value, not an environment variable name"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want problems")
			}
			probs := Problems(err)
			if len(probs) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(probs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if i >= len(probs) {
					t.Errorf("missing problem %q", w.at)
					continue
				}
				p := probs[i]
				if !errors.Is(p, w.is) {
					t.Errorf("problem %d %q: does not wrap %v", i, p, w.is)
				}
				if !strings.HasPrefix(p.Error(), filepath.Join("testdata", "bad", w.at)) {
					t.Errorf("problem %d:\n got %q\nwant prefix %q", i, p, w.at)
				}
				if !errors.Is(err, w.is) {
					t.Errorf("joined error does not wrap %v", w.is)
				}
			}
			if tt.notContain != "" && strings.Contains(err.Error(), tt.notContain) {
				t.Errorf("error echoes the secret %q:\n%v", tt.notContain, err)
			}
		})
	}
}

func TestBadNameWrapsSiteError(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "bad", "bad-name.yaml"))
	if !errors.Is(err, site.ErrBadName) {
		t.Errorf("error %v does not wrap site.ErrBadName", err)
	}
}

func TestSyntaxErrorReturnsNoConfig(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "bad", "syntax.yaml"))
	if c != nil || err == nil {
		t.Errorf("Load = %v, %v; want nil config and an error", c, err)
	}
}

func TestTypeErrorStillReturnsConfig(t *testing.T) {
	c, err := Parse("sites.yaml", []byte("server: {retention: lots}\nsites: [{name: a, repo: file:///x}]\n"))
	if err == nil || c == nil || len(c.Sites) != 1 {
		t.Fatalf("Parse = %v, %v; want config and error", c, err)
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sites.yaml")
	c, err := Parse(file, []byte("sites: [{name: a, repo: file:///x}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("File", c.File, file)
	check("Dir", c.Dir, dir)
	check("server.data_dir", s.DataDir, filepath.Join(dir, "data"))
	check("server.http", s.HTTP, ":8080")
	check("server.https", s.HTTPS, "")
	check("server.admin", s.Admin, "127.0.0.1:9090")
	check("server.control_host", s.ControlHost, "")
	check("server.preview_domain", s.PreviewDomain, "localhost")
	check("server.poll_interval", s.PollInterval, time.Minute)
	check("server.api_token_env", s.APITokenEnv, "SITEHOST_API_TOKEN")
	check("server.retention", s.Retention, 20)
	check("server.storage.kind", s.Storage.Kind, "fs")
	check("server.storage.path", s.Storage.Path, filepath.Join(dir, "data", "store"))
	check("server.storage.s3", s.Storage.S3, S3{})
	check("server.acme", s.ACME, ACME{})
	check("server.cache", s.Cache, Cache{Memory: 64 << 20, Disk: 1 << 30})
	check("server.limits", s.Limits, Limits{ConnsPerIP: 256, Conns: 10000, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, WriteTimeout: 10 * time.Second, WriteMinRate: 64 << 10})
	check("server.build.concurrency", s.Build.Concurrency, 1)
	check("server.build.timeout", s.Build.Timeout, 10*time.Minute)
	check("server.build.memory", s.Build.Memory, ByteSize(1<<30))
	check("server.build.goproxy", s.Build.GoProxy, "https://proxy.golang.org")
	check("server.build.npm_registry", s.Build.NPMRegistry, "https://registry.npmjs.org/")
	check("server.build.npm_max_bytes", s.Build.NPMMaxBytes, ByteSize(2<<30))
	check("server.build.exec_allow", strings.Join(s.Build.ExecAllow, ","), "sass,node,postcss,tailwindcss,babel")
	check("server.role", s.Role, "all")
	check("server.shutdown_delay", s.ShutdownDelay, 5*time.Second)

	a := c.Sites[0]
	check("name", a.Name, site.Name("a"))
	check("repo", a.Repo, "file:///x")
	check("ref", a.Ref, "main")
	check("path", a.Path, ".")
	check("domains", len(a.Domains), 0)
	check("primary domain", a.PrimaryDomain(), "")
	check("build.tool", a.Build.Tool, "hugo")
	check("build.environment", a.Build.Environment, "production")
	check("build.minify", a.Build.Minify != nil && *a.Build.Minify, true)
	check("build.env", len(a.Build.Env), 0)
	check("build.secret_env", len(a.Build.SecretEnv), 0)
	check("build.max_file", a.Build.MaxFile, ByteSize(100<<20))
	check("previews.enabled", a.Previews.Enabled != nil && *a.Previews.Enabled, true)
	check("previews.ttl", a.Previews.TTL, 168*time.Hour)
	check("previews.forks", a.Previews.Forks, "no-secrets")
	check("branches", len(a.Branches), 0)
	check("webhook", a.Webhook, Webhook{})
	check("forge", a.Forge, Forge{})
	check("pin", a.Pin, "")
	check("rules", a.Rules, Rules{ProxyTimeout: 26 * time.Second, ProxyMaxBytes: 64 << 20})
	check("skew_protection", a.Skew, Skew{Deploys: 3, Grace: time.Hour})
	check("line", a.Line, 1)
}

func TestExplicitZeroPollInterval(t *testing.T) {
	for _, v := range []string{"0", "0s", `"0"`} {
		c, err := Parse("sites.yaml", []byte("server:\n  poll_interval: "+v+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if c.Server.PollInterval != 0 {
			t.Errorf("poll_interval: %s gave %v, want 0", v, c.Server.PollInterval)
		}
	}
}

func TestRoleAndShutdownDelay(t *testing.T) {
	tests := []struct {
		yaml           string
		role           string
		delay          time.Duration
		serves, builds bool
		problem        string // the start of the one problem; "" none
	}{
		{yaml: "role: edge", role: "edge", delay: 5 * time.Second, serves: true},
		{yaml: "role: builder", role: "builder", delay: 5 * time.Second, builds: true},
		{yaml: "role: all\n  shutdown_delay: 0", role: "all", serves: true, builds: true},
		{yaml: "shutdown_delay: 30s", role: "all", delay: 30 * time.Second, serves: true, builds: true},
		{yaml: "role: worker", problem: `sites.yaml:2: server.role: want all, edge or builder, got "worker"`},
		{yaml: "shutdown_delay: -1s", problem: "sites.yaml:2: server.shutdown_delay: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			c, err := Parse("sites.yaml", []byte("server:\n  "+tt.yaml+"\n"))
			if tt.problem != "" {
				probs := Problems(err)
				if len(probs) != 1 || !errors.Is(err, ErrBadValue) || !strings.HasPrefix(probs[0].Error(), tt.problem) {
					t.Fatalf("problems %v, want one starting %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := c.Server
			if s.Role != tt.role || s.ShutdownDelay != tt.delay || s.Serves() != tt.serves || s.Builds() != tt.builds {
				t.Errorf("role %q delay %v serves %v builds %v, want %q %v %v %v",
					s.Role, s.ShutdownDelay, s.Serves(), s.Builds(), tt.role, tt.delay, tt.serves, tt.builds)
			}
		})
	}
}

func TestMaxFile(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    ByteSize
		wantErr string
	}{
		{in: "1GiB", want: 1 << 30},
		{in: "250MB", want: 250e6},
		{in: "0", want: 100 << 20}, // no limit at all is not on offer
		{in: "-1MiB", wantErr: "sites.yaml:1: sites[0].build.max_file: bad size"},
		{in: "lots", wantErr: "sites.yaml:1: sites[0].build.max_file: bad size"},
	} {
		c, err := Parse("sites.yaml", []byte("sites: [{name: a, repo: file:///x, build: {max_file: "+tt.in+"}}]\n"))
		switch {
		case tt.wantErr != "":
			if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("max_file: %s: error %v, want ErrBadValue %q", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("max_file: %s: %v", tt.in, err)
		case c.Sites[0].Build.MaxFile != tt.want:
			t.Errorf("max_file: %s = %d, want %d", tt.in, c.Sites[0].Build.MaxFile, tt.want)
		}
	}
}

func TestNormalisation(t *testing.T) {
	dir := t.TempDir()
	src := `
server:
  data_dir: /srv/sitehost
  preview_domain: Preview.Example.com.
sites:
  - name: local
    repo: ./repos/local
    path: ./site/
    domains: [WWW.Example.com.]
    pin: ABCDEF0123456789ABCDEF0123456789ABCDEF01
  - name: scp
    repo: git@github.com:acme/site.git
`
	c, err := Parse(filepath.Join(dir, "sites.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Server.Storage.Path, "/srv/sitehost/store"; got != want {
		t.Errorf("storage path = %q, want %q", got, want)
	}
	if got := c.Server.PreviewDomain; got != "preview.example.com" {
		t.Errorf("preview_domain = %q", got)
	}
	l := c.Sites[0]
	if want := "file://" + filepath.ToSlash(filepath.Join(dir, "repos", "local")); l.Repo != want {
		t.Errorf("repo = %q, want %q", l.Repo, want)
	}
	if l.Path != "site" || l.Domains[0] != "www.example.com" || l.Pin != "abcdef0123456789abcdef0123456789abcdef01" || l.Line != 6 {
		t.Errorf("site = %+v", l)
	}
}

func TestLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); !errors.Is(err, ErrBadValue) {
		t.Errorf("Load of an oversized file = %v, want ErrBadValue", err)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"1048576": 1 << 20, "512MiB": 512 << 20, "1GiB": 1 << 30, "2G": 2 << 30,
		"1gb": 1e9, "1.5 KiB": 1536, "100KB": 100e3,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1 PB", "GiB", "1e3"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) succeeded", in)
		}
	}
	if got := (1 * GiB).String(); got != "1GiB" {
		t.Errorf("String = %q", got)
	}
}

func TestS3Storage(t *testing.T) {
	c, err := Parse("sites.yaml", []byte("server:\n  storage: {kind: s3, s3: {endpoint: \"127.0.0.1:9000\", bucket: sites}}\n  cache: {memory: 0, disk: 2GiB}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := S3{Endpoint: "127.0.0.1:9000", Bucket: "sites", AccessKeyEnv: "S3_ACCESS_KEY", SecretKeyEnv: "S3_SECRET_KEY"}
	if c.Server.Storage.S3 != want || c.Server.Storage.Path != "" {
		t.Errorf("storage = %+v, want s3 %+v and no path", c.Server.Storage, want)
	}
	if got := (Cache{Memory: 0, Disk: 2 << 30}); c.Server.Cache != got {
		t.Errorf("cache = %+v, want %+v (an explicit 0 turns the memory tier off)", c.Server.Cache, got)
	}
	_, err = Parse("sites.yaml", []byte("server:\n  retention: 500\n"))
	if want := "sites.yaml:2: server.retention: at most 100 deploys"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("retention 500: err = %v, want %q", err, want)
	}
}

// TestEmptyFileRefused: an empty file (or one of comments only, or a
// null document) is refused, not read as "no sites": a file caught while
// an editor rewrites it must not stop every site. "sites: []" says it.
func TestEmptyFileRefused(t *testing.T) {
	for _, doc := range []string{"", "\n\n", "# nothing yet\n", "~\n", "---\n"} {
		if _, err := Parse("sites.yaml", []byte(doc)); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "sites: []") {
			t.Errorf("Parse(%q) = %v, want ErrMissing saying how to serve no sites", doc, err)
		}
	}
	c, err := Parse("sites.yaml", []byte("sites: []\n"))
	if err != nil || len(c.Sites) != 0 {
		t.Errorf(`Parse("sites: []") = %v, %v; want no sites, no error`, c, err)
	}
}

// TestGitRewrite: server.git.rewrite decodes strictly and is validated as
// a whole: each rule needs from and a usable to, and no prefix twice.
func TestGitRewrite(t *testing.T) {
	c, err := Parse("sites.yaml", []byte("server:\n  git:\n    rewrite:\n      - {from: \"https://github.com/\", to: \"https://mirror.internal/github/\"}\nsites: []\n"))
	if err != nil || len(c.Server.Git.Rewrite) != 1 || c.Server.Git.Rewrite[0].To != "https://mirror.internal/github/" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	_, err = Parse("sites.yaml", []byte(`server:
  git:
    rewrite:
      - {from: "https://github.com/", to: "https://mirror.internal/github/"}
      - {from: "https://github.com/", to: "https://other.internal/"}
      - {to: "https://x.internal/"}
      - {from: "git@github.com:", to: "mirror"}
      - {from: "https://gitlab.com/", too: "https://x/"}
sites: []
`))
	for _, want := range []string{
		"server.git.rewrite[1].from", "rewritten twice",
		"server.git.rewrite[2].from", "server.git.rewrite[3].to", "unrecognised repository",
		"too",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in the problems, got %v", want, err)
		}
	}
}

func TestGoProxy(t *testing.T) {
	tests := []struct{ value, want string }{
		{"https://proxy.golang.org", ""},
		{"https://a.internal/go,https://proxy.golang.org|file:///srv/goproxy", ""},
		{"off", ""},
		{"direct", `server.build.goproxy: "direct" is not supported`},
		{"https://proxy.golang.org,direct", `"direct" is not supported`},
		{"proxy.golang.org", `bad proxy "proxy.golang.org"`},
		{"ftp://x/", `bad proxy "ftp://x/"`},
	}
	for _, tt := range tests {
		c, err := Parse("sites.yaml", []byte("server:\n  build:\n    goproxy: \""+tt.value+"\"\nsites: []\n"))
		if tt.want == "" {
			if err != nil || c.Server.Build.GoProxy != tt.value {
				t.Errorf("%q: %v, %+v", tt.value, err, c)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.value, err, tt.want)
		}
	}
}

func TestNPMAndExecAllow(t *testing.T) {
	tests := []struct{ build, want, allow string }{
		{"", "", "sass,node,postcss,tailwindcss,babel"},
		{"exec_allow: []", "", ""},
		{"exec_allow: [node, postcss]\n    npm_registry: http://127.0.0.1:4873/\n    npm_token_env: NPM_TOKEN", "", "node,postcss"},
		{"exec_allow: [node, bash]", `server.build.exec_allow[1]: unknown tool "bash"`, ""},
		{"npm_registry: http://npm.example/", "plain http to npm.example", ""},
		{"npm_registry: https://u:p@npm.example/", "no credentials in the URL", ""},
		{"npm_token_env: npm_abc-123/x", "server.build.npm_token_env: holds a value", ""},
	}
	for _, tt := range tests {
		c, err := Parse("sites.yaml", []byte("server:\n  build:\n    "+tt.build+"\nsites: []\n"))
		if tt.want == "" {
			if err != nil || strings.Join(c.Server.Build.ExecAllow, ",") != tt.allow {
				t.Errorf("%q: %v, %+v", tt.build, err, c)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.build, err, tt.want)
		}
	}
}

func TestHugoReleasesAndVersion(t *testing.T) {
	tests := []struct{ server, build, want string }{
		{"", "", ""},
		{`hugo_releases: "https://mirror.internal/hugo/v{version}/"`, `hugo_version: "0.152.2"`, ""},
		{`hugo_releases: "file:///srv/hugo/v{version}"`, `hugo_version: v0.115.4`, ""},
		{`hugo_releases: "https://mirror.internal/hugo/"`, "", `sites.yaml:3: server.build.hugo_releases: "https://mirror.internal/hugo/" has no {version}`},
		{`hugo_releases: "mirror/{version}"`, "", `server.build.hugo_releases: bad URL "mirror/{version}"`},
		// Plain http only to this machine: the checksums file comes from
		// the same server, and the binary runs as sitehost's user.
		{`hugo_releases: "http://mirror.internal/hugo/v{version}/"`, "", `sites.yaml:3: server.build.hugo_releases: "http://mirror.internal/hugo/v{version}/": plain http to mirror.internal: a checksums file from the same server proves integrity, not authenticity`},
		{`hugo_releases: "http://10.0.0.7:8080/v{version}/"`, "", `plain http to 10.0.0.7`},
		{`hugo_releases: "http://127.0.0.1:8080/v{version}/"`, "", ""},
		{`hugo_releases: "http://127.8.9.1/v{version}/"`, "", ""},
		{`hugo_releases: "http://localhost:8080/v{version}/"`, "", ""},
		{`hugo_releases: "http://[::1]:8080/v{version}/"`, "", ""},
		{`hugo_releases: "ftp://mirror.internal/v{version}/"`, "", `want an https, http or file URL`},
		{`hugo_releases: "file://localhost/srv/hugo/v{version}/"`, "", ""},
		{`hugo_releases: "file://fileserver/srv/hugo/v{version}/"`, "", `sites.yaml:3: server.build.hugo_releases: bad URL "file://fileserver/srv/hugo/v{version}/": a file URL's host must be empty or localhost`},
		{"", `hugo_version: latest`, `sites.yaml:8: sites[0].build.hugo_version: hugo version "latest": want a release number like 0.152.2`},
		{"", `hugo_version: "0.111.3"`, "older than v0.115.4, the oldest sitehost runs"},
	}
	for _, tt := range tests {
		doc := "server:\n  build:\n    " + tt.server + "\nsites:\n  - name: a\n    repo: https://example.com/a.git\n    build:\n      " + tt.build + "\n"
		c, err := Parse("sites.yaml", []byte(doc))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%q/%q: %v", tt.server, tt.build, err)
			} else if tt.server == "" && c.Server.Build.HugoReleases != DefaultHugoReleases {
				t.Errorf("default hugo_releases = %q", c.Server.Build.HugoReleases)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q/%q: err = %v, want %q", tt.server, tt.build, err, tt.want)
		}
	}
}

// TestSyntaxErrorLine: a YAML syntax error names the line that is wrong,
// not the line where the block around it starts (which is what yaml.v3
// reports: the raw line is in the comments).
func TestSyntaxErrorLine(t *testing.T) {
	tests := []struct {
		file string
		want string // the whole message
	}{
		// A key indented less than the list item it belongs to (raw: 5).
		{"list-key.yaml", "list-key.yaml:9: yaml: did not find expected '-' indicator"},
		// A key between a nested list and its parent's keys (raw: 3).
		{"nested-list-key.yaml", "nested-list-key.yaml:9: yaml: did not find expected key"},
		// A key indented more than its siblings (raw: 6, already right).
		{"indentation.yaml", "indentation.yaml:6: yaml: mapping values are not allowed in this context"},
		// A tab in the indentation (raw: 4).
		{"tab.yaml", "tab.yaml:5: yaml: found a tab character that violates indentation"},
		// The quote that is never closed (raw: 4, already right).
		{"unclosed-quote.yaml", "unclosed-quote.yaml:4: yaml: found unexpected end of stream"},
		// The bracket that is never closed (raw: 5).
		{"unclosed-flow.yaml", "unclosed-flow.yaml:6: yaml: did not find expected ',' or ']'"},
		// In the second document (raw: 7).
		{"second-document.yaml", "second-document.yaml:10: yaml: did not find expected '-' indicator"},
		// After a quoted string over two lines, whose cut fails otherwise (raw: 3).
		{"late-in-long-list.yaml", "late-in-long-list.yaml:19: yaml: did not find expected '-' indicator"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "syntax", tt.file)
			_, err := Load(path)
			probs := Problems(err)
			if len(probs) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(probs), err)
			}
			if got, want := probs[0].Error(), filepath.Join("testdata", "syntax", tt.want); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if !errors.Is(err, ErrBadValue) {
				t.Errorf("%v is not ErrBadValue", err)
			}
		})
	}
}

// TestSyntaxErrorLineLongFile: the line is found in a file of two thousand
// lines whose error sits far from the start of its block.
func TestSyntaxErrorLineLongFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("server:\n  http: \":8080\"\nsites:\n")
	const n = 1000
	for i := range n {
		fmt.Fprintf(&b, "  - name: site%d\n    repo: https://github.com/acme/site%d\n", i, i)
		if i == n-10 {
			b.WriteString("   ref: main\n")
		}
	}
	want := 3 + 2*(n-9) + 1 // the header, the sites up to the bad one, then it
	_, err := Parse("sites.yaml", []byte(b.String()))
	probs := Problems(err)
	if len(probs) != 1 || probs[0].Line != want {
		t.Fatalf("got %v, want one problem at line %d", err, want)
	}
}

func TestLeases(t *testing.T) {
	for _, tt := range []struct {
		role string
		set  time.Duration
		want time.Duration
	}{
		{RoleAll, 0, 0}, // alone on its bucket
		{RoleAll, 20 * time.Second, 20 * time.Second}, // several all-in-one replicas
		{RoleBuilder, 0, DefaultLeaseTime},
		{RoleBuilder, 5 * time.Second, 5 * time.Second},
		{RoleEdge, 20 * time.Second, 0}, // never builds
	} {
		if got := (Server{Role: tt.role, LeaseTime: tt.set}).Leases(); got != tt.want {
			t.Errorf("role %s, lease_time %s: Leases() = %s, want %s", tt.role, tt.set, got, tt.want)
		}
	}
}
