package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/site"
)

// runJobs works off one batch of requests for a site, production first. It
// returns the failures, each marked with its fault.Kind, for the retry
// decision.
func (l *Loop) runJobs(ctx context.Context, w *worker, jobs map[site.Channel]job, poll, expire bool) (failures []error) {
	channels := make([]site.Channel, 0, len(jobs))
	for c := range jobs {
		channels = append(channels, c)
	}
	slices.SortFunc(channels, site.CompareChannels)
	for _, c := range channels {
		if ctx.Err() != nil {
			return failures
		}
		var err error
		if j := jobs[c]; j.kind == jobDelete {
			err = l.deleteChannel(ctx, w, c, "its pull request was closed or its branch deleted")
		} else {
			err = l.syncChannel(ctx, w, c, j)
		}
		if err != nil {
			failures = append(failures, err)
		}
	}
	if poll && ctx.Err() == nil {
		failures = append(failures, l.pollPreviews(ctx, w)...)
	}
	if expire && ctx.Err() == nil {
		l.expirePreviews(ctx, w)
	}
	return failures
}

// plan is what one channel should be built from.
type plan struct {
	ref       string
	head      string // a pull request's head branch, when known
	settings  build.Settings
	url       string
	pinned    bool
	untrusted bool // a fork's: reads a copy of the site's Hugo cache, never writes it
}

// planFor works out a channel's ref and build settings; ok is false when
// the channel is not (or no longer) wanted.
func (l *Loop) planFor(w *worker, c site.Channel, j job) (plan, bool) {
	spec := w.spec
	p := plan{settings: spec.Build, url: l.opts.URL(spec.Name, c)}
	if p.settings.Tool != build.ToolNone {
		p.settings.Toolchain = l.opts.Toolchain
	}
	switch c.Kind() {
	case site.KindProduction:
		p.ref, p.pinned = spec.Ref, spec.Pin != ""
		if p.pinned {
			p.ref = spec.Pin
		}
	case site.KindBranch:
		for _, b := range spec.Branches {
			if site.Branch(b) == c {
				p.ref = "refs/heads/" + b
			}
		}
	case site.KindPullRequest:
		p.ref, p.head = j.ref, j.head
		p.untrusted = j.fork // whatever the secrets policy: a fork must not plant cache entries
		if j.fork {
			switch spec.Previews.Forks {
			case ForksOff:
				return p, false
			case ForksOn:
			default: // no-secrets: a fork's templates never see our secrets
				p.settings.SecretEnv = nil
			}
		}
	}
	return p, p.ref != ""
}

// syncChannel brings one channel to the commit its ref names. It returns
// the failure, marked with its fault.Kind, or nil.
func (l *Loop) syncChannel(ctx context.Context, w *worker, c site.Channel, j job) error {
	p, ok := l.planFor(w, c, j)
	if !ok {
		w.log.Info("not building channel", "channel", c, "reason", "not wanted (fork policy or branch no longer configured)")
		return nil
	}
	live, err := l.opts.Publisher.Pointer(ctx, w.spec.Name, c)
	if err != nil && !errors.Is(err, manifest.ErrNotFound) {
		err = fmt.Errorf("reading live pointer: %w", err)
		l.fail(w, c, "", err)
		return err
	}
	w.setLive(c, p.url, live)

	desired, err := w.repo.Resolve(ctx, p.ref)
	if err != nil {
		// A ref that does not exist is the site's to fix (gitsrc marks it
		// stalled); a network error is not.
		err = fmt.Errorf("resolving %s: %w", p.ref, err)
		l.fail(w, c, "", err)
		return err
	}
	w.mu.Lock()
	w.setChannel(c, func(cs *ChannelStatus) { cs.Desired = desired })
	failed := w.failed[c]
	w.mu.Unlock()
	switch {
	case live.Commit == desired && l.current(ctx, w, c, p, live):
		l.done(w, c, live, p.pinned)
		return nil
	case desired == failed:
		return nil // still the commit that stalled; wait for a new one
	}

	w.mu.Lock()
	w.setChannel(c, func(cs *ChannelStatus) { cs.State = site.Progressing })
	w.mu.Unlock()
	a := l.newAttempt(w, c, p, desired)
	a.maxAge, a.live = j.maxAge, live
	a.e.Logf("Deploying %s (%s) to %s of %s", desired.Short(), p.ref, c, w.spec.Name)
	err = leaseLost(ctx, a.run(ctx, deploySteps))
	if errors.Is(err, errTooOld) {
		l.opts.Journal.Discard(a.e)
		w.log.Debug("not previewing an old head", "channel", c, "commit", desired.Short())
		w.mu.Lock()
		delete(w.status.Channels, c)
		w.mu.Unlock()
		return nil
	}
	a.end(err)
	if err != nil {
		l.fail(w, c, desired, err)
		if fault.KindOf(err) != fault.KindSuperseded && ctx.Err() == nil {
			l.report(w, c, desired, site.OutcomeFailed, p.url, err.Error())
		}
	}
	return err
}

