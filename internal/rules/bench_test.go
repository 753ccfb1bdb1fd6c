package rules

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(b *testing.B, rel string) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(fixtures(b), rel))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

const (
	large45000   = "build/redirect-parser/fixtures/redirects_file/large_45000_redirects_file"
	largeHeaders = "build/headers-parser/fixtures/headers_file/large_headers_file"
)

func BenchmarkParse45000(b *testing.B) {
	data := readFixture(b, large45000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rs, errs := ParseRedirects(data)
		if len(rs) != 45000 || len(errs) > 0 {
			b.Fatalf("%d rules, %v", len(rs), errs)
		}
	}
}

func BenchmarkNewMatcher45000(b *testing.B) {
	rs, _ := ParseRedirects(readFixture(b, large45000))
	b.ReportAllocs()
	for b.Loop() {
		NewMatcher(rs)
	}
}

func BenchmarkMatch45000(b *testing.B) {
	rs, _ := ParseRedirects(readFixture(b, large45000))
	last := rs[len(rs)-1] // the file is shuffled: its last line is a literal rule near the end
	var patterns strings.Builder
	for i := range 100 {
		fmt.Fprintf(&patterns, "/p%d/:id/* /x/:id/:splat 200\n/blog%d/* /b/:splat\n", i, i)
	}
	extra, _ := ParseRedirects([]byte(patterns.String()))
	withPatterns := append(append([]Redirect{}, extra[:100]...), append(rs, extra[100:]...)...)

	for _, m := range []struct {
		name string
		m    *Matcher
	}{{"literal", NewMatcher(rs)}, {"with100patterns", NewMatcher(withPatterns)}} {
		for _, c := range []struct {
			name string
			req  Request
			hit  bool
		}{
			{"hit", Request{Host: "example.com", Path: last.Path}, true},
			{"hit-trailing-slash-query", Request{Host: "example.com", Path: last.Path + "/", RawQuery: "utm=1"}, true},
			{"miss", Request{Host: "example.com", Path: "/base/some-x/y"}, false},
		} {
			b.Run(m.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, ok := m.m.Match(&c.req, false); ok != c.hit {
						b.Fatalf("match = %v", ok)
					}
				}
			})
		}
	}
	b.Run("with100patterns/pattern-hit", func(b *testing.B) {
		m := NewMatcher(withPatterns)
		req := Request{Path: "/p50/42/a/b"}
		b.ReportAllocs()
		for b.Loop() {
			if got, ok := m.Match(&req, false); !ok || got.To != "/x/42/a/b" {
				b.Fatalf("got %q %v", got.To, ok)
			}
		}
	})
}

func BenchmarkHeadersLarge(b *testing.B) {
	hs, errs := ParseHeaders(readFixture(b, largeHeaders))
	if len(errs) > 0 || len(hs) < 1000 {
		b.Fatalf("%d rules, %v", len(hs), errs)
	}
	m := NewHeaderMatcher(hs)
	for _, c := range []struct{ name, path string }{
		{"hit", hs[len(hs)-1].For},
		{"miss", "/base/none/x.html"},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := http.Header{}
			b.ReportAllocs()
			for b.Loop() {
				m.Apply(h, c.path)
			}
		})
	}
	b.Run("with-patterns/hit", func(b *testing.B) {
		more := append([]HeaderRule{
			{For: "/*", Values: []Header{{Name: "X-Frame-Options", Values: []string{"DENY"}}}},
			{For: "/base/*", Values: []Header{{Name: "Cache-Control", Values: []string{"no-cache"}}}},
			{For: "/assets/*.css", Values: []Header{{Name: "X-Css", Values: []string{"1"}}}},
			{For: "/u/:id/edit", Values: []Header{{Name: "X-U", Values: []string{"1"}}}},
		}, hs...)
		m := NewHeaderMatcher(more)
		path := hs[len(hs)-1].For
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			m.Apply(h, path)
		}
	})
}
