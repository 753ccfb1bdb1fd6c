package hooks

import (
	"net/url"
	"path"
	"strings"
)

// RepoKey normalises a repository URL so that the https, ssh, git and
// scp-like forms of one repository compare equal: "host/owner/repo",
// lowercased, without scheme, user info, port, ".git" or trailing slash.
//
//	https://GitHub.com/Acme/Blog.git/       → github.com/acme/blog
//	ssh://git@gitea.example:2222/acme/blog  → gitea.example/acme/blog
//	git@github.com:acme/blog.git            → github.com/acme/blog
//
// Ports are dropped because forges serve ssh and https on different ports
// for the same path. file:// URLs give "file" and the cleaned path, case
// and ".git" kept: two directories differ by either. An empty or
// unparsable URL gives "" (which matches nothing).
func RepoKey(raw string) string {
	s := strings.TrimSpace(raw)
	var host, p string
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		u, err := url.Parse(s)
		if err != nil {
			return ""
		}
		if strings.EqualFold(scheme, "file") {
			p := u.Path
			if u.Host != "" && !strings.EqualFold(u.Host, "localhost") {
				p = "/" + u.Host + "/" + p
			}
			return "file" + path.Clean("/"+p)
		}
		host, p = u.Hostname(), u.Path
	} else if before, after, ok := strings.Cut(s, ":"); ok && !strings.Contains(before, "/") {
		// scp-like: [user@]host:path
		host, p = before[strings.LastIndex(before, "@")+1:], after
	} else {
		// host/owner/repo without a scheme
		host, p, _ = strings.Cut(s, "/")
	}
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	p = strings.TrimSuffix(p, ".git")
	if host == "" || p == "" {
		return ""
	}
	return strings.ToLower(host + "/" + p)
}
