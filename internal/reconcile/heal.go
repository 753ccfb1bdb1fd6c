package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
)

// healSample is how many files of each live deploy self-heal reads back,
// besides the home page and 404.html.
const healSample = 20

// heal checks every live channel of a site against the store and rebuilds
// the ones found missing or corrupt (drift). It reports whether a
// transient failure wants a retry.
func (l *Loop) heal(ctx context.Context, w *worker) (retry bool) {
	channels, err := l.opts.Publisher.Channels(ctx, w.spec.Name)
	if err != nil {
		w.log.Warn("self-heal could not list channels", "err", err)
		return false // the store is down: the next check will tell
	}
	for c := range channels {
		_, problems, err := l.opts.Publisher.Verify(ctx, w.spec.Name, c, healSample)
		if errors.Is(err, publish.ErrNotFound) {
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
			w.log.Error("self-heal repair failed", "channel", c, "deploy", ptr.Deploy, "err", err)
			retry = true
			continue
		}
		w.mu.Lock()
		w.status.Repairs++
		w.mu.Unlock()
		w.log.Info("self-heal repaired the live deploy", "channel", c, "deploy", ptr.Deploy)
	}
	return retry
}

// repair rebuilds the commit a channel serves and republishes it, writing
// every object again. With unchanged settings the deploy ID is the same
// and the pointer does not move; with changed ones the rebuilt deploy of
// the same commit goes live.
func (l *Loop) repair(ctx context.Context, w *worker, c site.Channel, ptr publish.Pointer, problems []string) (err error) {
	p, ok := l.planFor(w, c, job{ref: string(ptr.Commit)})
	if !ok {
		return fmt.Errorf("channel %s is no longer wanted", c)
	}
	p.ref = string(ptr.Commit)
	e := l.opts.Journal.Start(w.spec.Name, c, ptr.Commit)
	e.Logf("Self-heal: the live deploy %s is damaged in storage (%s); rebuilding %s and writing it again", ptr.Deploy, strings.Join(problems, "; "), ptr.Commit.Short())
	defer func() {
		if err != nil {
			finish(e, err, false)
		}
	}()
	t := time.Now()
	commit, err := w.repo.Fetch(ctx, p.ref)
	if err != nil {
		return err
	}
	info, err := w.repo.CommitInfo(commit)
	if err != nil {
		return err
	}
	e.Update(func(s *journal.Snapshot) {
		s.Subject, s.Author, s.CommitTime, s.Timings.Fetch = info.Subject, info.Author, info.Time, time.Since(t)
	})
	key, toml, err := buildKey(w, commit, p)
	if err != nil {
		return err
	}
	e.Update(func(s *journal.Snapshot) { s.Deploy = publish.DeployIDFor(key) })
	m, err := l.exportAndBuild(ctx, w, c, p, commit, info, key, toml, true, e)
	if err != nil {
		return err
	}
	t = time.Now()
	if _, err = l.opts.Publisher.Activate(ctx, w.spec.Name, c, m, publish.Cause{Kind: manifest.Repaired, Commit: commit}); err != nil {
		return err
	}
	e.Update(func(s *journal.Snapshot) { s.Timings.Publish = time.Since(t) })
	e.Logf("Repaired: live on %s again", c)
	e.Finish(journal.Live, nil, false)
	return nil
}
