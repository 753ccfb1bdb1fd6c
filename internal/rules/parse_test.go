package rules

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// findError reports whether errs has one in file, on line, containing
// substr.
func findError(errs []Error, file string, line int, substr string) bool {
	for _, e := range errs {
		if e.File == file && e.Line == line && strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

func TestParseRedirectErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		line  int
		msg   string
		rules int // rules kept
	}{
		{name: "bad rule left out, others kept", text: "/a /b\n/c /d oops\n/e /f", line: 2, msg: "Invalid status code", rules: 2},
		{name: "unsupported status", text: "/a /b 199", line: 1, msg: "Invalid status code: 199"},
		{name: "status too high", text: "/a /b 600", line: 1, msg: "Invalid status code: 600"},
		{name: "other 3-digit status parses", text: "/a /b 418", rules: 1},
		{name: "unknown condition", text: "/a /b 302 Contry=us", line: 1, msg: `unknown condition "Contry"`},
		{name: "condition without value", text: "/a /b 302 Country=", line: 1, msg: "has no value"},
		{name: "query token without =", text: "/a page /b", line: 1, msg: "must be written name=value"},
		{name: "to URL without host", text: "/a https:///x", line: 1, msg: "Invalid URL"},
		{name: "role kept with notice", text: "/a /b 200 role=admin", line: 1, msg: "Netlify Identity", rules: 1},
		{name: "signed proxy kept with notice", text: "/a https://x.example/ 200 Sign=S", line: 1, msg: "unsigned", rules: 1},
		{name: "crlf line endings", text: "/a /b\r\n/c /d 302\r\n", rules: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, errs := ParseRedirects([]byte(tt.text))
			if len(rs) != tt.rules {
				t.Errorf("%d rules, want %d: %+v", len(rs), tt.rules, rs)
			}
			if tt.msg == "" {
				if len(errs) > 0 {
					t.Errorf("unexpected errors %v", errs)
				}
				return
			}
			if !findError(errs, RedirectsFile, tt.line, tt.msg) {
				t.Errorf("no error %q on line %d: %v", tt.msg, tt.line, errs)
			}
		})
	}
}

