package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/site"
)

// healSample is how many files of each live deploy self-heal reads back,
// besides the home page and 404.html.
const healSample = 20

// heal checks every live channel of a site against the store and rebuilds
// the ones found missing or corrupt (drift). It returns the repairs that
// failed; a store it cannot read is left to the next check.
func (l *Loop) heal(ctx context.Context, w *worker) (failures []error) {
	channels, err := l.opts.Publisher.Channels(ctx, w.spec.Name)
	if err != nil {
		w.log.Warn("self-heal could not list channels", "err", err)
		return nil // the store is down: the next check will tell
	}
	for c := range channels {
		_, problems, err := l.opts.Publisher.Verify(ctx, w.spec.Name, c, healSample)
		if errors.Is(err, manifest.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			w.log.Warn("self-heal could not check a channel", "channel", c, "err", err)
			continue
		}
		if len(problems) == 0 {
			continue
		}
		ptr := channels[c]
		w.log.Warn("drift: live deploy damaged in storage; rebuilding it", "channel", c, "deploy", ptr.Deploy,
			"commit", ptr.Commit.Short(), "problems", problems)
		if err := l.repair(ctx, w, c, ptr, problems); err != nil {
			w.log.Error("self-heal repair failed", "channel", c, "deploy", ptr.Deploy, "kind", fault.KindOf(err), "err", err)
			failures = append(failures, err)
		}
	}
	return failures
}

// repair rebuilds the commit a channel serves and republishes it, writing
// every object again. With unchanged settings the deploy ID is the same
// and the pointer does not move; with changed ones the rebuilt deploy of
// the same commit goes live.
func (l *Loop) repair(ctx context.Context, w *worker, c site.Channel, ptr manifest.Pointer, problems []string) error {
	p, ok := l.planFor(w, c, job{ref: string(ptr.Commit)})
	if !ok {
		return fmt.Errorf("channel %s is no longer wanted", c)
	}
	p.ref = string(ptr.Commit)
	a := l.newAttempt(w, c, p, ptr.Commit)
	a.repair, a.live = true, ptr
	a.e.Logf("Self-heal: the live deploy %s is damaged in storage (%s); rebuilding %s and writing it again", ptr.Deploy, strings.Join(problems, "; "), ptr.Commit.Short())
	err := a.run(ctx, repairSteps)
	a.end(err)
	return err
}
