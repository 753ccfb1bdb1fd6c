package main

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/certs"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/forge"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/hugorelease"
	"github.com/sitehost/sitehost/internal/notify"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
)

// configRuntime is everything that depends on one config: routes, the control
// loop's site specs, webhook routing, forge clients, notification targets,
// the certificate names. compile builds it whole from a validated config,
// with no side effects; server.apply makes it live in one swap. Nothing in
// it changes after that: a reload makes a new one.
type configRuntime struct {
	cfg     *config.Config
	version configVersion

	routes *serve.Routes // the data plane's: which site and channel a host is
	specs  []reconcile.Spec
	// rewrites are server.git.rewrite: for the sites' repositories and,
	// from the next poll, the config repository's.
	rewrites gitsrc.Rewrites
	infos    map[site.Name]admin.SiteInfo
	primary  map[site.Name]string // production domain per site, for base URLs
	repos    repoSites            // webhook routing
	forges   map[site.Name]forge.Client
	targets  []notify.Target
	// notifier delivers to targets; made by apply, not compile, since it
	// runs goroutines.
	notifier *notify.Notifier
	// certNames are the names whose certificates are obtained up front:
	// every production domain and the control host.
	certNames []string
}

// compileEnv is what compile needs besides the config: the environment the
// secrets come from, where warnings go, and whether HTTPS is on (then
// every domain must be able to have a certificate).
type compileEnv struct {
	getenv func(string) string
	log    *slog.Logger
	https  bool
	// controlHost and previewDomain are server.control_host and
	// server.preview_domain as the server started with them (server
	// settings change on restart only).
	controlHost, previewDomain string
	// url is a channel's public URL, for the admin API's site info (nil:
	// "/").
	url func(primary map[site.Name]string, n site.Name) string
}

