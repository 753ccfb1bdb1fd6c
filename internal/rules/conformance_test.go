package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fixtures returns the folder of Netlify's parser fixtures, kept in the
// repository (copied from the workspace's shared testdata; see its
// README.md).
func fixtures(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "netlify")
	if _, err := os.Stat(filepath.Join(dir, "redirects-parse-cases.json")); err != nil {
		t.Fatalf("Netlify fixtures missing: %v", err)
	}
	return dir
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
}

// readInput reads a fixture file the way a deploy's files are read: a
// missing file is absent (nil), and a directory is a read error, which
// the caller reports (it is I/O, outside Parse).
func readInput(t *testing.T, dir, rel string) ([]byte, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", rel, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

type caseInputs struct {
	RedirectsFiles []string        `json:"redirects_files"`
	HeadersFiles   []string        `json:"headers_files"`
	NetlifyTOML    string          `json:"netlify_toml"`
	InlineRedirect json.RawMessage `json:"config_redirects_inline"`
	InlineHeaders  json.RawMessage `json:"config_headers_inline"`
	Minimal        bool            `json:"minimal"`
}

// skipInline skips cases that feed upstream rules from its build's
// in-memory config: sitehost reads netlify.toml and nothing else. An empty
// inline list adds nothing, so those cases still run.
func skipInline(t *testing.T, in caseInputs) {
	t.Helper()
	inline := func(raw json.RawMessage) bool { return raw != nil && string(raw) != "[]" }
	if inline(in.InlineRedirect) || inline(in.InlineHeaders) {
		t.Skip("inline config rules are not modeled: sitehost has no build-time config object, only netlify.toml")
	}
}

// parseRedirectInputs parses the case's _redirects files (each one a
// deploy's file, concatenated in order) and netlify.toml.
func parseRedirectInputs(t *testing.T, dir string, in caseInputs) ([]Redirect, []Error) {
	t.Helper()
	var files [][]byte
	var errs []Error
	for _, f := range in.RedirectsFiles {
		b, err := readInput(t, dir, f)
		if err != nil {
			errs = append(errs, Error{File: RedirectsFile, Message: "Could not read redirects file: " + err.Error()})
			continue
		}
		files = append(files, b)
	}
	var toml []byte
	if in.NetlifyTOML != "" {
		b, err := readInput(t, dir, in.NetlifyTOML)
		if err != nil {
			t.Fatal(err)
		}
		toml = b
	}
	if len(files) <= 1 {
		var redirects []byte
		if len(files) == 1 {
			redirects = files[0]
		}
		s := Parse(redirects, nil, toml)
		return s.Redirects, append(errs, s.Errors...)
	}
	var rs []Redirect
	for _, f := range files {
		r, e := ParseRedirects(f)
		rs, errs = append(rs, r...), append(errs, e...)
	}
	r, _, e := ParseNetlifyTOML(toml)
	return append(rs, r...), append(errs, e...)
}

func parseHeaderInputs(t *testing.T, dir string, in caseInputs) ([]HeaderRule, []Error) {
	t.Helper()
	var hs []HeaderRule
	var errs []Error
	for _, f := range in.HeadersFiles {
		b, err := readInput(t, dir, f)
		if err != nil {
			errs = append(errs, Error{File: HeadersFile, Message: "Could not read headers file: " + err.Error()})
			continue
		}
		if b == nil {
			continue
		}
		h, e := ParseHeaders(b)
		hs, errs = append(hs, h...), append(errs, e...)
	}
	if in.NetlifyTOML != "" {
		b, err := readInput(t, dir, in.NetlifyTOML)
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			_, h, e := ParseNetlifyTOML(b)
			hs, errs = append(hs, h...), append(errs, e...)
		}
	}
	return hs, errs
}

// sitehostOnly reports whether e is one of the errors sitehost adds to a
// rule upstream accepts silently (and that sitehost keeps).
func sitehostOnly(e Error) bool {
	return e.Message == msgRole || e.Message == msgSigned
}

