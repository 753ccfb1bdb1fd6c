package reconcile

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/npm"
	"github.com/sitehost/sitehost/internal/site"
)

// npmLock is the build key's part for the site's npm lockfile: the sha256
// of its content, as the install cache is keyed ("" when it has none). The
// tree hash covers it already; the key names it anyway, as it names the
// Hugo version.
func npmLock(repo *gitsrc.Repo, commit site.Commit, sitePath string) (string, error) {
	for _, name := range npm.Lockfiles {
		p := path.Join(sitePath, name)
		data, _, err := repo.ReadFile(commit, p, npm.MaxLockfile)
		switch {
		case errors.Is(err, gitsrc.ErrPathNotFound):
			continue
		case errors.Is(err, gitsrc.ErrTooLarge):
			return "", fault.Stalled(fmt.Errorf("%s is larger than %d MiB", p, npm.MaxLockfile>>20))
		case err != nil:
			return "", fmt.Errorf("reading %s: %w", p, err)
		}
		return npm.Hash(data), nil
	}
	return "", nil
}

// installNPM gives the export at src the node_modules its lockfile
// describes (package npm), and says where they came from.
func (a *attempt) installNPM(ctx context.Context, src string) error {
	if a.l.opts.NPM == nil || a.p.settings.Tool == build.ToolNone {
		return nil
	}
	res, err := a.l.opts.NPM.Install(ctx, string(a.w.spec.Name), src, a.p.untrusted)
	if err != nil {
		return err // npm's own message, marked stalled or transient
	}
	if res.Skipped != "" {
		a.e.Logf("npm: %s", res.Skipped)
		return nil
	}
	if res.Lockfile == "" {
		return nil
	}
	from := "installed with npm ci (no install scripts)"
	if res.Cached {
		from = "the install cached for this lockfile"
	}
	a.e.Logf("npm: node_modules from %s (%s sha256 %.12s, %d packages) in %s", from, res.Lockfile, res.Hash, res.Packages, roundDur(res.Took))
	if res.Sandbox != "" {
		a.e.Logf("npm: npm ci ran in: %s", res.Sandbox)
	}
	return nil
}