// compile builds cfg's runtime, running every check that applying it
// could otherwise fail on: `sitehost validate`, startup and reload all call
// it, so they accept exactly the same files. Problems are config.Problems
// at the key they concern; settings that only warn (a secret that is not
// set) are logged.
func compile(cfg *config.Config, env compileEnv) (*configRuntime, error) {
	if env.log == nil {
		env.log = slog.New(slog.DiscardHandler)
	}
	rt := &configRuntime{
		cfg: cfg, infos: map[site.Name]admin.SiteInfo{}, primary: map[site.Name]string{},
		forges: map[site.Name]forge.Client{},
	}
	var probs []*config.Problem
	problem := func(key string, err error, format string, args ...any) {
		probs = append(probs, cfg.Problem(key, config.ErrUnusable, err, format, args...))
	}
	for _, sc := range cfg.Sites {
		rt.primary[sc.Name] = sc.PrimaryDomain()
	}
	// The binary is run (its version checked) only when the builder is
	// made; here, as for other files, only that it is there.
	if p := cfg.Server.Build.DartSass; p != "" {
		if err := build.CheckExecutable(p); err != nil {
			problem("server.build.dart_sass", err, "cannot run Dart Sass: %v", err)
		}
	}
	forgeHTTP := &http.Client{Timeout: 30 * time.Second}
	var served []serve.Site
	// server.git.rewrite applies to every site repository (and their
	// submodules); credentials are checked against the rewritten URL.
	rewrites := make(gitsrc.Rewrites, 0, len(cfg.Server.Git.Rewrite))
	for _, r := range cfg.Server.Git.Rewrite {
		rewrites = append(rewrites, gitsrc.Rewrite{From: r.From, To: r.To})
	}
	rt.rewrites = rewrites
	for i, sc := range cfg.Sites {
		key := func(k string) string { return fmt.Sprintf("sites[%d].%s", i, k) }
		creds, err := siteCredentials(sc, rewrites.Apply(sc.Repo), env)
		if err != nil {
			k := "credentials"
			if sc.Credentials.SSHKeyFile != "" {
				k += ".ssh_key_file"
			}
			problem(key(k), err, "%v", err)
		}
		secrets := map[string]string{}
		for _, name := range sc.Build.SecretEnv {
			v := env.getenv(name)
			if v == "" {
				env.log.Warn("secret_env is not set in sitehost's environment", "site", sc.Name, "name", name)
			}
			secrets[name] = v
		}
		rt.specs = append(rt.specs, reconcile.Spec{
			Name: sc.Name, Repo: gitsrc.Options{URL: sc.Repo, Credentials: creds, Rewrites: rewrites}, Ref: sc.Ref, Path: sc.Path, Pin: sc.Pin,
			Branches: sc.Branches,
			Previews: reconcile.Previews{Enabled: sc.Previews.On(), TTL: sc.Previews.TTL, Forks: sc.Previews.Forks},
			Build: build.Settings{Tool: sc.Build.Tool, HugoVersion: hugoVersion(sc.Build.HugoVersion), Environment: sc.Build.Environment, Minify: sc.Build.MinifyOn(),
				Env: sc.Build.Env, SecretEnv: secrets},
			StrictRules: sc.Rules.Strict, Proxy: sc.Rules.Proxy, WriteBack: sc.WriteBack, MaxFile: int64(sc.Build.MaxFile),
		})
		url := "/"
		if env.url != nil {
			url = env.url(rt.primary, sc.Name)
		}
		rt.infos[sc.Name] = admin.SiteInfo{Name: sc.Name, Repo: sc.Repo, Ref: sc.Ref, Domains: sc.Domains, URL: url}

		if f := sc.Forge; f.Kind != "" {
			fc := forge.Config{Kind: f.Kind, API: f.API, Repo: sc.Repo}
			if err := forge.Check(fc); err != nil {
				problem(key("forge"), err, "commit statuses cannot be sent for repo %s: %v", gitsrc.MaskCredentials(sc.Repo), err)
			} else if fc.Token = env.getenv(f.TokenEnv); fc.Token == "" {
				env.log.Warn("forge statuses off: the token is not set", "site", sc.Name, "env", f.TokenEnv)
			} else if c, err := forge.New(fc, forgeHTTP); err != nil {
				problem(key("forge"), err, "%v", err)
			} else {
				rt.forges[sc.Name] = c
			}
		}
		for j, n := range sc.Notifications {
			if t, ok, err := notifyTarget(n, []string{string(sc.Name)}, env); err != nil {
				problem(fmt.Sprintf("%s[%d]", key("notifications"), j), err, "%v", err)
			} else if ok {
				rt.targets = append(rt.targets, t)
			}
		}
		served = append(served, serve.Site{
			Name: sc.Name, Domains: sc.Domains,
			Rules: serve.RuleOptions{
				Proxy: sc.Rules.Proxy, ProxyPrivate: sc.Rules.ProxyPrivate, ProxyTimeout: sc.Rules.ProxyTimeout,
				ProxyMaxBytes: int64(sc.Rules.ProxyMaxBytes), CountryHeader: sc.Rules.CountryHeader,
			},
			Skew: serve.SkewOptions{Deploys: sc.Skew.Deploys, Grace: sc.Skew.Grace},
		})
		for j, d := range sc.Domains {
			if env.https {
				if err := certs.CheckNames([]string{d}); err != nil {
					problem(fmt.Sprintf("%s[%d]", key("domains"), j), err, "%v", err)
				}
			}
			rt.certNames = append(rt.certNames, d)
		}
	}
	for j, n := range cfg.Server.Notifications {
		if t, ok, err := notifyTarget(n, nil, env); err != nil {
			problem(fmt.Sprintf("server.notifications[%d]", j), err, "%v", err)
		} else if ok {
			rt.targets = append(rt.targets, t)
		}
	}
	if h := env.controlHost; h != "" {
		rt.certNames = append(rt.certNames, h)
	}
	// The same check at startup, on reload and in validate: a short admin
	// token is refused before anything listens with it.
	if err := bearer.CheckLength(env.getenv(cfg.Server.APITokenEnv)); err != nil {
		problem("server.api_token_env", err, "the admin token in $%s is too short: %d characters, at least %d needed (make one with: openssl rand -hex 16)",
			cfg.Server.APITokenEnv, len(env.getenv(cfg.Server.APITokenEnv)), bearer.MinLength)
	}
	rt.repos = newRepoSites(cfg, env.getenv, env.log)
	var err error
	if rt.routes, err = serve.NewRoutes(served, env.previewDomain); err != nil {
		problem("sites", err, "%v", err)
	}
	if len(probs) > 0 {
		return nil, config.JoinProblems(probs)
	}
	return rt, nil
}

