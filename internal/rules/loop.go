package rules

import "strings"

// loopTarget is a redirect's target read as a pattern, for Netlify's loop
// rule: when the first rule a request matches is a redirect whose target
// pattern the request already matches, Netlify's redirector answers
// nothing at all — no redirect, and no later rule either — because
// redirecting would loop ("/china/* /china/cn-zh/:splat 302 Language=zh"
// leaves /china/cn-zh/something alone instead of sending it to
// /china/cn-zh/cn-zh/something). Rewrites (200) are exempt: "/admin/*
// /admin/:splat 200" serves /admin/users. The behaviour is that of the
// tests of Netlify's redirector (netlify_redirector's
// test_complex_rules_for_country_and_language_based_redirects and
// test_a_language_redirect_to_absolute_path).
type loopTarget struct {
	scheme string // lowercase, "" for a relative target
	host   string // lowercase, "" for a relative target
	segs   []segment
	key    string
	nslots int
}

// addLoop prepares the loop check of rule cr. Most rules need nothing at
// match time: a literal path redirected to a path either always loops
// (selfLoop) or never does, which is known now. The others keep their
// target pattern in m.loops.
func (m *Matcher) addLoop(cr *compiledRule) {
	lt, ok := compileLoop(cr.r)
	if !ok {
		return
	}
	if cr.segs == nil && lt.host == "" {
		var vals [8]string
		if lt.nslots <= len(vals) {
			c := compiledRule{segs: lt.segs, key: lt.key}
			_, cr.selfLoop = c.matchPath(cr.key, cr.key, vals[:lt.nslots])
			return
		}
	}
	m.loops = append(m.loops, lt)
	cr.loop = int32(len(m.loops)) // index + 1
}

// compileLoop returns the loop pattern of a redirect (3xx) rule's target;
// ok is false for other rules and for targets that cannot loop (another
// scheme than http and https, or no host).
func compileLoop(r *Redirect) (lt loopTarget, ok bool) {
	if r.Status < 300 || r.Status > 399 || r.Proxy {
		return lt, false
	}
	to := r.To
	if i := strings.IndexAny(to, "?#"); i >= 0 {
		to = to[:i]
	}
	if scheme, rest, abs := strings.Cut(to, "://"); abs {
		lt.scheme = strings.ToLower(scheme)
		if lt.scheme != "http" && lt.scheme != "https" {
			return lt, false
		}
		hostport, p, _ := strings.Cut(rest, "/")
		lt.host = lowerHost(hostWithoutPort(hostport))
		if lt.host == "" {
			return lt, false
		}
		to = "/" + p
	}
	if !strings.HasPrefix(to, "/") {
		return lt, false
	}
	// ":splat" as the last segment stands for the "*" it was taken from.
	if rest, ok := strings.CutSuffix(to, "/:splat"); ok {
		to = rest + "/*"
	}
	var names slotNames
	lt.segs, lt.key = compilePath(trimSlash(to), &names)
	lt.nslots = len(names)
	return lt, true
}

// hostWithoutPort drops user info and a port: "user@[::1]:8080" → "::1".
func hostWithoutPort(h string) string {
	h = h[strings.LastIndexByte(h, '@')+1:]
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// matches reports whether the request (path p, normalised np) already is
// where the redirect leads. A request of unknown scheme is taken to be of
// the target's, so that an unknown never redirects in a circle.
func (lt *loopTarget) matches(req *Request, p, np string) bool {
	if lt.host != "" {
		if lowerHost(req.Host) != lt.host {
			return false
		}
		if req.Scheme != "" && !strings.EqualFold(req.Scheme, lt.scheme) {
			return false
		}
	}
	var buf [8]string
	var vals []string
	if lt.nslots <= len(buf) {
		vals = buf[:lt.nslots]
	} else {
		vals = make([]string, lt.nslots)
	}
	cr := compiledRule{segs: lt.segs, key: lt.key}
	_, ok := cr.matchPath(p, np, vals)
	return ok
}
