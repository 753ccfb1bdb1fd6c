package reconcile

import (
	"context"
	"fmt"
	"os"

	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/site"
)

// LocalBuild is what BuildLocal made.
type LocalBuild struct {
	Commit   site.Commit
	BuildKey string
	Deploy   site.DeployID // the deploy ID the server would give it
	Files    int
	Log      []byte // the build log, as the server's journal would have it
}

// localSteps are the deploy's steps up to the build: what `sitehost build`
// runs, so a checkout builds as the server would build it.
var localSteps = []step{
	{journal.StepFetch, (*attempt).fetch},
	{journal.StepSources, (*attempt).resolveSources},
	{journal.StepKey, (*attempt).computeKey},
	{journal.StepBuild, (*attempt).build},
}

// BuildLocal builds ref of the site name as its production channel would
// be built — same fetch, export, key and sandboxed build — and moves the
// output to out instead of publishing it. The loop must not be running.
func (l *Loop) BuildLocal(ctx context.Context, name site.Name, ref, out string) (LocalBuild, error) {
	w, ok := l.worker(name)
	if !ok {
		return LocalBuild{}, fmt.Errorf("%w %q", ErrUnknownSite, name)
	}
	p, _ := l.planFor(w, site.Production, job{})
	if ref != "" {
		p.ref = ref
	}
	a := l.newAttempt(w, site.Production, p, "")
	err := a.run(ctx, append(localSteps, step{"output", func(a *attempt, _ context.Context) error {
		// Renamed out of the scratch space before run removes it.
		if err := os.Rename(a.result.Dir, out); err != nil {
			return fmt.Errorf("moving the output to %s: %w", out, err)
		}
		return nil
	}}))
	outcome := site.OutcomeReady
	if err != nil {
		outcome = site.OutcomeFailed
	}
	a.e.Finish(outcome, err)
	lb := LocalBuild{Commit: a.commit, BuildKey: a.buildKey, Log: a.e.Log()}
	if a.buildKey != "" {
		lb.Deploy = manifest.DeployIDFor(a.buildKey)
	}
	lb.Files = a.export.Files
	return lb, err
}