// deleteChannel removes a preview or branch channel. It returns the
// failure, or nil.
func (l *Loop) deleteChannel(ctx context.Context, w *worker, c site.Channel, why string) error {
	if c == site.Production {
		return nil
	}
	if err := l.opts.Publisher.DeleteChannel(ctx, w.spec.Name, c); err != nil {
		w.log.Error("removing channel", "channel", c, "err", err)
		return fmt.Errorf("removing channel %s: %w", c, err)
	}
	w.log.Info("removed channel", "channel", c, "why", why)
	l.report(w, c, "", site.OutcomeRemoved, "", why)
	w.mu.Lock()
	delete(w.status.Channels, c)
	delete(w.failed, c)
	w.mu.Unlock()
	return nil
}

func (l *Loop) report(w *worker, c site.Channel, commit site.Commit, state site.Outcome, url, msg string) {
	if l.opts.Reporter != nil {
		l.opts.Reporter.Report(w.spec.Name, Report{Channel: c, Commit: commit, State: state, URL: url, Message: msg})
	}
}

// setChannel edits a channel's status, mirroring production into the
// site's top-level fields. The caller holds w.mu.
func (w *worker) setChannel(c site.Channel, f func(*ChannelStatus)) {
	cs := w.status.Channels[c]
	f(&cs)
	w.status.Channels[c] = cs
	if c == site.Production {
		w.status.State, w.status.Desired = cs.State, cs.Desired
		w.status.LiveCommit, w.status.LiveDeploy = cs.LiveCommit, cs.LiveDeploy
		w.status.Error, w.status.FailedAt, w.status.LastSync = cs.Error, cs.FailedAt, cs.LastSync
	}
}

func (w *worker) setLive(c site.Channel, url string, p manifest.Pointer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setChannel(c, func(cs *ChannelStatus) {
		cs.URL, cs.LiveCommit, cs.LiveDeploy = url, p.Commit, p.Deploy
		if cs.State == "" {
			cs.State = site.OutOfSync
		}
	})
}

func (l *Loop) done(w *worker, c site.Channel, p manifest.Pointer, pinned bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setChannel(c, func(cs *ChannelStatus) {
		cs.LiveCommit, cs.LiveDeploy = p.Commit, p.Deploy
		cs.State = site.Synced
		if pinned {
			cs.State = site.Pinned
		}
		cs.Error, cs.FailedAt, cs.LastSync = "", "", l.opts.Now()
	})
	delete(w.failed, c)
}

// fail records a failed sync. The live deploy is untouched. A stalled
// failure marks the commit so it is not rebuilt until a new one arrives.
func (l *Loop) fail(w *worker, c site.Channel, commit site.Commit, err error) {
	kind := fault.KindOf(err)
	if kind == fault.KindSuperseded {
		w.log.Info("skipped publishing", "channel", c, "err", err)
		return
	}
	w.log.Error("sync failed", "channel", c, "commit", commit.Short(), "kind", kind, "err", err)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setChannel(c, func(cs *ChannelStatus) {
		cs.State, cs.Error, cs.FailedAt, cs.LastSync = site.Failed, err.Error(), commit, l.opts.Now()
	})
	if kind == fault.KindStalled {
		w.failed[c] = commit
	}
}

// writeBack records a production publish in the site's own repository, so
// the repository shows what is live and since when: a note on the commit
// or a tag sitehost/<site>/live. The site is live already; a failure is
// logged and the next publish tries again.
func (l *Loop) writeBack(ctx context.Context, w *worker, ptr manifest.Pointer, url string) {
	var err error
	switch w.spec.WriteBack {
	case "tag":
		err = w.repo.PushTag(ctx, "sitehost/"+string(w.spec.Name)+"/live", ptr.Commit)
	case "note":
		text := fmt.Sprintf("sitehost: live on production of %s at %s\ndeploy %s\nurl %s", w.spec.Name,
			ptr.PublishedAt.UTC().Format(time.RFC3339), ptr.Deploy, url)
		err = w.repo.PushNote(ctx, gitsrc.DefaultNotesRef, ptr.Commit, text)
	default:
		return
	}
	if err != nil {
		w.log.Warn("write-back failed", "mode", w.spec.WriteBack, "commit", ptr.Commit.Short(), "err", err)
		return
	}
	w.log.Info("wrote back", "mode", w.spec.WriteBack, "commit", ptr.Commit.Short())
}

// current reports whether the deploy live at the desired commit is what
// the channel's settings build now: a reload may have changed the site's
// build env, base URL (its domain) or tool, and then the commit builds to
// another key, so it must be built again although git did not move. Only
// the local git cache is read; a commit it does not have counts as
// current (it was built by another replica or before the cache was lost).
// What was checked is remembered until the pointer, the commit or the URL
// moves.
func (l *Loop) current(ctx context.Context, w *worker, c site.Channel, p plan, live manifest.Pointer) bool {
	v := verified{deploy: live.Deploy, commit: live.Commit, url: p.url}
	if w.verified[c] == v {
		return true
	}
	a := &attempt{l: l, w: w, c: c, p: p, commit: live.Commit}
	if err := a.resolveSources(ctx); err != nil {
		w.log.Debug("not checking the live deploy's settings", "channel", c, "err", err)
		return true
	}
	want := manifest.DeployIDFor(build.Key(a.tree+a.tomlKey, a.p.settings, p.url))
	if want != live.Deploy {
		w.log.Info("settings changed: building the live commit again", "channel", c, "commit", live.Commit.Short(), "deploy", live.Deploy, "want", want)
		return false
	}
	w.verified[c] = v
	return true
}

// verified is a live deploy found current for a channel's settings.
type verified struct {
	deploy site.DeployID
	commit site.Commit
	url    string
}
