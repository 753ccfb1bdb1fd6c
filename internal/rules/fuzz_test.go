package rules

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Run locally with, e.g., go test -fuzz=FuzzParseRedirects -fuzztime=20s;
// plain go test runs the seeds only.

// addSeeds adds the small fixture files under dir (relative to the
// fixtures) to f's corpus.
func addSeeds(f *testing.F, dir string, extra ...string) {
	f.Helper()
	root := filepath.Join(fixtures(f), dir)
	ents, err := os.ReadDir(root)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), "large") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

func FuzzParseRedirects(f *testing.F) {
	addSeeds(f, "build/redirect-parser/fixtures/redirects_file",
		"/a/:b/* https://x.example/:b/:splat?q=:q 200! q=:q Country=us Language=en Cookie=c\nhttps://H.example:80/p /x",
		"/foo* /bar/:splat\n/a/*/b /c 404")
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, errs := ParseRedirects(data)
		for _, e := range errs {
			if e.File != RedirectsFile || e.Line < 0 || e.Message == "" {
				t.Fatalf("bad error %+v", e)
			}
		}
		for _, r := range rs {
			if r.Line <= 0 || r.Source != RedirectsFile || r.To == "" || r.Status < 200 || r.Status > 599 {
				t.Fatalf("bad rule %+v", r)
			}
		}
		m := NewMatcher(rs)
		h := http.Header{"Accept-Language": {"en-US,fr;q=0.5"}, "Cookie": {"c=1"}}
		for _, r := range rs {
			for _, p := range []string{r.Path, r.Path + "/x/y", strings.ReplaceAll(r.Path, "*", "a b")} {
				if !strings.HasPrefix(p, "/") {
					p = "/" + p
				}
				for _, forced := range []bool{false, true} {
					got, ok := m.Match(&Request{Host: r.Host, Path: p, RawQuery: "q=1&x=%zz", Header: h, Country: "US"}, forced)
					if ok && (got.Rule == nil || got.Index < 0 || got.Index >= len(rs) || (forced && !got.Rule.Force)) {
						t.Fatalf("bad match %+v", got)
					}
				}
			}
		}
	})
}

func FuzzParseHeaders(f *testing.F) {
	addSeeds(f, "build/headers-parser/fixtures/headers_file",
		"/a/*/b*c\n  X-A: 1\n/:x/*\n  X-B: 2\n/\u212a\n  X-C: 3",
		"/*\n  Cache-Control: no-cache\n  Content-Length: 1")
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, errs := ParseHeaders(data)
		for _, e := range errs {
			if e.File != HeadersFile || e.Line < 0 || e.Message == "" {
				t.Fatalf("bad error %+v", e)
			}
		}
		for _, h := range hs {
			if h.Line <= 0 || len(h.Values) == 0 || !strings.HasPrefix(h.For, "/") {
				t.Fatalf("bad rule %+v", h)
			}
		}
		for _, h := range hs {
			// Differential check against upstream's regexp for the rule
			// alone, where both define the same language.
			re, ok := upstreamForRegexp(h.For)
			if !ok {
				continue
			}
			m := NewHeaderMatcher([]HeaderRule{h})
			name := http.CanonicalHeaderKey(h.Values[0].Name)
			for _, p := range []string{h.For, strings.ToUpper(h.For), h.For + "/", strings.ReplaceAll(h.For, "*", "x/y"), "/", "/other"} {
				got := http.Header{}
				m.Apply(got, p)
				if _, set := got[name]; set != re.MatchString(p) {
					t.Fatalf("for %q path %q: matched %v, upstream regexp %v says %v", h.For, p, set, re, !set)
				}
			}
		}
	})
}

func FuzzParseNetlifyTOML(f *testing.F) {
	addSeeds(f, "build/redirect-parser/fixtures/netlify_config")
	addSeeds(f, "build/headers-parser/fixtures/netlify_config")
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, hs, errs := ParseNetlifyTOML(data)
		for _, e := range errs {
			if e.File != NetlifyTOML || e.Line < 0 || e.Message == "" {
				t.Fatalf("bad error %+v", e)
			}
		}
		NewMatcher(rs).Match(&Request{Path: "/"}, false)
		NewHeaderMatcher(hs).Apply(http.Header{}, "/")
	})
}

// upstreamForRegexp builds the regexp upstream's getForRegExp would, in Go
// syntax. ok is false for patterns where sitehost deliberately differs:
// upstream pastes a part holding "*" into its regexp unescaped, so only
// parts of plain characters are compared.
func upstreamForRegexp(forPath string) (*regexp.Regexp, bool) {
	var parts []string
	for _, p := range strings.Split(forPath, "/") {
		p = strings.TrimRightFunc(p, isJSSpace)
		if p == "" {
			continue
		}
		switch {
		case p[0] == ':':
			parts = append(parts, "([^/]+)")
		case p == "*":
			parts = append(parts, "?(.*)")
		case strings.Contains(p, "*"):
			if strings.Trim(p, "*abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
				return nil, false
			}
			parts = append(parts, strings.ReplaceAll(p, "*", "(.*)"))
		default:
			parts = append(parts, regexp.QuoteMeta(p))
		}
	}
	re, err := regexp.Compile(jsToGoRegexp(`^\/` + strings.Join(parts, `\/`) + `\/?$`))
	return re, err == nil
}
