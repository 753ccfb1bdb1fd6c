package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/hugorelease"
	"github.com/sitehost/sitehost/internal/site"
)

var (
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	envCharsRE = regexp.MustCompile(`^[A-Za-z0-9_]*$`)
	labelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	pinRE      = regexp.MustCompile(`^[0-9a-f]{40}$`)
	// headerNameRE is RFC 9110's token.
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// scpRE matches git's scp-like syntax, user@host:path.
	scpRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:.+$`)
)

var forgeKinds = []string{"github", "gitlab", "gitea", "forgejo", "bitbucket"}

// checker collects problems for Validate.
type checker struct {
	c     *Config
	probs []*Problem
}

// Validate checks the whole config (with defaults applied) and returns
// errors.Join of every problem, ordered by line, or nil.
func (c *Config) Validate() error {
	v := &checker{c: c}
	v.server()
	v.sites()
	return joinSorted(v.probs)
}

func (v *checker) add(key string, sentinel error, format string, args ...any) {
	v.addCause(key, sentinel, nil, format, args...)
}

func (v *checker) addCause(key string, sentinel, cause error, format string, args ...any) {
	if v.c.bad[key] {
		return // already reported as undecodable
	}
	v.probs = append(v.probs, &Problem{
		File: v.c.File, Line: v.line(key), Key: key,
		Msg: fmt.Sprintf(format, args...), Err: sentinel, cause: cause,
	})
}

// line finds the line of key, or of its nearest enclosing key that was
// written (a missing repo is reported at its site's line).
func (v *checker) line(key string) int {
	for k := key; k != ""; {
		if l, ok := v.c.pos[k]; ok {
			return l
		}
		var i int
		if _, err := fmt.Sscanf(k, "sites[%d]", &i); err == nil && k == fmt.Sprintf("sites[%d]", i) && i < len(v.c.Sites) {
			return v.c.Sites[i].Line // a Config built in code has no pos
		}
		cut := max(strings.LastIndex(k, "."), strings.LastIndex(k, "["))
		if cut <= 0 {
			break
		}
		k = k[:cut]
	}
	return 0
}

func (v *checker) server() {
	s := &v.c.Server
	v.listener("server.http", s.HTTP, false)
	v.listener("server.https", s.HTTPS, true)
	v.listener("server.admin", s.Admin, false)
	if s.ControlHost != "" {
		v.hostname("server.control_host", s.ControlHost)
	}
	if s.PreviewDomain == "" {
		v.add("server.preview_domain", ErrMissing, "required")
	} else {
		v.hostname("server.preview_domain", s.PreviewDomain)
	}
	if s.DataDir == "" {
		v.add("server.data_dir", ErrMissing, "required")
	}
	if s.PollInterval < 0 {
		v.add("server.poll_interval", ErrBadValue, "must not be negative (0 means webhooks only)")
	}
	v.envName("server.api_token_env", s.APITokenEnv, true)
	if s.Retention < 1 {
		v.add("server.retention", ErrBadValue, "must be at least 1, got %d", s.Retention)
	} else if s.Retention > MaxRetention {
		v.add("server.retention", ErrBadValue, "at most %d deploys are remembered per channel, got %d", MaxRetention, s.Retention)
	}

	st := &s.Storage
	switch st.Kind {
	case "fs":
		if st.Path == "" {
			v.add("server.storage.path", ErrMissing, "required for storage kind fs")
		}
	case "s3":
		if st.S3.Endpoint == "" {
			v.add("server.storage.s3.endpoint", ErrMissing, "required for storage kind s3")
		} else if strings.Contains(st.S3.Endpoint, "://") {
			v.add("server.storage.s3.endpoint", ErrBadValue, "give host or host:port without a scheme, and set tls: true for https")
		}
		if st.S3.Bucket == "" {
			v.add("server.storage.s3.bucket", ErrMissing, "required for storage kind s3")
		}
		v.envName("server.storage.s3.access_key_env", st.S3.AccessKeyEnv, true)
		v.envName("server.storage.s3.secret_key_env", st.S3.SecretKeyEnv, true)
	default:
		v.add("server.storage.kind", ErrBadValue, "want fs or s3, got %q", st.Kind)
	}

	v.limits(s.Limits)

	if s.ACME.CA != "" {
		v.httpURL("server.acme.ca", s.ACME.CA)
	}
	if e := s.ACME.Email; e != "" && (!strings.Contains(e, "@") || strings.ContainsAny(e, " \t<>")) {
		v.add("server.acme.email", ErrBadValue, "want an email address, got %q", e)
	}

	if s.LeaseTime < 0 || s.LeaseTime > 0 && s.LeaseTime < 3*time.Second {
		v.add("server.lease_time", ErrBadValue, "must be 0 (no leases) or at least 3s")
	}
	if s.SelfHeal < 0 {
		v.add("server.self_heal", ErrBadValue, "must not be negative (0 turns it off)")
	}
	if !slices.Contains(Roles, s.Role) {
		v.add("server.role", ErrBadValue, "want all, edge or builder, got %q", s.Role)
	}
	if s.ShutdownDelay < 0 {
		v.add("server.shutdown_delay", ErrBadValue, "must not be negative (0 drains at once)")
	}
	for i, n := range s.Notifications {
		v.notification(fmt.Sprintf("server.notifications[%d]", i), n)
	}

	from := map[string]int{}
	for i, r := range s.Git.Rewrite {
		k := fmt.Sprintf("server.git.rewrite[%d]", i)
		switch {
		case r.From == "":
			v.add(k+".from", ErrMissing, "required: the URL prefix to rewrite, such as https://github.com/")
		case from[r.From] > 0:
			v.add(k+".from", ErrBadValue, "%q is rewritten twice (first at server.git.rewrite[%d])", r.From, from[r.From]-1)
		default:
			from[r.From] = i + 1
		}
		if r.To == "" {
			v.add(k+".to", ErrMissing, "required: what the prefix becomes, such as https://mirror.example/github/")
		} else if msg := repoProblem(r.To); msg != "" {
			v.add(k+".to", ErrBadValue, "%s", msg)
		}
	}

	b := &s.Build
	if b.Concurrency < 1 {
		v.add("server.build.concurrency", ErrBadValue, "must be at least 1, got %d", b.Concurrency)
	}
	if b.Timeout <= 0 {
		v.add("server.build.timeout", ErrBadValue, "must be greater than 0, got %s", b.Timeout)
	}
	if b.Memory <= 0 {
		v.add("server.build.memory", ErrBadValue, "must be greater than 0")
	}
	if msg := goProxyProblem(b.GoProxy); msg != "" {
		v.add("server.build.goproxy", ErrBadValue, "%s", msg)
	}
	if msg := releasesProblem(b.HugoReleases); msg != "" {
		v.add("server.build.hugo_releases", ErrBadValue, "%s", msg)
	}
	if msg := npmRegistryProblem(b.NPMRegistry); msg != "" {
		v.add("server.build.npm_registry", ErrBadValue, "%s", msg)
	}
	v.envName("server.build.npm_token_env", b.NPMTokenEnv, false)
	if b.NPMMaxBytes <= 0 {
		v.add("server.build.npm_max_bytes", ErrBadValue, "must be greater than 0")
	}
	for i, t := range b.ExecAllow {
		if !slices.Contains(ExecTools, t) {
			v.add(fmt.Sprintf("server.build.exec_allow[%d]", i), ErrBadValue, "unknown tool %q: want one of %s", t, strings.Join(ExecTools, ", "))
		}
	}
}

// npmRegistryProblem checks server.build.npm_registry; "" if it is fine.
// Plain http only to this machine: package metadata is not signed, only
// the tarballs a lockfile pins are checked.
func npmRegistryProblem(reg string) string {
	u, err := url.Parse(reg)
	switch {
	case err != nil:
		return fmt.Sprintf("bad URL %q: %v", reg, err)
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Sprintf("bad URL %q: want an https URL such as %s", reg, DefaultNPMRegistry)
	case u.User != nil:
		return fmt.Sprintf("bad URL %q: no credentials in the URL; name the token's variable in server.build.npm_token_env", u.Redacted())
	case u.Scheme == "http":
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Sprintf("plain http to %s: use https (plain http only to a loopback host)", u.Hostname())
		}
	}
	return ""
}

// releasesProblem checks server.build.hugo_releases; "" if it is fine.
// hugorelease.New checks the same, so what validates also opens.
func releasesProblem(base string) string {
	if err := hugorelease.CheckURL(base); err != nil {
		return err.Error()
	}
	return ""
}

// goProxyProblem checks a GOPROXY-style list; "" if it is fine.
func goProxyProblem(list string) string {
	for _, e := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '|' }) {
		e = strings.TrimSpace(e)
		switch e {
		case "off", "noproxy":
			continue
		case "direct":
			return `"direct" is not supported: Hugo Modules are fetched through a module proxy only`
		}
		u, err := url.Parse(e)
		switch {
		case err != nil:
			return fmt.Sprintf("bad proxy URL %q: %v", e, err)
		case u.Scheme == "file" && u.Path != "":
		case (u.Scheme == "https" || u.Scheme == "http") && u.Host != "":
		default:
			return fmt.Sprintf("bad proxy %q: want an https, http or file URL, or off", e)
		}
	}
	return ""
}

func (v *checker) sites() {
	type where struct {
		site    site.Name
		idx     int
		line    int
		control bool // server.control_host, not a site
	}
	names := map[site.Name]int{}  // name -> line of the first site
	domains := map[string]where{} // domain -> first owner
	if h := v.c.Server.ControlHost; h != "" {
		domains[h] = where{line: v.line("server.control_host"), control: true}
	}
	for i := range v.c.Sites {
		s := &v.c.Sites[i]
		key := func(k string) string { return fmt.Sprintf("sites[%d].%s", i, k) }

		switch err := s.Name.Valid(); {
		case s.Name == "":
			v.add(key("name"), ErrMissing, "required")
		case err != nil:
			v.addCause(key("name"), ErrBadName, err, "%s", strings.TrimPrefix(err.Error(), "site: "))
		default:
			if first, dup := names[s.Name]; dup {
				v.add(key("name"), ErrDuplicateSite, "duplicate site %q (first defined at line %d)", s.Name, first)
			} else {
				names[s.Name] = v.line(fmt.Sprintf("sites[%d]", i))
			}
		}

		if s.Repo == "" {
			v.add(key("repo"), ErrMissing, "required")
		} else if msg := repoProblem(s.Repo); msg != "" {
			v.add(key("repo"), ErrBadValue, "%s", msg)
		}

		switch {
		case s.Ref == "":
			v.add(key("ref"), ErrMissing, "required")
		case strings.ContainsFunc(s.Ref, func(r rune) bool { return r <= ' ' || r == 0x7f }),
			strings.Contains(s.Ref, ".."), strings.HasPrefix(s.Ref, "-"):
			v.add(key("ref"), ErrBadValue, "bad ref %q: no spaces, control characters, \"..\" or leading \"-\"", s.Ref)
		}

		if p := s.Path; path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
			v.add(key("path"), ErrBadValue, "path %q escapes the repository; give a directory inside it, such as docs", p)
		}

		for j, d := range s.Domains {
			dk := fmt.Sprintf("%s[%d]", key("domains"), j)
			if !v.hostname(dk, d) {
				continue
			}
			if pd := v.c.Server.PreviewDomain; pd != "" && strings.HasSuffix(d, "."+pd) &&
				strings.Contains(strings.TrimSuffix(d, "."+pd), "--") {
				v.add(dk, ErrBadValue, "%q is reserved: <label>--<site>.%s names previews and branch deploys", d, pd)
				continue
			}
			switch first, dup := domains[d]; {
			case !dup:
				domains[d] = where{site: s.Name, idx: i, line: v.line(dk)}
			case first.control:
				v.add(dk, ErrDuplicateDomain, "duplicate domain %q: it is server.control_host (line %d)", d, first.line)
			case first.idx == i:
				v.add(dk, ErrDuplicateDomain, "duplicate domain %q: listed twice in this site (first at line %d)", d, first.line)
			default:
				v.add(dk, ErrDuplicateDomain, "duplicate domain %q: already used by site %q at line %d", d, first.site, first.line)
			}
		}

		switch s.Build.Tool {
		case "hugo", "none":
		default:
			v.add(key("build.tool"), ErrBadValue, "want hugo or none, got %q", s.Build.Tool)
		}
		if s.Build.Environment == "" {
			v.add(key("build.environment"), ErrMissing, "required")
		}
		if s.Build.HugoVersion != "" {
			if _, err := hugorelease.Check(s.Build.HugoVersion); err != nil {
				v.add(key("build.hugo_version"), ErrBadValue, "%v", err)
			}
		}
		for name := range s.Build.Env {
			if !envNameRE.MatchString(name) {
				v.add(mapKey(key("build.env"), name), ErrBadValue, "%q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", name)
			}
		}
		for j, name := range s.Build.SecretEnv {
			v.envName(fmt.Sprintf("%s[%d]", key("build.secret_env"), j), name, true)
		}

		if s.Previews.TTL < 0 {
			v.add(key("previews.ttl"), ErrBadValue, "must not be negative")
		}
		switch s.Previews.Forks {
		case "no-secrets", "off", "on":
		default:
			v.add(key("previews.forks"), ErrBadValue, "want no-secrets, off or on, got %q", s.Previews.Forks)
		}

		slugs := map[string]int{}
		for j, b := range s.Branches {
			bk := fmt.Sprintf("%s[%d]", key("branches"), j)
			slug := site.Slug(b)
			switch first, dup := slugs[slug]; {
			case strings.TrimSpace(b) == "":
				v.add(bk, ErrMissing, "empty branch name")
			case slug == "":
				v.add(bk, ErrBadValue, "branch %q has no letters or digits to name its host with", b)
			case dup:
				v.add(bk, ErrBadValue, "branch %q has the same host label %q as %q (line %d)", b, slug, s.Branches[first], v.line(fmt.Sprintf("%s[%d]", key("branches"), first)))
			default:
				slugs[slug] = j
			}
		}

		v.envName(key("webhook.secret_env"), s.Webhook.SecretEnv, false)

		if f := s.Forge; f != (Forge{}) {
			switch {
			case f.Kind == "":
				v.add(key("forge.kind"), ErrMissing, "required when forge is set (one of %s)", strings.Join(forgeKinds, ", "))
			case !contains(forgeKinds, f.Kind):
				v.add(key("forge.kind"), ErrBadValue, "want one of %s, got %q", strings.Join(forgeKinds, ", "), f.Kind)
			}
			if f.API != "" {
				v.httpURL(key("forge.api"), f.API)
			}
			if f.TokenEnv == "" {
				v.add(key("forge.token_env"), ErrMissing, "required when forge is set: the name of the env var holding the API token")
			} else {
				v.envName(key("forge.token_env"), f.TokenEnv, true)
			}
		}

		if s.Rules.ProxyTimeout <= 0 {
			v.add(key("rules.proxy_timeout"), ErrBadValue, "must be positive")
		}
		if s.Rules.ProxyMaxBytes <= 0 {
			v.add(key("rules.proxy_max_bytes"), ErrBadValue, "must be positive")
		}
		if h := s.Rules.CountryHeader; h != "" && !headerNameRE.MatchString(h) {
			v.add(key("rules.country_header"), ErrBadValue, "%q is not an HTTP header name", h)
		}
		if n := s.Skew.Deploys; n < 0 || n > MaxSkewDeploys {
			v.add(key("skew_protection.deploys"), ErrBadValue, "want 0 (off) to %d, got %d", MaxSkewDeploys, n)
		}
		if s.Skew.Grace < 0 {
			v.add(key("skew_protection.grace"), ErrBadValue, "must not be negative")
		}

		for j, n := range s.Notifications {
			v.notification(fmt.Sprintf("%s[%d]", key("notifications"), j), n)
		}
		switch s.WriteBack {
		case "", "off", "note", "tag":
		default:
			v.add(key("write_back"), ErrBadValue, "want note, tag or off, got %q", s.WriteBack)
		}
		cr := s.Credentials
		v.envName(key("credentials.password_env"), cr.PasswordEnv, false)
		v.envName(key("credentials.ssh_key_passphrase_env"), cr.SSHKeyPassphraseEnv, false)
		if cr.PasswordEnv != "" && cr.SSHKeyFile != "" {
			v.add(key("credentials"), ErrBadValue, "give password_env (https) or ssh_key_file (ssh), not both")
		}

		if s.Pin != "" && !pinRE.MatchString(s.Pin) {
			v.add(key("pin"), ErrBadValue, "want a full commit SHA (40 hex digits: production is locked to exactly this commit), got %q", s.Pin)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// notification checks one outgoing webhook.
// limits checks server.limits: counts and durations are never negative
// (0 turns a connection limit off), and a write deadline needs both parts.
func (v *checker) limits(l Limits) {
	if l.ConnsPerIP < 0 {
		v.add("server.limits.conns_per_ip", ErrBadValue, "must not be negative (0 means no limit)")
	}
	if l.Conns < 0 {
		v.add("server.limits.conns", ErrBadValue, "must not be negative (0 means no limit)")
	}
	if l.Conns > 0 && l.ConnsPerIP > l.Conns {
		v.add("server.limits.conns_per_ip", ErrBadValue, "%d is more than server.limits.conns (%d)", l.ConnsPerIP, l.Conns)
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"read_header_timeout", l.ReadHeaderTimeout}, {"idle_timeout", l.IdleTimeout}, {"write_timeout", l.WriteTimeout}} {
		if t.d <= 0 {
			v.add("server.limits."+t.key, ErrBadValue, "must be positive, got %s", t.d)
		}
	}
	if l.WriteMinRate <= 0 {
		v.add("server.limits.write_min_rate", ErrBadValue, "must be positive (bytes per second, such as 64KiB)")
	}
}

func (v *checker) notification(key string, n Notification) {
	switch {
	case n.URL == "" && n.URLEnv == "":
		v.add(key+".url", ErrMissing, "required (or url_env, when the URL is a secret)")
	case n.URL != "" && n.URLEnv != "":
		v.add(key+".url", ErrBadValue, "give url or url_env, not both")
	case n.URL != "":
		v.httpURL(key+".url", n.URL)
	default:
		v.envName(key+".url_env", n.URLEnv, true)
	}
	v.envName(key+".secret_env", n.SecretEnv, false)
	if n.Format != "json" && n.Format != "slack" {
		v.add(key+".format", ErrBadValue, "want json or slack, got %q", n.Format)
	}
	for i, e := range n.Events {
		if !contains(NotificationEvents, e) {
			v.add(fmt.Sprintf("%s.events[%d]", key, i), ErrBadValue, "want one of %s, got %q", strings.Join(NotificationEvents, ", "), e)
		}
	}
}

// envName checks a *_env setting. Its value is never echoed: if it is not
// a name, it is most likely a secret pasted in by mistake.
func (v *checker) envName(key, name string, required bool) {
	switch {
	case name == "":
		if required {
			v.add(key, ErrMissing, "required: the name of an environment variable")
		}
	case !envCharsRE.MatchString(name):
		v.add(key, ErrBadValue, "holds a value, not an environment variable name; put the secret in the server's environment and name the variable here")
	case !envNameRE.MatchString(name):
		v.add(key, ErrBadValue, "not an environment variable name: it must not start with a digit")
	}
}

func (v *checker) listener(key, addr string, optional bool) {
	if addr == "" {
		if !optional {
			v.add(key, ErrMissing, "required: a listen address such as \":8080\"")
		}
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil && port != "" {
		if n, perr := strconv.Atoi(port); perr != nil || n >= 0 && n <= 65535 {
			return // a number in range, or a service name such as "https"
		}
	}
	v.add(key, ErrBadValue, "want host:port such as \":8080\" or \"127.0.0.1:9090\", got %q", addr)
}

// hostname checks a DNS name (one or more labels, "localhost" included).
func (v *checker) hostname(key, h string) bool {
	if validHostname(h) {
		return true
	}
	v.add(key, ErrBadValue, "%q is not a valid hostname", h)
	return false
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return true
}

func (v *checker) httpURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add(key, ErrBadValue, "want an http(s) URL, got %q", raw)
		return
	}
	if _, hasPass := u.User.Password(); hasPass {
		v.add(key, ErrBadValue, "URL holds a password; secrets are never inline, name an environment variable instead")
	}
}

// repoProblem explains why r is not a repository location we can fetch,
// or returns "".
func repoProblem(r string) string {
	const want = "want https://, http://, ssh://, user@host:path, file:// or a local path starting with / or ./"
	scheme, _, hasScheme := strings.Cut(r, "://")
	if !hasScheme {
		if scpRE.MatchString(r) {
			return ""
		}
		return fmt.Sprintf("unrecognised repository %q: %s", r, want)
	}
	u, err := url.Parse(r)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, which may hold a token
		}
		return fmt.Sprintf("bad repository URL: %v", err)
	}
	if _, hasPass := u.User.Password(); hasPass {
		return "repository URL holds a password; secrets are never inline (use an ssh key or a credential helper)"
	}
	switch strings.ToLower(scheme) {
	case "https", "http", "ssh":
		if u.Host == "" {
			return fmt.Sprintf("repository URL %q has no host", r)
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Sprintf("file URL %q names a host; want file:///absolute/path", r)
		}
		if !path.IsAbs(u.Path) {
			return fmt.Sprintf("file URL %q needs an absolute path", r)
		}
	default:
		return fmt.Sprintf("unsupported scheme %q: %s", scheme, want)
	}
	return ""
}
