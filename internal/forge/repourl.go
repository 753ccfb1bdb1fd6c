package forge

import (
	"fmt"
	"net/url"
	"strings"
)

// repoRef is a parsed repository URL. Credentials in it are dropped.
type repoRef struct {
	web  string   // scheme://host[:port] of the forge's web UI, e.g. https://github.com
	host string   // hostname without port, lowercase
	segs []string // path segments without ".git", e.g. [acme blog]
}

// parseRepo parses https://host/owner/repo(.git), ssh://[user@]host[:port]/owner/repo(.git)
// and scp-like [user@]host:owner/repo(.git). Errors never echo the URL,
// which may embed a token.
func parseRepo(raw string) (repoRef, error) {
	raw = strings.TrimSpace(raw)
	var ref repoRef
	var path string
	if i := strings.Index(raw, "://"); i >= 0 {
		u, err := url.Parse(raw)
		if err != nil {
			return ref, fmt.Errorf("%w: unparseable repo URL", ErrBadRepo)
		}
		scheme := strings.ToLower(u.Scheme)
		switch scheme {
		case "http", "https":
			ref.web = scheme + "://" + strings.ToLower(u.Host)
		case "ssh", "git", "git+ssh", "ssh+git":
			// The port is the SSH or git port, not the web one.
			ref.web = "https://" + strings.ToLower(u.Hostname())
		default:
			return ref, fmt.Errorf("%w: scheme %q is not a forge's", ErrBadRepo, u.Scheme)
		}
		ref.host = strings.ToLower(u.Hostname())
		path = u.Path
	} else {
		// scp-like: [user@]host:path, where host has no slash.
		host, p, ok := strings.Cut(raw, ":")
		if !ok || strings.Contains(host, "/") {
			return ref, fmt.Errorf("%w: want https://host/owner/repo, ssh://host/owner/repo or git@host:owner/repo", ErrBadRepo)
		}
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		ref.host = strings.ToLower(host)
		ref.web = "https://" + ref.host
		path = p
	}
	if ref.host == "" {
		return ref, fmt.Errorf("%w: no host", ErrBadRepo)
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return ref, fmt.Errorf("%w: bad path %q", ErrBadRepo, path)
		}
		ref.segs = append(ref.segs, seg)
	}
	if len(ref.segs) < 2 {
		return ref, fmt.Errorf("%w: path %q", ErrBadRepo, path)
	}
	return ref, nil
}

// resolveAPI checks an explicit base API URL, or asks def for the default.
func resolveAPI(api string, def func() (string, error)) (string, error) {
	api = strings.TrimSpace(api)
	if api == "" {
		d, err := def()
		if err != nil {
			return "", err
		}
		api = d
	}
	u, err := url.Parse(api)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: unparseable", ErrBadAPI)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w %q: want http or https", ErrBadAPI, u.Redacted())
	case u.Host == "":
		return "", fmt.Errorf("%w %q: no host", ErrBadAPI, u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("%w %q: credentials belong in token_env, not the URL", ErrBadAPI, u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%w %q: no query or fragment allowed", ErrBadAPI, u.Redacted())
	}
	return strings.TrimRight(api, "/"), nil
}

// target is a repository as a forge's API names it.
type target struct {
	name string   // owner/repo (GitLab: group/sub/project), for messages and logs
	segs []string // path segments of name
	web  string   // the repository's web URL, e.g. https://bitbucket.org/acme/blog
}

// ownerRepo requires exactly owner/repo, as GitHub and Bitbucket have.
func ownerRepo(r repoRef) (target, error) {
	if len(r.segs) != 2 {
		return target{}, fmt.Errorf("%w: want owner/repo, got %q", ErrBadRepo, strings.Join(r.segs, "/"))
	}
	return newTarget(r.web, r.segs), nil
}

func newTarget(web string, segs []string) target {
	name := strings.Join(segs, "/")
	return target{name: name, segs: segs, web: web + "/" + name}
}

// escapedPath joins segs, escaping each one for use in a URL path.
func escapedPath(segs []string) string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = url.PathEscape(s)
	}
	return strings.Join(out, "/")
}