type expectedRedirect struct {
	From       string              `json:"from"`
	Path       *string             `json:"path"`
	Host       *string             `json:"host"`
	To         string              `json:"to"`
	Status     *int                `json:"status"`
	Force      bool                `json:"force"`
	Proxy      *bool               `json:"proxy"`
	Query      map[string]string   `json:"query"`
	Conditions map[string][]string `json:"conditions"`
	Headers    map[string]string   `json:"headers"`
	Signed     string              `json:"signed"`
	RateLimit  json.RawMessage     `json:"rate_limit"`
}

func TestConformanceRedirects(t *testing.T) {
	dir := fixtures(t)
	var file struct {
		Cases []struct {
			Suite    string             `json:"suite"`
			Name     string             `json:"name"`
			Inputs   caseInputs         `json:"inputs"`
			Expected []expectedRedirect `json:"expected"`
		} `json:"cases"`
		ErrorCases []errorCase `json:"error_cases"`
	}
	readJSON(t, filepath.Join(dir, "redirects-parse-cases.json"), &file)
	if len(file.Cases) == 0 || len(file.ErrorCases) == 0 {
		t.Fatal("no cases in redirects-parse-cases.json")
	}
	for _, c := range file.Cases {
		t.Run(c.Suite+"/"+c.Name, func(t *testing.T) {
			skipInline(t, c.Inputs)
			for _, e := range c.Expected {
				if e.RateLimit != nil {
					t.Skip("rate_limit is not modeled: sitehost does not offer rate limiting")
				}
			}
			got, errs := parseRedirectInputs(t, dir, c.Inputs)
			for _, e := range errs {
				if !sitehostOnly(e) {
					t.Errorf("unexpected error: %v", e)
				}
			}
			if len(got) != len(c.Expected) {
				t.Fatalf("got %d rules, want %d: %+v", len(got), len(c.Expected), got)
			}
			for i, want := range c.Expected {
				compareRedirect(t, i, got[i], want, c.Inputs.Minimal)
			}
		})
	}
	for _, c := range file.ErrorCases {
		t.Run("error/"+c.Suite+"/"+c.Name, func(t *testing.T) {
			skipInline(t, c.Inputs)
			_, errs := parseRedirectInputs(t, dir, c.Inputs)
			c.check(t, errs)
		})
	}
}

// compareRedirect compares the fields sitehost models. minimal: upstream
// left out path, host and proxy (they are not netlify.toml fields).
func compareRedirect(t *testing.T, i int, got Redirect, want expectedRedirect, minimal bool) {
	t.Helper()
	check := func(field string, g, w any) {
		t.Helper()
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("rule %d %s = %v, want %v", i, field, g, w)
		}
	}
	check("from", got.From, want.From)
	if !minimal {
		wantPath, wantHost := "", ""
		if want.Path != nil {
			wantPath = *want.Path
		}
		if want.Host != nil {
			wantHost = *want.Host
		}
		check("path", got.Path, wantPath)
		check("host", got.Host, wantHost)
	}
	// scheme is not modeled: a domain-level rule matches its host over
	// HTTP and HTTPS alike.
	check("to", got.To, want.To)
	wantStatus := 301 // upstream leaves it undefined: the platform default
	if want.Status != nil {
		wantStatus = *want.Status
	}
	check("status", got.Status, wantStatus)
	check("force", got.Force, want.Force)
	if want.Proxy != nil {
		check("proxy", got.Proxy, *want.Proxy)
	}
	check("query", nonEmpty(got.Query), nonEmpty(want.Query))
	check("headers", nonEmpty(got.Headers), nonEmpty(want.Headers))
	check("signed", got.Signed, want.Signed)
	// Condition values stay as written ("US"); matching ignores case.
	gotConds := map[string][]string{}
	for k, v := range map[string][]string{"Country": got.Conditions.Country, "Language": got.Conditions.Language, "Role": got.Conditions.Role} {
		if len(v) > 0 {
			gotConds[k] = v
		}
	}
	if want.Conditions == nil {
		want.Conditions = map[string][]string{}
	}
	check("conditions", gotConds, want.Conditions)
	if got.Source == "" || got.Line <= 0 {
		t.Errorf("rule %d has source %q line %d, want both set", i, got.Source, got.Line)
	}
}

