package rules

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// mustMatcher parses a _redirects text that must have no errors other
// than sitehost's notices.
func mustMatcher(t testing.TB, redirects string) *Matcher {
	t.Helper()
	rs, errs := ParseRedirects([]byte(redirects))
	for _, e := range errs {
		if !sitehostOnly(e) {
			t.Fatalf("parsing rules: %v", e)
		}
	}
	return NewMatcher(rs)
}

type matchCase struct {
	name   string
	rules  string
	req    Request
	forced bool // forcedOnly: the path names an existing file
	// want is the matched rule's line and target, or line 0 for no match.
	wantLine int
	wantTo   string
	status   int // checked when non-zero
}

func TestMatch(t *testing.T) {
	al := func(v string) http.Header { return http.Header{"Accept-Language": {v}} }
	cookie := func(v string) http.Header { return http.Header{"Cookie": {v}} }
	tests := []matchCase{
		// Shadowing: a file at the path wins over unforced rules only.
		{name: "unforced rule applies when no file", rules: "/a /b", req: Request{Path: "/a"}, wantLine: 1, wantTo: "/b", status: 301},
		{name: "existing file shadows unforced rule", rules: "/a /b", req: Request{Path: "/a"}, forced: true},
		{name: "forced rule wins over file", rules: "/a /b 301!", req: Request{Path: "/a"}, forced: true, wantLine: 1, wantTo: "/b"},
		{name: "forced only skips earlier unforced", rules: "/a /b\n/a /c 302!", req: Request{Path: "/a"}, forced: true, wantLine: 2, wantTo: "/c", status: 302},
		{name: "404 rule", rules: "/old/* /gone.html 404", req: Request{Path: "/old/x"}, wantLine: 1, wantTo: "/gone.html", status: 404},
		{name: "rewrite 200", rules: "/app/* /index.html 200", req: Request{Path: "/app/a/b"}, wantLine: 1, wantTo: "/index.html", status: 200},
		{name: "forward rule", rules: "/admin/* 200", req: Request{Path: "/admin/x/y"}, wantLine: 1, wantTo: "/admin/x/y"},

		// Splats and placeholders.
		{name: "splat", rules: "/news/* /blog/:splat", req: Request{Path: "/news/2024/02/hi"}, wantLine: 1, wantTo: "/blog/2024/02/hi"},
		{name: "splat matches the bare prefix", rules: "/news/* /blog/:splat", req: Request{Path: "/news"}, wantLine: 1, wantTo: "/blog/"},
		{name: "splat matches the prefix with slash", rules: "/news/* /blog/:splat", req: Request{Path: "/news/"}, wantLine: 1, wantTo: "/blog/"},
		{name: "splat is segment aligned", rules: "/news/* /blog/:splat", req: Request{Path: "/newsletter"}},
		{name: "splat keeps trailing slash", rules: "/api/* https://api.example.com/:splat 200", req: Request{Path: "/api/users/"}, wantLine: 1, wantTo: "https://api.example.com/users/"},
		{name: "root splat", rules: "/* /index.html 200", req: Request{Path: "/"}, wantLine: 1, wantTo: "/index.html"},
		{name: "prefix star", rules: "/foo* /bar/:splat", req: Request{Path: "/foobar/baz"}, wantLine: 1, wantTo: "/bar/bar/baz"},
		{name: "star in the middle is literal", rules: "/a/*/b /c", req: Request{Path: "/a/x/b"}},
		{name: "star in the middle matches itself", rules: "/a/*/b /c", req: Request{Path: "/a/*/b"}, wantLine: 1, wantTo: "/c"},
		{name: "placeholders", rules: "/blog/:year/:slug /posts/:slug?y=:year", req: Request{Path: "/blog/2024/hello"}, wantLine: 1, wantTo: "/posts/hello?y=2024"},
		{name: "placeholder is one segment", rules: "/blog/:slug /posts/:slug", req: Request{Path: "/blog/a/b"}},
		{name: "placeholder is not empty", rules: "/blog/:slug/x /posts/:slug", req: Request{Path: "/blog//x"}},
		{name: "token is a whole name", rules: "/u/:id /profile/:identifier/:id", req: Request{Path: "/u/7"}, wantLine: 1, wantTo: "/profile/:identifier/7"},
		{name: "unknown token stays", rules: "/a /b/:nothing", req: Request{Path: "/a"}, wantLine: 1, wantTo: "/b/:nothing"},
		{name: "port in target is not a token", rules: "/p/* http://localhost:8080/:splat 200", req: Request{Path: "/p/x"}, wantLine: 1, wantTo: "http://localhost:8080/x"},
		{name: "splat escapes space ? #", rules: "/f/* /g/:splat", req: Request{Path: "/f/a b?c#d/é"}, wantLine: 1, wantTo: "/g/a%20b%3Fc%23d/%C3%A9"},
		{name: "query placeholder escapes &", rules: "/s/:q /search?q=:q", req: Request{Path: "/s/a&b=c d"}, wantLine: 1, wantTo: "/search?q=a%26b%3Dc+d"},

		// Query conditions.
		{name: "query literal", rules: "/ page=news /news", req: Request{Path: "/", RawQuery: "page=news"}, wantLine: 1, wantTo: "/news"},
		{name: "query literal mismatch", rules: "/ page=news /news", req: Request{Path: "/", RawQuery: "page=about"}},
		{name: "query missing", rules: "/ page=news /news", req: Request{Path: "/"}},
		{name: "query capture", rules: "/blog post=:post_id /blog/:post_id", req: Request{Path: "/blog", RawQuery: "x=1&post=42"}, wantLine: 1, wantTo: "/blog/42"},
		{name: "query capture is decoded then escaped", rules: "/blog post=:id /blog/:id", req: Request{Path: "/blog", RawQuery: "post=a%20b"}, wantLine: 1, wantTo: "/blog/a%20b"},
		{name: "query literal with slash", rules: "/ _escaped_fragment_=/about /about", req: Request{Path: "/", RawQuery: "_escaped_fragment_=%2Fabout"}, wantLine: 1, wantTo: "/about"},
		{name: "query into target query", rules: "/donate source=:source email=:email /donate/usa?source=:source&email=:email 302", req: Request{Path: "/donate", RawQuery: "email=a%40b.c&source=web"}, wantLine: 1, wantTo: "/donate/usa?source=web&email=a%40b.c"},
		{name: "all query keys required", rules: "/donate source=:source email=:email /d", req: Request{Path: "/donate", RawQuery: "source=web"}},

		// Query passthrough.
		{name: "query passes through", rules: "/a /b", req: Request{Path: "/a", RawQuery: "x=1&y=2"}, wantLine: 1, wantTo: "/b?x=1&y=2"},
		{name: "query passes before fragment", rules: "/a /b#top", req: Request{Path: "/a", RawQuery: "x=1"}, wantLine: 1, wantTo: "/b?x=1#top"},
		{name: "target query replaces request query", rules: "/a /b?y=2", req: Request{Path: "/a", RawQuery: "x=1"}, wantLine: 1, wantTo: "/b?y=2"},
		{name: "query rule does not pass query", rules: "/a x=:x /b/:x", req: Request{Path: "/a", RawQuery: "x=1&z=2"}, wantLine: 1, wantTo: "/b/1"},

		// Trailing slashes and case.
		{name: "rule without slash, request with", rules: "/about /team", req: Request{Path: "/about/"}, wantLine: 1, wantTo: "/team"},
		{name: "rule with slash, request without", rules: "/about/ /team", req: Request{Path: "/about"}, wantLine: 1, wantTo: "/team"},
		{name: "paths are case-sensitive", rules: "/About /team", req: Request{Path: "/about"}},
		{name: "rule path is decoded", rules: "/caf%C3%A9 /coffee", req: Request{Path: "/café"}, wantLine: 1, wantTo: "/coffee"},
		{name: "bad escape kept as written", rules: "/100%zz /x", req: Request{Path: "/100%zz"}, wantLine: 1, wantTo: "/x"},

		// Language.
		{name: "language matches region", rules: "/ /en 302 Language=en", req: Request{Path: "/", Header: al("en-US,fr;q=0.5")}, wantLine: 1, wantTo: "/en"},
		{name: "language region needs region", rules: "/ /us 302 Language=en-US", req: Request{Path: "/", Header: al("en")}},
		{name: "language region matches region", rules: "/ /us 302 Language=en-us", req: Request{Path: "/", Header: al("EN-US")}, wantLine: 1, wantTo: "/us"},
		{name: "language by q value", rules: "/ /en 302 Language=en\n/ /fr 302 Language=fr", req: Request{Path: "/", Header: al("en;q=0.4, fr;q=0.9")}, wantLine: 2, wantTo: "/fr"},
		{name: "language q=0 ignored", rules: "/ /fr 302 Language=fr", req: Request{Path: "/", Header: al("fr;q=0, de")}},
		{name: "language first on ties", rules: "/ /de 302 Language=de", req: Request{Path: "/", Header: al("fr, de")}},
		{name: "language list", rules: "/ /x 302 Language=de,fr", req: Request{Path: "/", Header: al("fr-CH")}, wantLine: 1, wantTo: "/x"},
		{name: "no accept-language", rules: "/ /en 302 Language=en", req: Request{Path: "/"}},

		// Country.
		{name: "country", rules: "/ /china 302 Country=cn,tw", req: Request{Path: "/", Country: "TW"}, wantLine: 1, wantTo: "/china"},
		{name: "country mismatch", rules: "/ /china 302 Country=cn,tw", req: Request{Path: "/", Country: "us"}},
		{name: "country unknown", rules: "/ /china 302 Country=cn", req: Request{Path: "/"}},
		{name: "country and language both needed", rules: "/ /il 302 Country=il Language=he", req: Request{Path: "/", Country: "IL", Header: al("en")}},

		// Cookie.
		{name: "cookie present", rules: "/* /beta/:splat 200 Cookie=beta,nf_ab", req: Request{Path: "/x", Header: cookie("a=1; nf_ab=2")}, wantLine: 1, wantTo: "/beta/x"},
		{name: "cookie absent", rules: "/* /beta/:splat 200 Cookie=beta", req: Request{Path: "/x", Header: cookie("betamax=1")}},

		// Role: sitehost has no identities.
		{name: "role never matches", rules: "/admin/* /admin/:splat 200 Role=admin\n/admin/* /login 302", req: Request{Path: "/admin/x"}, wantLine: 2, wantTo: "/login"},

		// Domain-level rules.
		{name: "domain rule on its host", rules: "https://old.example.com/* https://new.example.com/:splat 301!", req: Request{Host: "old.example.com", Path: "/a/b"}, wantLine: 1, wantTo: "https://new.example.com/a/b"},
		{name: "domain rule ignores scheme", rules: "http://old.example.com/* /x", req: Request{Host: "old.example.com", Path: "/"}, wantLine: 1, wantTo: "/x"},
		{name: "domain rule, other host", rules: "https://old.example.com/* https://new.example.com/:splat", req: Request{Host: "www.example.com", Path: "/a"}},
		{name: "domain rule, host case", rules: "https://Old.Example.com/a /b", req: Request{Host: "OLD.example.com", Path: "/a"}, wantLine: 1, wantTo: "/b"},
		{name: "domain and path rules keep order", rules: "/a /first\nhttps://h.example/a /second", req: Request{Host: "h.example", Path: "/a"}, wantLine: 1, wantTo: "/first"},
		{name: "domain rule before path rule", rules: "https://h.example/a /first\n/a /second", req: Request{Host: "h.example", Path: "/a"}, wantLine: 1, wantTo: "/first"},

		// Loops: a redirect whose target pattern the request already
		// matches answers nothing, and no later rule is tried.
		{name: "self redirect", rules: "/a /a 301", req: Request{Path: "/a"}},
		{name: "self redirect, trailing slash", rules: "/a/ /a 301", req: Request{Path: "/a/"}},
		{name: "self rewrite is no loop", rules: "/a /a 200", req: Request{Path: "/a"}, wantLine: 1, wantTo: "/a"},
		{name: "splat into itself", rules: "/china/* /china/cn-zh/:splat 302", req: Request{Path: "/china/cn-zh/x"}},
		{name: "splat into itself, bare target", rules: "/china/* /china/cn-zh/:splat 302", req: Request{Path: "/china/cn-zh"}},
		{name: "splat into itself, outside target", rules: "/china/* /china/cn-zh/:splat 302", req: Request{Path: "/china/cn-z"}, wantLine: 1, wantTo: "/china/cn-zh/cn-z"},
		{name: "loop stops later rules", rules: "/a/* /a/b/:splat 301\n/* /z 301", req: Request{Path: "/a/b/c"}},
		{name: "loop on forced rule over a file", rules: "/a/* /a/b/:splat 301!", req: Request{Path: "/a/b/c"}, forced: true},
		{name: "placeholder target", rules: "/:lang/blog /:lang/blog/1", req: Request{Path: "/de/blog"}, wantLine: 1, wantTo: "/de/blog/1"},
		{name: "placeholder target loops", rules: "/:lang/* /:lang/x/:splat 302", req: Request{Path: "/de/x/y"}},
		{name: "target query is no part of the loop", rules: "/a /a?x=1 302", req: Request{Path: "/a"}},
		{name: "absolute target on this host", rules: "/* https://www.example.com/au/:splat 302", req: Request{Host: "www.example.com", Scheme: "https", Path: "/au/x"}},
		{name: "absolute target, host case and port", rules: "/* https://WWW.example.com:8443/au/:splat 302", req: Request{Host: "www.example.com", Path: "/au"}},
		{name: "absolute target on another host", rules: "/* https://www.example.com/au/:splat 302", req: Request{Host: "example.com", Scheme: "https", Path: "/au/x"}, wantLine: 1, wantTo: "https://www.example.com/au/au/x"},
		{name: "absolute target, other scheme", rules: "/* https://www.example.com/au/:splat 302", req: Request{Host: "www.example.com", Scheme: "http", Path: "/au/x"}, wantLine: 1, wantTo: "https://www.example.com/au/au/x"},
		{name: "literal path, absolute target on this host", rules: "/a https://h.example/a/ 301", req: Request{Host: "h.example", Path: "/a"}},
		{name: "literal path, absolute target elsewhere", rules: "/a https://h.example/a 301", req: Request{Host: "www.h.example", Path: "/a"}, wantLine: 1, wantTo: "https://h.example/a"},
		{name: "literal path, escaped target", rules: "/caf%C3%A9 /café 301", req: Request{Path: "/café"}},
		{name: "proxy is no loop", rules: "/api/* https://api.example.com/api/:splat 200", req: Request{Host: "api.example.com", Path: "/api/x"}, wantLine: 1, wantTo: "https://api.example.com/api/x"},

		// Order.
		{name: "first match wins", rules: "/a/* /first\n/a/b /second", req: Request{Path: "/a/b"}, wantLine: 1, wantTo: "/first"},
		{name: "first match wins, literal first", rules: "/a/b /first\n/a/* /second", req: Request{Path: "/a/b"}, wantLine: 1, wantTo: "/first"},
		{name: "failed condition falls through", rules: "/ /fr 302 Country=fr\n/ /en", req: Request{Path: "/", Country: "de"}, wantLine: 2, wantTo: "/en"},
		{name: "no rule", rules: "/a /b", req: Request{Path: "/c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustMatcher(t, tt.rules)
			got, ok := m.Match(&tt.req, tt.forced)
			if tt.wantLine == 0 {
				if ok {
					t.Fatalf("matched line %d (to %q), want no match", got.Rule.Line, got.To)
				}
				return
			}
			if !ok {
				t.Fatalf("no match, want line %d", tt.wantLine)
			}
			if got.Rule.Line != tt.wantLine || got.To != tt.wantTo {
				t.Errorf("matched line %d to %q, want line %d to %q", got.Rule.Line, got.To, tt.wantLine, tt.wantTo)
			}
			if got.Index != got.Rule.Line-1 {
				t.Errorf("index %d for line %d", got.Index, got.Rule.Line)
			}
			if tt.status != 0 && got.Rule.Status != tt.status {
				t.Errorf("status %d, want %d", got.Rule.Status, tt.status)
			}
		})
	}
}

