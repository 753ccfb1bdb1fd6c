package hugochild

import (
	"testing"

	"github.com/gohugoio/hugo/common/hugo"

	"github.com/sitehost/sitehost/internal/build"
)

// The build key names the Hugo version; it must be the one compiled in.
func TestHugoVersionMatches(t *testing.T) {
	if got := hugo.CurrentVersion.String(); got != build.HugoVersion {
		t.Fatalf("build.HugoVersion = %q, compiled-in Hugo is %q", build.HugoVersion, got)
	}
}
