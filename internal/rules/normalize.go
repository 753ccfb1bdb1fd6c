package rules

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Messages of the errors that keep their rule: sitehost parses these
// features, for conformance, but cannot honour them.
const (
	msgRole   = "Role conditions need Netlify Identity, which sitehost does not have: this rule never matches"
	msgSigned = "signed proxy requests are not supported; the request is sent unsigned"
)

// rawRedirect is a redirect as read from either file format, before the
// checks both formats share.
type rawRedirect struct {
	from       string
	to         string
	hasTo      bool
	status     int
	hasStatus  bool
	force      bool
	query      map[string]string
	conditions Conditions
	headers    map[string]string
	signed     string
}

// finish validates raw the way upstream's normalizeRedirects does and
// builds the Redirect. ok is false when the rule must be left out; a kept
// rule may still add errors to el.
func (raw *rawRedirect) finish(source string, line int, el *errorList) (Redirect, bool) {
	if raw.from == "" {
		el.add(line, `Missing "from" field`)
		return Redirect{}, false
	}
	if raw.hasStatus {
		if msg := checkStatus(raw.status); msg != "" {
			el.add(line, "%s", msg)
			return Redirect{}, false
		}
	}
	to := raw.to
	if !raw.hasTo {
		// A forward rule: "/x/* 200" serves "/x/:splat".
		if !strings.HasSuffix(raw.from, "/*") || !raw.hasStatus || raw.status < 200 || raw.status >= 300 {
			el.add(line, `Missing "to" field`)
			return Redirect{}, false
		}
		to = strings.TrimSuffix(raw.from, "*") + ":splat"
	}
	if to == "" {
		el.add(line, `Missing "to" field`)
		return Redirect{}, false
	}
	host, path, msg := splitFrom(raw.from)
	if msg != "" {
		el.add(line, "%s", msg)
		return Redirect{}, false
	}
	if isURL(to) && urlHost(to) == "" {
		el.add(line, "Invalid URL %q in \"to\": no host", to)
		return Redirect{}, false
	}
	status := 301
	if raw.hasStatus {
		status = raw.status
	}
	r := Redirect{
		From:       raw.from,
		Host:       host,
		Path:       path,
		Query:      nonEmpty(raw.query),
		To:         to,
		Status:     status,
		Force:      raw.force,
		Proxy:      status == 200 && isURL(to),
		Conditions: raw.conditions,
		Signed:     raw.signed,
		Source:     source,
		Line:       line,
	}
	if len(raw.headers) > 0 {
		for _, name := range slices.Sorted(maps.Keys(raw.headers)) { // sorted: errors in a stable order
			value := raw.headers[name]
			if err := checkProxyHeader(name, value); err != nil {
				el.add(line, "%v; it is left out", err)
				continue
			}
			if r.Headers == nil {
				r.Headers = make(map[string]string, len(raw.headers))
			}
			r.Headers[name] = value
		}
	}
	if len(r.Conditions.Role) > 0 {
		el.add(line, msgRole)
	}
	if r.Signed != "" && r.Proxy {
		el.add(line, msgSigned)
	}
	return r, true
}

// checkStatus accepts every status sitehost can serve as a rule's
// response: any 2xx–5xx. Upstream accepts any integer, but 1xx are
// interim responses and four-digit codes are not HTTP. It returns the
// problem, "" when there is none. (Messages keep upstream's capitalised
// wording, which users and tests search for, so they are not errors.)
func checkStatus(status int) string {
	if status < 200 || status > 599 {
		return fmt.Sprintf("Invalid status code: %d is not supported (use 200-599)", status)
	}
	return ""
}

// splitFrom returns the host (for an absolute URL) and the path of from, or
// the problem with it.
func splitFrom(from string) (host, path, problem string) {
	path = from
	if isURL(from) {
		u, err := url.Parse(from)
		if err != nil {
			return "", "", fmt.Sprintf("Invalid URL %q: %v", from, err)
		}
		if u.Hostname() == "" {
			return "", "", fmt.Sprintf("Invalid URL %q: no host", from)
		}
		// The path as written (not u.Path, which is decoded), like a path
		// from; the port is dropped because requests are matched by host
		// name alone.
		host = strings.ToLower(u.Hostname())
		path = rawURLPath(from)
	}
	if strings.HasPrefix(path, "/.netlify") {
		return "", "", fmt.Sprintf(`"path" field must not start with "/.netlify": %q`, from)
	}
	return host, path, ""
}

// rawURLPath returns the path of an absolute URL as written: "/" when it
// has none.
func rawURLPath(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	i := strings.IndexAny(rest, "/?#")
	if i < 0 || rest[i] != '/' {
		return "/"
	}
	rest = rest[i:]
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// urlHost returns the authority of an absolute URL as written.
func urlHost(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// setCondition stores one condition. Keys are case-insensitive; a later
// key replaces an earlier one, as upstream's object spread does.
func setCondition(c *Conditions, key string, values []string) error {
	var vs []string
	for _, v := range values {
		if v = trimJS(v); v != "" {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return fmt.Errorf("condition %q has no value", key)
	}
	switch strings.ToLower(key) {
	case "country":
		c.Country = vs
	case "language":
		c.Language = vs
	case "role":
		c.Role = vs
	case "cookie":
		c.Cookie = vs
	default:
		// Ignoring it would make the rule match more requests than its
		// author meant.
		return fmt.Errorf("unknown condition %q (sitehost knows Country, Language, Cookie and Role)", key)
	}
	return nil
}

// checkProxyHeader refuses request headers a proxy rule must not set: the
// transport owns framing, hop-by-hop headers and Host.
func checkProxyHeader(name, value string) error {
	if http.CanonicalHeaderKey(name) == "Host" {
		return fmt.Errorf("header %q cannot be set on proxied requests (the target URL names the host)", name)
	}
	return checkHeader(name, value)
}

// checkHeader refuses a header a deploy must not set, or one that is not
// valid HTTP.
func checkHeader(name, value string) error {
	if !validHeaderName(name) {
		return fmt.Errorf("invalid header name %q", name)
	}
	switch http.CanonicalHeaderKey(name) {
	case "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection",
		"Upgrade", "Te", "Trailer":
		return fmt.Errorf("header %q cannot be set by a deploy (the server manages the connection and framing)", name)
	case "Content-Encoding":
		return fmt.Errorf("header %q cannot be set by a deploy (the server chooses the encoding)", name)
	case "Basic-Auth":
		// Netlify's password pseudo-header: sent as a header it would give
		// every visitor the password and protect nothing.
		return fmt.Errorf("header %q (Netlify's password protection) is not supported: it is left out and the path is not protected", name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("header %q has a control character in its value", name)
		}
	}
	return nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