// TestConformanceMatching runs the matching cases of the tests of
// Netlify's own redirector (netlify_redirector: test_simple_match,
// test_match_on_splat, test_redirect_with_inner_named_match_when_no_page_is_found,
// test_complex_rules_for_country_and_language_based_redirects,
// test_a_language_redirect_to_absolute_path and the 200 rules of
// test_redirector_with_wildcard_roles), as data. Their X-Language becomes
// Accept-Language and their X-Country the country header; Role conditions
// are left out (sitehost has no identities).
func TestConformanceMatching(t *testing.T) {
	lang := func(v string) http.Header { return http.Header{"Accept-Language": {v}} }
	const geo = `/ /china 302 Country=cn
/ /india 302 Country=in
/china/* /china/cn-zh/:splat 302 Language=zh
/* /cn-zh/:splat 302 Language=zh`
	const au = "/* http://www.example.com/au/:splat 302 Country=au"
	tests := []matchCase{
		{name: "simple", rules: "/home /", req: Request{Path: "/home"}, wantLine: 1, wantTo: "/", status: 301},
		{name: "simple, trailing slash", rules: "/home /", req: Request{Path: "/home/"}, wantLine: 1, wantTo: "/"},
		{name: "simple, below", rules: "/home /", req: Request{Path: "/home/s"}},
		{name: "simple, longer", rules: "/home /", req: Request{Path: "/homes"}},
		{name: "splat rewrite", rules: "/* /index.html 200", req: Request{Path: "/r/pics", RawQuery: "t=all"}, wantLine: 1, wantTo: "/index.html?t=all", status: 200},
		{name: "splat", rules: "/news/* /blog/:splat 301", req: Request{Path: "/news/article"}, wantLine: 1, wantTo: "/blog/article"},
		{name: "splat, bare", rules: "/news/* /blog/:splat 301", req: Request{Path: "/news"}, wantLine: 1, wantTo: "/blog/"},
		{name: "inner placeholder", rules: "/:locale/blog /:locale/blog/1", req: Request{Path: "/de/blog"}, wantLine: 1, wantTo: "/de/blog/1"},

		{name: "geo, nothing known", rules: geo, req: Request{Path: "/"}},
		{name: "geo, country", rules: geo, req: Request{Path: "/", Country: "cn"}, wantLine: 1, wantTo: "/china"},
		{name: "geo, country before language", rules: geo, req: Request{Path: "/", Country: "cn", Header: lang("cn")}, wantLine: 1, wantTo: "/china"},
		{name: "geo, language", rules: geo, req: Request{Path: "/", Country: "us", Header: lang("zh")}, wantLine: 4, wantTo: "/cn-zh/"},
		{name: "geo, other language", rules: geo, req: Request{Path: "/china", Header: lang("en")}},
		{name: "geo, bare prefix", rules: geo, req: Request{Path: "/china", Header: lang("zh")}, wantLine: 3, wantTo: "/china/cn-zh/"},
		{name: "geo, target, other language", rules: geo, req: Request{Path: "/china/cn-zh", Header: lang("en")}},
		{name: "geo, below, other language", rules: geo, req: Request{Path: "/china/something", Header: lang("en")}},
		{name: "geo, below", rules: geo, req: Request{Path: "/china/something", Header: lang("zh")}, wantLine: 3, wantTo: "/china/cn-zh/something"},
		// The loop: already under the target, so no redirect at all
		// (neither /china/cn-zh/cn-zh/something nor line 4's).
		{name: "geo, already there", rules: geo, req: Request{Path: "/china/cn-zh/something", Header: lang("zh")}},

		{name: "absolute, no country", rules: au, req: Request{Host: "www.example.com", Scheme: "http", Path: "/"}},
		{name: "absolute", rules: au, req: Request{Host: "www.example.com", Scheme: "http", Path: "/", Country: "au"}, wantLine: 1, wantTo: "http://www.example.com/au/"},
		{name: "absolute, already there", rules: au, req: Request{Host: "www.example.com", Scheme: "http", Path: "/au", Country: "au"}},

		{name: "self rewrite", rules: "/membership/ /membership/ 200", req: Request{Path: "/membership/"}, wantLine: 1, wantTo: "/membership/", status: 200},
		{name: "splat rewrite into itself", rules: "/member/* /member/:splat 200", req: Request{Path: "/member/users"}, wantLine: 1, wantTo: "/member/users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustMatcher(t, tt.rules)
			got, ok := m.Match(&tt.req, tt.forced)
			switch {
			case tt.wantLine == 0 && ok:
				t.Fatalf("matched line %d (to %q), want no match", got.Rule.Line, got.To)
			case tt.wantLine == 0:
			case !ok:
				t.Fatalf("no match, want line %d to %q", tt.wantLine, tt.wantTo)
			case got.Rule.Line != tt.wantLine || got.To != tt.wantTo:
				t.Errorf("matched line %d to %q, want line %d to %q", got.Rule.Line, got.To, tt.wantLine, tt.wantTo)
			case tt.status != 0 && got.Rule.Status != tt.status:
				t.Errorf("status %d, want %d", got.Rule.Status, tt.status)
			}
		})
	}
}

