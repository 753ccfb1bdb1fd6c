package reconcile

import (
	"slices"
	"testing"

	"github.com/sitehost/sitehost/internal/site"
)

func TestNetlifyContexts(t *testing.T) {
	for _, tt := range []struct {
		c    site.Channel
		ref  string
		want []string
	}{
		{site.Production, "main", []string{"production", "main"}},
		{site.Production, "refs/heads/trunk", []string{"production", "trunk"}},
		{site.Production, "v1.*", []string{"production"}},
		{site.Production, "refs/tags/v1.2.0", []string{"production"}},
		{site.Production, "0123456789abcdef0123456789abcdef01234567", []string{"production"}},
		{site.Branch("staging"), "refs/heads/staging", []string{"branch-deploy", "staging"}},
		{site.Branch("feature/x"), "refs/heads/feature/x", []string{"branch-deploy", "feature/x"}},
		{site.PullRequest(7), "", []string{"deploy-preview"}},
		{site.PullRequest(7), "refs/heads/feature", []string{"deploy-preview", "feature"}},
	} {
		if got := netlifyContexts(tt.c, tt.ref); !slices.Equal(got, tt.want) {
			t.Errorf("netlifyContexts(%s, %q) = %v, want %v", tt.c, tt.ref, got, tt.want)
		}
	}
}
