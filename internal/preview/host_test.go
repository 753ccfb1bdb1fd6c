package preview

import (
	"testing"

	"github.com/sitehost/sitehost/internal/site"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		host string
		ok   bool
		want Target
	}{
		{"pr-7--blog.localhost", true, Target{Kind: KindPull, Site: "blog", Channel: "pr-7"}},
		{"staging--blog.localhost", true, Target{Kind: KindBranch, Site: "blog", Channel: "branch-staging"}},
		{"feature-x--my-blog.localhost", true, Target{Kind: KindBranch, Site: "my-blog", Channel: "branch-feature-x"}},
		{"0123456789abcdef--blog.localhost", true, Target{Kind: KindPermalink, Site: "blog", Deploy: "0123456789abcdef"}},
		{"pr-07--blog.localhost", true, Target{Kind: KindBranch, Site: "blog", Channel: "branch-pr-07"}},
		{"blog.localhost", false, Target{}},
		{"--blog.localhost", false, Target{}},
		{"pr-7--blog.example.com", false, Target{}},
		{"a.pr-7--blog.localhost", false, Target{}},
		{"pr-7--Blog.localhost", false, Target{}},
		{"x--bad--.localhost", false, Target{}},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, ok := ParseHost(tt.host, "localhost")
			if ok != tt.ok || got != tt.want {
				t.Fatalf("ParseHost(%q) = %+v, %v; want %+v, %v", tt.host, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHostsRoundTrip(t *testing.T) {
	for _, c := range []site.Channel{site.PullRequest(12), site.Branch("Feature/Login")} {
		h := ChannelHost(c, "docs", "preview.example.org")
		got, ok := ParseHost(h, "preview.example.org")
		if !ok || got.Channel != c || got.Site != "docs" {
			t.Errorf("%s: host %q parsed to %+v, %v", c, h, got, ok)
		}
	}
	h := PermalinkHost("abcdef0123456789", "docs", "localhost")
	if got, ok := ParseHost(h, "localhost"); !ok || got.Deploy != "abcdef0123456789" {
		t.Errorf("permalink %q parsed to %+v, %v", h, got, ok)
	}
	if ChannelHost(site.Production, "docs", "localhost") != "" {
		t.Error("production has no preview host")
	}
}