type errorCase struct {
	Suite  string     `json:"suite"`
	Name   string     `json:"name"`
	Inputs caseInputs `json:"inputs"`
	Regex  string     `json:"error_message_regex"`
}

// check requires an error matching the upstream regexp which, unless it
// is about reading the file, names its line.
func (c errorCase) check(t *testing.T, errs []Error) {
	t.Helper()
	re := regexp.MustCompile(c.Regex)
	readErr := strings.HasPrefix(c.Name, "invalid_dir")
	for _, e := range errs {
		if re.MatchString(e.Message) && (readErr || e.Line > 0) {
			return
		}
	}
	t.Errorf("no error matching %q with a line; got %v", c.Regex, errs)
}

type expectedHeaderRule struct {
	For    string            `json:"for"`
	Values map[string]string `json:"values"`
}

func TestConformanceHeaders(t *testing.T) {
	dir := fixtures(t)
	var file struct {
		Cases []struct {
			Suite    string               `json:"suite"`
			Name     string               `json:"name"`
			Inputs   caseInputs           `json:"inputs"`
			Expected []expectedHeaderRule `json:"expected"`
		} `json:"cases"`
		ErrorCases []errorCase `json:"error_cases"`
	}
	readJSON(t, filepath.Join(dir, "headers-parse-cases.json"), &file)
	if len(file.Cases) == 0 || len(file.ErrorCases) == 0 {
		t.Fatal("no cases in headers-parse-cases.json")
	}
	for _, c := range file.Cases {
		t.Run(c.Suite+"/"+c.Name, func(t *testing.T) {
			skipInline(t, c.Inputs)
			got, errs := parseHeaderInputs(t, dir, c.Inputs)
			for _, e := range errs {
				// Upstream skips a line without ":" silently; sitehost
				// reports it and skips it too.
				if !(c.Name == "no_colon" && strings.Contains(e.Message, "neither a path")) {
					t.Errorf("unexpected error: %v", e)
				}
			}
			if len(got) != len(c.Expected) {
				t.Fatalf("got %d rules, want %d: %+v", len(got), len(c.Expected), got)
			}
			for i, want := range c.Expected {
				if got[i].For != want.For {
					t.Errorf("rule %d for = %q, want %q", i, got[i].For, want.For)
				}
				// Upstream joins repeated values with ", ".
				values := map[string]string{}
				for _, h := range got[i].Values {
					values[h.Name] = strings.Join(h.Values, ", ")
				}
				if fmt.Sprint(values) != fmt.Sprint(want.Values) {
					t.Errorf("rule %d values = %v, want %v", i, values, want.Values)
				}
			}
		})
	}
	for _, c := range file.ErrorCases {
		t.Run("error/"+c.Suite+"/"+c.Name, func(t *testing.T) {
			skipInline(t, c.Inputs)
			_, errs := parseHeaderInputs(t, dir, c.Inputs)
			c.check(t, errs)
		})
	}
}