// siteCredentials reads a site's git credentials from the environment and
// checks that they work with its repository URL (an ssh key file that can
// be read and parsed, no password for ssh, no key for https).
func siteCredentials(sc config.Site, url string, env compileEnv) (gitsrc.Credentials, error) {
	cr := sc.Credentials
	creds := gitsrc.Credentials{Username: cr.Username, SSHKeyFile: cr.SSHKeyFile}
	if cr.PasswordEnv != "" {
		if creds.Password = env.getenv(cr.PasswordEnv); creds.Password == "" {
			env.log.Warn("credentials.password_env is not set in sitehost's environment", "site", sc.Name, "name", cr.PasswordEnv)
		}
	}
	if cr.SSHKeyPassphraseEnv != "" {
		creds.SSHKeyPassphrase = env.getenv(cr.SSHKeyPassphraseEnv)
	}
	if _, err := creds.AuthMethod(url); err != nil {
		return creds, err
	}
	return creds, nil
}

// notifyTarget builds one notification target; ok is false when it is
// skipped because its url_env is not set.
func notifyTarget(n config.Notification, sites []string, env compileEnv) (notify.Target, bool, error) {
	url := n.URL
	if n.URLEnv != "" {
		if url = env.getenv(n.URLEnv); url == "" {
			env.log.Warn("notification skipped: its url_env is not set", "env", n.URLEnv)
			return notify.Target{}, false, nil
		}
	}
	t := notify.Target{URL: url, Format: notify.Format(n.Format), Sites: sites}
	if n.SecretEnv != "" {
		if t.Secret = []byte(env.getenv(n.SecretEnv)); len(t.Secret) == 0 {
			env.log.Warn("notification unsigned: its secret_env is not set", "env", n.SecretEnv)
		}
	}
	for _, e := range n.Events {
		t.Events = append(t.Events, notify.Kind(e))
	}
	if err := t.Validate(); err != nil {
		where := "url"
		if n.URLEnv != "" {
			where = "url_env " + n.URLEnv
		}
		return notify.Target{}, false, fmt.Errorf("%s: %w", where, err)
	}
	return t, true, nil
}

// changedSites names the sites whose settings differ between two
// runtimes, or that only one of them has, sorted.
func changedSites(a, b *configRuntime) []site.Name {
	out := []site.Name{} // logged: [] when nothing changed, not null
	as := map[site.Name]config.Site{}
	for _, sc := range a.cfg.Sites {
		as[sc.Name] = sc
	}
	seen := map[site.Name]bool{}
	for _, sc := range b.cfg.Sites {
		seen[sc.Name] = true
		old, ok := as[sc.Name]
		old.Line, sc.Line = 0, 0 // moving a site in the file changes nothing
		if !ok || !reflect.DeepEqual(old, sc) {
			out = append(out, sc.Name)
		}
	}
	for n := range maps.Keys(as) {
		if !seen[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// hugoVersion is build.hugo_version as the build key spells it ("0.152.2");
// validation has checked it.
func hugoVersion(v string) string {
	if v == "" {
		return ""
	}
	n, err := hugorelease.Normalize(v)
	if err != nil {
		return v
	}
	return n
}
