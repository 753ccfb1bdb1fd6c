package serve

import (
	"path"
	"strings"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/rules"
)

// deploy is a manifest ready to serve: its rules compiled into indexes
// once, when it is loaded, so no request parses or scans them.
type deploy struct {
	m         *manifest.Manifest
	site      *Site          // the settings it was compiled for
	redirects *rules.Matcher // nil: no rules
	hostRules *rules.Matcher // the domain-level ones, for alias hosts; nil: none
	headers   *rules.HeaderMatcher
}

// compile prepares m for serving on site st. Proxy rules are left out when
// the site does not allow proxying, so they never match.
func compile(m *manifest.Manifest, st *Site) *deploy {
	d := &deploy{m: m, site: st}
	var all, hosts []rules.Redirect
	for _, r := range m.Rules.Redirects {
		if r.Proxy && (st == nil || !st.Rules.Proxy) {
			continue
		}
		all = append(all, r)
		if r.Host != "" {
			hosts = append(hosts, r)
		}
	}
	if len(all) > 0 {
		d.redirects = rules.NewMatcher(all)
	}
	if len(hosts) > 0 {
		d.hostRules = rules.NewMatcher(hosts)
	}
	if len(m.Rules.Headers) > 0 {
		d.headers = rules.NewHeaderMatcher(m.Rules.Headers)
	}
	return d
}

// rebind is d for st, settings equal to those d was compiled for.
func (d *deploy) rebind(st *Site) *deploy {
	c := *d
	c.site = st
	return &c
}

// resolved is what a request path names in a deploy.
type resolved struct {
	name string        // the file's path in the deploy, when found
	file manifest.File // the file, when name != ""
	// slash is set when the path names a directory without its trailing
	// slash (or a page with one): the URL to redirect to, without query.
	slash string
}

func (r resolved) found() bool { return r.name != "" || r.slash != "" }

// resolve maps a URL path to a file with pretty URLs (DESIGN §8): "/a/" is
// a/index.html; "/a" redirects to "/a/" when a/index.html exists, or is
// a.html; "/a/" redirects to "/a" when only a.html exists.
func (d *deploy) resolve(urlPath string) resolved {
	clean := path.Clean("/" + urlPath)
	rel := strings.TrimPrefix(clean, "/")
	m := d.m
	if strings.HasSuffix(urlPath, "/") || rel == "" {
		dir := rel
		if dir != "" {
			dir += "/"
		}
		if f, ok := m.Lookup(dir + "index.html"); ok {
			return resolved{name: dir + "index.html", file: f}
		}
		if rel != "" {
			if _, ok := m.Lookup(rel + ".html"); ok {
				return resolved{slash: clean}
			}
		}
		return resolved{}
	}
	if f, ok := m.Lookup(rel); ok {
		return resolved{name: rel, file: f}
	}
	if _, ok := m.Lookup(rel + "/index.html"); ok {
		return resolved{slash: clean + "/"}
	}
	if f, ok := m.Lookup(rel + ".html"); ok {
		return resolved{name: rel + ".html", file: f}
	}
	return resolved{}
}

// resolveTarget maps the path of a rewrite's target to a file, never
// redirecting: a rewrite answers with content (one hop, as on Netlify).
func (d *deploy) resolveTarget(p string) (string, manifest.File, bool) {
	clean := path.Clean("/" + p)
	rel := strings.TrimPrefix(clean, "/")
	var try []string
	if rel == "" {
		try = []string{"index.html"}
	} else if strings.HasSuffix(p, "/") {
		try = []string{rel + "/index.html", rel + ".html"}
	} else {
		try = []string{rel, rel + "/index.html", rel + ".html"}
	}
	for _, name := range try {
		if f, ok := d.m.Lookup(name); ok {
			return name, f, true
		}
	}
	return "", manifest.File{}, false
}
