package rules

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func mustHeaderMatcher(t testing.TB, headers string) *HeaderMatcher {
	t.Helper()
	hs, errs := ParseHeaders([]byte(headers))
	if len(errs) > 0 {
		t.Fatalf("parsing headers: %v", errs)
	}
	return NewHeaderMatcher(hs)
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		headers string
		path    string
		before  http.Header // the server's defaults
		want    http.Header
	}{
		{
			name:    "replaces the server default",
			headers: "/*\n  Cache-Control: public, max-age=31536000",
			path:    "/app.js",
			before:  http.Header{"Cache-Control": {"public, max-age=0, must-revalidate"}, "Etag": {`"x"`}},
			want:    http.Header{"Cache-Control": {"public, max-age=31536000"}, "Etag": {`"x"`}},
		},
		{
			name:    "repeated name in a block is multi-value",
			headers: "/*\n  Link: </a.css>; rel=preload\n  Link: </b.js>; rel=preload",
			path:    "/",
			want:    http.Header{"Link": {"</a.css>; rel=preload", "</b.js>; rel=preload"}},
		},
		{
			name:    "several rules accumulate, without repeats",
			headers: "/*\n  X-Robots-Tag: noindex\n/admin/*\n  X-Robots-Tag: nofollow\n  X-Robots-Tag: noindex",
			path:    "/admin/x",
			before:  http.Header{"X-Robots-Tag": {"default"}},
			want:    http.Header{"X-Robots-Tag": {"noindex", "nofollow"}},
		},
		{
			name:    "rules apply in order",
			headers: "/a\n  X-Order: literal\n/*\n  X-Order: splat",
			path:    "/a",
			want:    http.Header{"X-Order": {"literal", "splat"}},
		},
		{
			name:    "rules apply in order, splat first",
			headers: "/*\n  X-Order: splat\n/a\n  X-Order: literal",
			path:    "/a",
			want:    http.Header{"X-Order": {"splat", "literal"}},
		},
		{
			name:    "path match ignores case",
			headers: "/Docs/Intro\n  X-A: 1\n/BLOG/*\n  X-B: 2",
			path:    "/docs/INTRO/",
			want:    http.Header{"X-A": {"1"}},
		},
		{
			name:    "splat ignores case too",
			headers: "/BLOG/*\n  X-B: 2",
			path:    "/blog/post",
			want:    http.Header{"X-B": {"2"}},
		},
		{
			name:    "splat matches below and the bare path",
			headers: "/blog/*\n  X-B: 2",
			path:    "/blog",
			want:    http.Header{"X-B": {"2"}},
		},
		{
			name:    "splat after a slash also matches a longer name (upstream's regexp)",
			headers: "/blog/*\n  X-B: 2",
			path:    "/blogroll",
			want:    http.Header{"X-B": {"2"}},
		},
		{
			name:    "placeholder is one segment",
			headers: "/u/:id\n  X-U: 1",
			path:    "/u/a/b",
			want:    http.Header{},
		},
		{
			name:    "placeholder",
			headers: "/u/:id/edit\n  X-U: 1",
			path:    "/u/42/edit",
			want:    http.Header{"X-U": {"1"}},
		},
		{
			name:    "star inside a segment",
			headers: "/assets/*.css\n  Content-Type: text/css",
			path:    "/assets/a/b.css",
			want:    http.Header{"Content-Type": {"text/css"}},
		},
		{
			name:    "no match leaves defaults",
			headers: "/a\n  X-A: 1",
			path:    "/b",
			before:  http.Header{"X-A": {"0"}},
			want:    http.Header{"X-A": {"0"}},
		},
		{
			name:    "same path blocks collapse, later value wins",
			headers: "/a\n  X-A: one\n  X-B: b\n/a\n  x-a: three",
			path:    "/a",
			want:    http.Header{"X-A": {"three"}, "X-B": {"b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustHeaderMatcher(t, tt.headers)
			h := tt.before.Clone()
			if h == nil {
				h = http.Header{}
			}
			m.Apply(h, tt.path)
			if fmt.Sprint(h) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", h, tt.want)
			}
		})
	}
}

func TestApplyDoesNotLeakStorage(t *testing.T) {
	m := mustHeaderMatcher(t, "/*\n  X-A: 1")
	h := http.Header{}
	m.Apply(h, "/")
	h.Add("X-A", "2") // must not write into the matcher's slice
	h2 := http.Header{}
	m.Apply(h2, "/")
	if got := h2.Values("X-A"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("second Apply sees %v", got)
	}
}

func TestHeaderMatcherEmpty(t *testing.T) {
	if !NewHeaderMatcher(nil).Empty() {
		t.Error("no rules: not empty")
	}
	var nilM *HeaderMatcher
	if !nilM.Empty() {
		t.Error("nil: not empty")
	}
	nilM.Apply(http.Header{}, "/") // must not panic
	if mustHeaderMatcher(t, "/a\n  X: 1").Empty() {
		t.Error("one rule: empty")
	}
}

func TestForbiddenHeaders(t *testing.T) {
	hs, errs := ParseHeaders([]byte("/*\n  Content-Length: 5\n  X-Ok: yes\n  transfer-encoding: chunked\n  Content-Encoding: br\n  Connection: close\n/only\n  Upgrade: h2c\n  Basic-Auth: admin:hunter2\n"))
	if len(hs) != 1 || len(hs[0].Values) != 1 || hs[0].Values[0].Name != "X-Ok" {
		t.Errorf("rules = %+v, want only X-Ok kept", hs)
	}
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if !slices.Equal(lines, []int{2, 4, 5, 6, 8, 9}) {
		t.Errorf("errors on lines %v: %v", lines, errs)
	}
	if !strings.Contains(errs[0].Message, "Content-Length") {
		t.Errorf("error does not name the header: %v", errs[0])
	}
	if last := errs[len(errs)-1]; !strings.Contains(last.Message, "not protected") || strings.Contains(last.Message, "hunter2") {
		t.Errorf("Basic-Auth error = %v: must say the path is unprotected, never echo the password", last)
	}

	_, th, terrs := ParseNetlifyTOML([]byte("[[headers]]\nfor = \"/*\"\n[headers.values]\nKeep-Alive = \"timeout=5\"\nX-Ok = [\"a\", \"b\"]\n"))
	if len(th) != 1 || len(th[0].Values) != 1 || !slices.Equal(th[0].Values[0].Values, []string{"a", "b"}) {
		t.Errorf("toml rules = %+v", th)
	}
	if len(terrs) != 1 || terrs[0].Line != 1 || !strings.Contains(terrs[0].Message, "Keep-Alive") {
		t.Errorf("toml errors = %v", terrs)
	}
}