func TestMatchTOML(t *testing.T) {
	toml := `
[[redirects]]
from = "old-path"
to = "/new"

[[redirects]]
from = "/search"
to = "https://api.example.com/search"
status = 200
force = true
headers = {X-From = "sitehost"}
`
	rs, _, errs := ParseNetlifyTOML([]byte(toml))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	m := NewMatcher(rs)
	// netlify.toml accepts a from without "/": it is taken as rooted.
	if got, ok := m.Match(&Request{Path: "/old-path"}, false); !ok || got.To != "/new" {
		t.Errorf("from without slash: %+v %v", got, ok)
	}
	got, ok := m.Match(&Request{Path: "/search", RawQuery: "q=go"}, true)
	if !ok || !got.Rule.Proxy || got.To != "https://api.example.com/search?q=go" || got.Rule.Headers["X-From"] != "sitehost" {
		t.Errorf("proxy: %+v %v", got, ok)
	}
}

func TestMatcherKeepsItsRules(t *testing.T) {
	rs, _ := ParseRedirects([]byte("/a /b"))
	m := NewMatcher(rs)
	rs[0].To = "/changed"
	if got, _ := m.Match(&Request{Path: "/a"}, false); got.To != "/b" {
		t.Errorf("matcher follows the caller's slice: %q", got.To)
	}
	if m.Len() != 1 {
		t.Errorf("Len = %d", m.Len())
	}
	var empty *Matcher
	if _, ok := empty.Match(&Request{Path: "/"}, false); ok {
		t.Error("nil matcher matched")
	}
}

