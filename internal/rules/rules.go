// Package rules models Netlify's routing rules — `_redirects`, `_headers`
// and the [[redirects]] / [[headers]] tables of netlify.toml — with
// Netlify's semantics. Rules are parsed once, when a deploy is published,
// and stored in its manifest; serving compiles them into an index and never
// parses text.
package rules

import "fmt"

// File names, as they appear in errors and in Redirect.Source.
const (
	RedirectsFile = "_redirects"
	HeadersFile   = "_headers"
	NetlifyTOML   = "netlify.toml"
)

// MaxFileSize bounds each rules file; a larger one is an error and its
// rules are ignored. The 45,000-rule fixture is 1.6 MB.
const MaxFileSize = 8 << 20

// Redirect is one redirect, rewrite or proxy rule.
type Redirect struct {
	From string `json:"from"` // as written
	// Host is set for domain-level rules (From is an absolute URL): the
	// lowercase host the rule applies to.
	Host string `json:"host,omitempty"`
	// Path is From's path: "/news/*", "/blog/:year/:slug".
	Path string `json:"path"`
	// Query maps a query parameter the request must carry to a
	// ":placeholder" that captures its value, or to the literal value it
	// must have.
	Query  map[string]string `json:"query,omitempty"`
	To     string            `json:"to"`
	Status int               `json:"status"` // 301 when not written
	Force  bool              `json:"force,omitempty"`
	// Proxy: status 200 to an absolute URL.
	Proxy      bool       `json:"proxy,omitempty"`
	Conditions Conditions `json:"conditions,omitzero"`
	// Headers are added to the request sent to a proxy target.
	Headers map[string]string `json:"headers,omitempty"`
	// Signed names the environment variable of a proxy signing secret. It
	// is parsed, so conformance holds, but not acted upon.
	Signed string `json:"signed,omitempty"`
	Source string `json:"source"` // RedirectsFile or NetlifyTOML
	Line   int    `json:"line"`
}

// Conditions restrict a rule to some requests. Within one condition any
// listed value matches; all present conditions must match.
type Conditions struct {
	Language []string `json:"language,omitempty"` // from Accept-Language
	Country  []string `json:"country,omitempty"`  // from the site's trusted country header
	Cookie   []string `json:"cookie,omitempty"`   // any of these cookies is present
	// Role needs an identity provider sitehost does not have: a rule with
	// a Role condition never matches (and says so in the deploy's errors).
	Role []string `json:"role,omitempty"`
}

// HeaderRule sets response headers on the paths For matches.
type HeaderRule struct {
	For    string   `json:"for"`
	Values []Header `json:"values"`
	Source string   `json:"source"` // HeadersFile or NetlifyTOML
	Line   int      `json:"line"`
}

// Header is one header name with its values, in order.
type Header struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// Error is a problem found in a rules file. A rule with an error is left
// out; the others still apply.
type Error struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"` // 0: the whole file
	Message string `json:"message"`
}

func (e Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Message)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
}

// Set is every rule of a deploy, in Netlify's order: _redirects before
// netlify.toml, _headers before netlify.toml.
type Set struct {
	Redirects []Redirect   `json:"redirects,omitempty"`
	Headers   []HeaderRule `json:"headers,omitempty"`
	Errors    []Error      `json:"errors,omitempty"`
}