// TestConformanceForRegexp checks header path matching against the
// regexps upstream builds from `for` patterns, on paths made from each
// pattern's own pieces.
func TestConformanceForRegexp(t *testing.T) {
	dir := fixtures(t)
	var file struct {
		Cases []struct {
			Name     string `json:"name"`
			For      string `json:"for"`
			Expected string `json:"expected_for"`
			Regexp   string `json:"expected_regexp"`
			Flags    string `json:"flags"`
		} `json:"for_regexp_cases"`
	}
	readJSON(t, filepath.Join(dir, "headers-parse-cases.json"), &file)
	if len(file.Cases) == 0 {
		t.Fatal("no for_regexp_cases")
	}
	for _, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.Flags != "iu" {
				t.Fatalf("flags %q: the conversion below assumes iu", c.Flags)
			}
			re := regexp.MustCompile(jsToGoRegexp(c.Regexp))

			// netlify.toml trims `for` as upstream does.
			toml := fmt.Sprintf("[[headers]]\nfor = %s\n[headers.values]\nX-Test = \"yes\"\n", tomlString(c.For))
			_, hs, errs := ParseNetlifyTOML([]byte(toml))
			if len(errs) > 0 || len(hs) != 1 {
				t.Fatalf("parsing %q: %v %v", toml, hs, errs)
			}
			if hs[0].For != c.Expected {
				t.Errorf("for = %q, want %q", hs[0].For, c.Expected)
			}

			m := NewHeaderMatcher([]HeaderRule{{For: c.For, Values: []Header{{Name: "X-Test", Values: []string{"yes"}}}}})
			paths := samplePaths(c.For)
			matched := 0
			for _, p := range paths {
				h := http.Header{}
				m.Apply(h, p)
				got, want := h.Get("X-Test") == "yes", re.MatchString(p)
				if got != want {
					t.Errorf("path %q: matched = %v, upstream regexp %s says %v", p, got, c.Regexp, want)
				}
				if want {
					matched++
				}
			}
			if matched == 0 {
				t.Errorf("no sample path matches %s: the samples test nothing", c.Regexp)
			}
		})
	}
}

// jsToGoRegexp converts the regexps upstream prints (flags iu) to Go
// syntax: "." must not match any JavaScript line terminator, and the i
// flag becomes (?i).
func jsToGoRegexp(js string) string {
	var b strings.Builder
	b.WriteString("(?i)")
	inClass := false
	for i := 0; i < len(js); i++ {
		c := js[i]
		switch {
		case c == '\\' && i+1 < len(js):
			b.WriteString(js[i : i+2])
			i++
		case c == '[':
			inClass = true
			b.WriteByte(c)
		case c == ']':
			inClass = false
			b.WriteByte(c)
		case c == '.' && !inClass:
			b.WriteString(`[^\n\r\x{2028}\x{2029}]`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// samplePaths builds request paths around a pattern: its parts, in other
// cases, with segments added, removed and doubled, trailing slashes and
// line terminators.
func samplePaths(forPath string) []string {
	var parts []string
	for _, p := range strings.Split(forPath, "/") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	fill := func(p, star string) string {
		if strings.HasPrefix(p, ":") {
			return "seg"
		}
		return strings.ReplaceAll(p, "*", star)
	}
	var out []string
	add := func(ps ...string) {
		for _, p := range ps {
			out = append(out, p, p+"/", p+"//", strings.ToUpper(p), p+"x", p+"/x", "/x"+p, p+"\n")
		}
	}
	add("", "/", "//", "/a", "/A", "/ab", "/a/b", "/a/b/c", "/a/x/b", "/a//b", "/ a", "/a.", "/ab.", "/abc",
		"/a/bc", "/a/bxc", "/a/bx/yc", "/b", "/x/a", "/x/y/a", "/a/\n/b", "/a/b\rc", "/\u212a", "/k", "/seg/seg")
	for _, star := range []string{"", "z", "z/y", "\n", "/"} {
		filled := make([]string, len(parts))
		for i, p := range parts {
			filled[i] = fill(p, star)
		}
		joined := "/" + strings.Join(filled, "/")
		add(joined, strings.ReplaceAll(joined, "/", "//"))
		for i := range filled {
			add("/" + strings.Join(slices.Delete(slices.Clone(filled), i, i+1), "/"))
			add("/" + strings.Join(slices.Insert(slices.Clone(filled), i, "q"), "/"))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// tomlString quotes s as a TOML basic string; JSON's escapes are valid
// TOML ones for the strings used here.
func tomlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