// TestMatchIndexAgreesWithScan checks the index against trying every rule
// in order, on a mix of literal and patterned rules and many paths.
func TestMatchIndexAgreesWithScan(t *testing.T) {
	var b strings.Builder
	segs := []string{"a", "b", ":p", "c%20d", "x*", "*"}
	n := 0
	for _, s1 := range segs {
		for _, s2 := range segs {
			if s1 == "*" {
				continue
			}
			fmt.Fprintf(&b, "/%s/%s /to/%d\n", s1, s2, n)
			fmt.Fprintf(&b, "/%s /to1/%d\n", s1, n)
			n++
		}
	}
	b.WriteString("https://h.example/a/* /host\n/* /last\n")
	rs, errs := ParseRedirects([]byte(b.String()))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	m := NewMatcher(rs)
	paths := []string{"/", "/a", "/a/", "/a/b", "/a/b/", "/b/a", "/c d/a", "/a/c d", "/xy/a", "/a/xy/z", "/a/x", "/q/r", "/q/r/s", "/a//b", "//", "/a/*"}
	for _, host := range []string{"", "h.example"} {
		for _, p := range paths {
			req := &Request{Host: host, Path: p}
			got, ok := m.Match(req, false)
			want, wantOK := -1, false
			for i := range m.rules {
				cr := &m.rules[i]
				if cr.host != "" && cr.host != host {
					continue
				}
				vals := make([]string, cr.nslots)
				if _, match := cr.matchPath(p, trimSlash(p), vals); match {
					want, wantOK = i, true
					break
				}
			}
			if ok != wantOK || (ok && got.Index != want) {
				t.Errorf("host %q path %q: index %d (%v), scan says %d (%v)", host, p, got.Index, ok, want, wantOK)
			}
		}
	}
}

func TestMatchConcurrent(t *testing.T) {
	m := mustMatcher(t, "/a/:x /b/:x\n/c/* /d/:splat\n/e /f 200 Language=en")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				p := fmt.Sprintf("/a/%d-%d", g, i)
				got, ok := m.Match(&Request{Path: p, Header: http.Header{"Accept-Language": {"en"}}}, false)
				if want := fmt.Sprintf("/b/%d-%d", g, i); !ok || got.To != want {
					t.Errorf("%s: got %q, want %q", p, got.To, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
