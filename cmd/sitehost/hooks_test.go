package main

import (
	"log/slog"
	"testing"

	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/hooks"
)

// TestRepoSitesBitbucketProject: the resolver serve uses finds a site by
// the host-less path a Bitbucket Data Center payload without clone links
// names its repository by, and still by its URLs.
func TestRepoSitesBitbucketProject(t *testing.T) {
	cfg := &config.Config{Sites: []config.Site{
		{Name: "docs", Repo: "ssh://git@bb.example.com:7999/docs/manual.git", Webhook: config.Webhook{SecretEnv: "DOCS_SECRET"}},
		{Name: "blog", Repo: "https://github.com/acme/blog"},
	}}
	getenv := func(k string) string { return map[string]string{"DOCS_SECRET": "s3cret"}[k] }
	r := newRepoSites(cfg, getenv, slog.New(slog.DiscardHandler))
	for _, tt := range []struct {
		urls []string
		want string
	}{
		{[]string{"/projects/DOCS/repos/manual"}, "docs"},
		{[]string{"https://bb.example.com/scm/docs/manual.git", "ssh://git@bb.example.com:7999/docs/manual.git"}, "docs"},
		{[]string{"/projects/ACME/repos/blog"}, ""},
		{[]string{"https://github.com/acme/blog.git"}, "blog"},
	} {
		got := r.SitesForRepo(tt.urls)
		switch {
		case tt.want == "" && len(got) != 0:
			t.Errorf("SitesForRepo(%q) = %v, want none", tt.urls, got)
		case tt.want != "" && (len(got) != 1 || string(got[0].Name) != tt.want):
			t.Errorf("SitesForRepo(%q) = %v, want %s once", tt.urls, got, tt.want)
		case tt.want == "docs" && got[0] != (hooks.SiteSecret{Name: "docs", Secret: "s3cret"}):
			t.Errorf("SitesForRepo(%q) = %v, want docs with its secret", tt.urls, got)
		}
	}
}
