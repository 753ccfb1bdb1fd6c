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
//	/projects/PROJ/repos/blog               → bitbucket:proj/blog
//
// Ports are dropped because forges serve ssh and https on different ports
// for the same path. file:// URLs give "file" and the cleaned path, case
// and ".git" kept: two directories differ by either. The host-less path of
// a Bitbucket Data Center repository, which is how a payload without clone
// links names it, gives the key that RepoKeys adds for that repository's
// URLs. An empty or unparsable URL gives "" (which matches nothing).
func RepoKey(raw string) string {
	s := strings.TrimSpace(raw)
	if strings.HasPrefix(s, "/") {
		return bitbucketKey(strings.Split(strings.Trim(path.Clean(s), "/"), "/"), false)
	}
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

// RepoKeys are the keys under which a site's repository URL is found:
// RepoKey(raw) and, when raw has the shape of a Bitbucket Data Center
// repository URL, also the key of its project and slug, so that a payload
// that names the repository only by those (no clone links) finds it:
//
//	https://bb.example/scm/PROJ/blog.git               → bitbucket:proj/blog
//	https://bb.example/projects/PROJ/repos/blog/browse → bitbucket:proj/blog
//	https://bb.example/users/jo/repos/blog             → bitbucket:~jo/blog
//	ssh://git@bb.example:7999/proj/blog.git            → bitbucket:proj/blog
//
// Project keys are case-insensitive in Bitbucket, hence the lowercasing.
// The host is lost, so two servers with the same project and slug share
// the key: the site's webhook secret tells them apart.
func RepoKeys(raw string) []string {
	k := RepoKey(raw)
	if k == "" {
		return nil
	}
	keys := []string{k}
	s := strings.TrimSpace(raw)
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return keys
	}
	u, err := url.Parse(s)
	if err != nil {
		return keys
	}
	segs := strings.Split(strings.Trim(path.Clean("/"+u.Path), "/"), "/")
	switch strings.ToLower(scheme) {
	case "http", "https":
		if bk := bitbucketKey(segs, true); bk != "" {
			keys = append(keys, bk)
		}
	case "ssh":
		// Data Center's ssh URLs are /proj/slug.git (default port 7999).
		if len(segs) == 2 && segs[0] != "" {
			keys = append(keys, bitbucketProject(segs[0], strings.TrimSuffix(segs[1], ".git")))
		}
	}
	return keys
}

// bitbucketKey finds a Data Center project and slug in the segments of a
// URL path: .../projects/PROJ/repos/slug[/browse...] and
// .../users/name/repos/slug[/...] (a personal repository, project "~name"),
// and, if clone is set, the https clone path .../scm/PROJ/slug.git. A
// server may live under a context path, so the shapes are looked for
// anywhere in the path.
func bitbucketKey(segs []string, clone bool) string {
	for i := 0; i+3 < len(segs); i++ {
		if segs[i+2] != "repos" || segs[i+1] == "" || segs[i+3] == "" {
			continue
		}
		switch segs[i] {
		case "projects":
			return bitbucketProject(segs[i+1], segs[i+3])
		case "users":
			return bitbucketProject("~"+segs[i+1], segs[i+3])
		}
	}
	if n := len(segs); clone && n >= 3 && segs[n-3] == "scm" && segs[n-2] != "" {
		if slug := strings.TrimSuffix(segs[n-1], ".git"); slug != "" {
			return bitbucketProject(segs[n-2], slug)
		}
	}
	return ""
}

func bitbucketProject(project, slug string) string {
	return "bitbucket:" + strings.ToLower(project+"/"+slug)
}