func TestParseRedirectFields(t *testing.T) {
	rs, errs := ParseRedirects([]byte("  https://Old.Example.com:8443/blog/* https://new.example.com/:splat 200! country=us,ca LANGUAGE=en Cookie=a signed=S sign=T # why\n"))
	if len(errs) != 1 || errs[0].Message != msgSigned {
		t.Errorf("errors %v, want only the signed-proxy notice", errs)
	}
	if len(rs) != 1 {
		t.Fatalf("rules %+v", rs)
	}
	r := rs[0]
	want := Redirect{
		From: "https://Old.Example.com:8443/blog/*", Host: "old.example.com", Path: "/blog/*",
		To: "https://new.example.com/:splat", Status: 200, Force: true, Proxy: true,
		Conditions: Conditions{Country: []string{"us", "ca"}, Language: []string{"en"}, Cookie: []string{"a"}},
		Signed:     "S", Source: RedirectsFile, Line: 1,
	}
	if fmt.Sprintf("%+v", r) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func TestProxyHeadersRefused(t *testing.T) {
	toml := "[[redirects]]\nfrom = \"/api/*\"\nto = \"https://api.example.com/:splat\"\nstatus = 200\n[redirects.headers]\nHost = \"evil.example\"\nConnection = \"close\"\nX-Key = \"k\"\n"
	rs, _, errs := ParseNetlifyTOML([]byte(toml))
	if len(rs) != 1 || len(rs[0].Headers) != 1 || rs[0].Headers["X-Key"] != "k" {
		t.Errorf("headers = %v, want only X-Key", rs)
	}
	if !findError(errs, NetlifyTOML, 1, `"Host"`) || !findError(errs, NetlifyTOML, 1, `"Connection"`) {
		t.Errorf("errors = %v", errs)
	}
}

func TestTOMLLines(t *testing.T) {
	toml := `# settings
[build]
redirects = "not ours"

[[redirects]]
from = "/a"
to = "/b"

[[headers]]
for = "/x"

[[redirects]]
from = "/.netlify/x"
to = "/b"

[[redirects]]
s = """
[[redirects]]
"""
to = "/c"
`
	rs, _, errs := ParseNetlifyTOML([]byte(toml))
	if len(rs) != 1 || rs[0].Line != 5 {
		t.Errorf("rules %+v, want one on line 5", rs)
	}
	if !findError(errs, NetlifyTOML, 12, "must not start") || !findError(errs, NetlifyTOML, 16, `Missing "from"`) {
		t.Errorf("errors %v, want lines 12 and 16", errs)
	}

	inline := "redirects = [\n  {from = \"/a\", to = \"/b\"},\n  {to = \"/c\"},\n]\nheaders = 3\n"
	_, _, errs = ParseNetlifyTOML([]byte(inline))
	if !findError(errs, NetlifyTOML, 3, `Missing "from"`) || !findError(errs, NetlifyTOML, 5, "must be an array") {
		t.Errorf("inline errors %v", errs)
	}

	_, _, errs = ParseNetlifyTOML([]byte("[[redirects]]\nfrom = \"/a\"\nto = \n"))
	if len(errs) != 1 || errs[0].Line != 3 || !strings.Contains(errs[0].Message, "parse configuration file") {
		t.Errorf("syntax error %v, want line 3", errs)
	}
}

func TestTOMLFields(t *testing.T) {
	toml := `
[[redirects]]
origin = "/o"
destination = "/d"
status = "302"
params = {page = 2, ok = true}
conditions = {country = "us, ca", Language = ["en"], Cookie = ["c"]}
signing = "K"
rate_limit = {window_limit = 4}
unknown = 1
`
	rs, _, errs := ParseNetlifyTOML([]byte(toml))
	if len(errs) > 0 || len(rs) != 1 {
		t.Fatalf("%+v %v", rs, errs)
	}
	r := rs[0]
	if r.From != "/o" || r.To != "/d" || r.Status != 302 || r.Query["page"] != "2" || r.Query["ok"] != "true" ||
		!slices.Equal(r.Conditions.Country, []string{"us", "ca"}) || r.Conditions.Language[0] != "en" ||
		r.Conditions.Cookie[0] != "c" || r.Signed != "K" || r.Line != 2 {
		t.Errorf("got %+v", r)
	}
}

func TestParseLimits(t *testing.T) {
	big := bytes.Repeat([]byte("/a /b\n"), MaxFileSize/6+1)
	for name, parse := range map[string]func([]byte) []Error{
		RedirectsFile: func(b []byte) []Error { _, e := ParseRedirects(b); return e },
		HeadersFile:   func(b []byte) []Error { _, e := ParseHeaders(b); return e },
		NetlifyTOML:   func(b []byte) []Error { _, _, e := ParseNetlifyTOML(b); return e },
	} {
		errs := parse(big)
		if len(errs) != 1 || errs[0].Line != 0 || errs[0].File != name || !strings.Contains(errs[0].Message, "limit") {
			t.Errorf("%s: %v", name, errs)
		}
	}
	s := Parse(big, nil, nil)
	if len(s.Redirects) != 0 || len(s.Errors) != 1 {
		t.Errorf("Parse kept %d rules, %d errors", len(s.Redirects), len(s.Errors))
	}

	var b strings.Builder
	for i := range maxRules + 2 {
		fmt.Fprintf(&b, "/r%d /t\n", i)
	}
	rs, errs := ParseRedirects([]byte(b.String()))
	if len(rs) != maxRules || len(errs) != 1 || errs[0].Line != maxRules+1 {
		t.Errorf("%d rules, errors %v", len(rs), errs)
	}

	garbage := strings.Repeat("nonsense\n", 5000)
	_, errs = ParseRedirects([]byte(garbage))
	if len(errs) != maxErrors+1 {
		t.Errorf("%d errors for 5000 bad lines, want %d", len(errs), maxErrors+1)
	}
}

func TestParseOrder(t *testing.T) {
	s := Parse([]byte("/a /file"), []byte("/h\n  X: file"), []byte("[[redirects]]\nfrom = \"/a\"\nto = \"/toml\"\n[[headers]]\nfor = \"/h\"\nvalues = {X = \"toml\"}\n"))
	if len(s.Redirects) != 2 || s.Redirects[0].Source != RedirectsFile || s.Redirects[1].Source != NetlifyTOML {
		t.Errorf("redirects %+v", s.Redirects)
	}
	if len(s.Headers) != 2 || s.Headers[0].Source != HeadersFile || s.Headers[1].Source != NetlifyTOML {
		t.Errorf("headers %+v", s.Headers)
	}
	if got, _ := NewMatcher(s.Redirects).Match(&Request{Path: "/a"}, false); got.To != "/file" {
		t.Errorf("_redirects does not come first: %q", got.To)
	}
}
