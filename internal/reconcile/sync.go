package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/rules"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/units"
)

// runJobs works off one batch of requests for a site, production first. It
// reports whether a transient failure wants a retry.
func (l *Loop) runJobs(ctx context.Context, w *worker, jobs map[site.Channel]job, poll, expire bool) (retry bool) {
	channels := make([]site.Channel, 0, len(jobs))
	for c := range jobs {
		channels = append(channels, c)
	}
	slices.SortFunc(channels, site.CompareChannels)
	for _, c := range channels {
		if ctx.Err() != nil {
			return false
		}
		j := jobs[c]
		if j.kind == jobDelete {
			retry = l.deleteChannel(ctx, w, c, "its pull request was closed or its branch deleted") || retry
			continue
		}
		retry = l.syncChannel(ctx, w, c, j) || retry
	}
	if poll && ctx.Err() == nil {
		retry = l.pollPreviews(ctx, w) || retry
	}
	if expire && ctx.Err() == nil {
		l.expirePreviews(ctx, w)
	}
	return retry
}

// plan is what one channel should be built from.
type plan struct {
	ref      string
	settings build.Settings
	url      string
	pinned   bool
}

// planFor works out a channel's ref and build settings; ok is false when
// the channel is not (or no longer) wanted.
func (l *Loop) planFor(w *worker, c site.Channel, j job) (plan, bool) {
	spec := w.spec
	p := plan{settings: spec.Build, url: l.opts.URL(spec.Name, c)}
	switch {
	case c == site.Production:
		p.ref, p.pinned = spec.Ref, spec.Pin != ""
		if p.pinned {
			p.ref = spec.Pin
		}
	case strings.HasPrefix(string(c), "branch-"):
		for _, b := range spec.Branches {
			if site.Branch(b) == c {
				p.ref = "refs/heads/" + b
			}
		}
	case strings.HasPrefix(string(c), "pr-"):
		p.ref = j.ref
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

// syncChannel brings one channel to the commit its ref names. It reports
// whether a transient failure wants a retry.
func (l *Loop) syncChannel(ctx context.Context, w *worker, c site.Channel, j job) (retry bool) {
	p, ok := l.planFor(w, c, j)
	if !ok {
		w.log.Info("not building channel", "channel", c, "reason", "not wanted (fork policy or branch no longer configured)")
		return false
	}
	live, err := l.opts.Publisher.Pointer(ctx, w.spec.Name, c)
	if err != nil && !errors.Is(err, publish.ErrNotFound) {
		l.fail(w, c, "", fmt.Errorf("reading live pointer: %w", err), false)
		return true
	}
	w.setLive(c, p.url, live)

	desired, err := w.repo.Resolve(ctx, p.ref)
	if err != nil {
		// A ref that does not exist is the user's to fix; a network error is not.
		user := errors.Is(err, gitsrc.ErrRefNotFound) || errors.Is(err, gitsrc.ErrInvalidRange)
		l.fail(w, c, "", fmt.Errorf("resolving %s: %w", p.ref, err), user)
		return !user
	}
	w.mu.Lock()
	w.setChannel(c, func(cs *ChannelStatus) { cs.Desired = desired })
	failed := w.failed[c]
	w.mu.Unlock()
	switch {
	case live.Commit == desired:
		l.done(w, c, live, p.pinned)
		return false
	case desired == failed:
		return false // still the commit that failed; wait for a new one
	}

	w.mu.Lock()
	w.setChannel(c, func(cs *ChannelStatus) { cs.State = site.Progressing })
	w.mu.Unlock()
	start := time.Now()
	e := l.opts.Journal.Start(w.spec.Name, c, desired)
	e.Logf("Deploying %s (%s) to %s of %s", desired.Short(), p.ref, c, w.spec.Name)
	ptr, err := l.deploy(ctx, w, c, p, desired, j.maxAge, e)
	switch {
	case errors.Is(err, errTooOld):
		l.opts.Journal.Discard(e)
		w.log.Debug("not previewing an old head", "channel", c, "commit", desired.Short())
		w.mu.Lock()
		delete(w.status.Channels, c)
		w.mu.Unlock()
		return false
	case err != nil:
		user := build.IsUserError(err) || errors.Is(err, gitsrc.ErrPathNotFound) || errors.Is(err, ErrRules) ||
			errors.Is(err, gitsrc.ErrTooLarge) || errors.Is(err, publish.ErrTooLarge)
		finish(e, err, user)
		l.fail(w, c, desired, err, user)
		if !errors.Is(err, errSuperseded) && ctx.Err() == nil {
			l.report(w, c, desired, "failure", p.url, err.Error())
		}
		return !user && ctx.Err() == nil && !errors.Is(err, errSuperseded)
	}
	e.Logf("Live on %s at %s (%s in all)", c, p.url, roundDur(time.Since(start)))
	e.Finish(journal.Live, nil, false)
	w.log.Info("live", "channel", c, "commit", ptr.Commit.Short(), "deploy", ptr.Deploy, "url", p.url, "took", time.Since(start).Round(time.Millisecond).String())
	if c == site.Production {
		l.writeBack(ctx, w, ptr, p.url)
	}
	l.done(w, c, ptr, p.pinned)
	rep := Report{Channel: c, Commit: ptr.Commit, State: "success", URL: p.url, Message: "live at " + p.url,
		Deploy: ptr.Deploy, Previous: live.Deploy,
		Rollback: live.Deploy != "" && live.Deploy != ptr.Deploy && slices.Contains(live.History, ptr.Deploy)}
	if info, err := w.repo.CommitInfo(ptr.Commit); err == nil {
		rep.Subject = info.Subject
	}
	if l.opts.Reporter != nil {
		l.opts.Reporter.Report(w.spec.Name, rep)
	}
	return false
}

// buildKey is what commit builds to on channel plan p, with the site's
// netlify.toml. It needs only the tree hash, which the cache has: a tree
// built before is published without exporting anything.
func buildKey(w *worker, commit site.Commit, p plan) (key string, toml []byte, err error) {
	tree, err := w.repo.TreeHash(commit, w.spec.Path)
	if err != nil {
		return "", nil, fmt.Errorf("reading %s at %s: %w", w.spec.Path, commit.Short(), err)
	}
	toml, tomlKey, err := netlifyTOML(w.repo, commit, w.spec.Path)
	if err != nil {
		return "", nil, err
	}
	return build.Key(tree+tomlKey, p.settings, p.url), toml, nil
}

// ErrRules: the deploy's rules have errors and the site has rules.strict.
var ErrRules = errors.New("rule errors (rules.strict is on)")

// netlifyTOML reads the site's netlify.toml: in the site's path, else at
// the repository root (Netlify's base directory and repo root). keyPart is
// what the build key must add for it: the file's blob hash when it lies
// outside the site's tree, whose hash does not cover it.
func netlifyTOML(repo *gitsrc.Repo, commit site.Commit, sitePath string) (data []byte, keyPart string, err error) {
	candidates := []string{path.Join(sitePath, rules.NetlifyTOML)}
	if path.Clean(sitePath) != "." {
		candidates = append(candidates, rules.NetlifyTOML)
	}
	for i, p := range candidates {
		data, hash, err := repo.ReadFile(commit, p, rules.MaxFileSize)
		switch {
		case errors.Is(err, gitsrc.ErrPathNotFound):
			continue
		case errors.Is(err, gitsrc.ErrTooLarge):
			// Parse reports the size; the deploy goes on without its rules.
			data = make([]byte, rules.MaxFileSize+1)
		case err != nil:
			return nil, "", fmt.Errorf("reading %s: %w", p, err)
		}
		if i > 0 {
			keyPart = "+" + rules.NetlifyTOML + ":" + hash
		}
		return data, keyPart, nil
	}
	return nil, "", nil
}

var (
	errSuperseded = errors.New("superseded by a newer commit")
	errTooOld     = errors.New("head older than the preview TTL")
)

// finish ends a failed attempt in the journal, saying why in its log.
func finish(e *journal.Entry, err error, user bool) {
	if errors.Is(err, errSuperseded) {
		e.Logf("Not published: %v", err)
		e.Finish(journal.Superseded, err, false)
		return
	}
	e.Logf("Failed: %v", err)
	e.Finish(journal.Failed, err, user)
}

// deploy fetches commit, reuses or builds it, and flips the channel to it,
// telling e's log each step.
func (l *Loop) deploy(ctx context.Context, w *worker, c site.Channel, p plan, commit site.Commit, maxAge time.Duration, e *journal.Entry) (publish.Pointer, error) {
	spec := w.spec
	t := time.Now()
	got, err := w.repo.Fetch(ctx, p.ref)
	if err != nil {
		return publish.Pointer{}, err
	}
	fetched := time.Since(t)
	commit = got // the ref may have moved since it was resolved: take the newer
	info, err := w.repo.CommitInfo(commit)
	if err != nil {
		return publish.Pointer{}, err
	}
	if maxAge > 0 && l.opts.Now().Sub(info.Committed) > maxAge {
		return publish.Pointer{}, errTooOld
	}
	e.Update(func(s *journal.Snapshot) {
		s.Commit, s.Subject, s.Author, s.CommitTime = commit, info.Subject, info.Author, info.Time
		s.Timings.Fetch = fetched
	})
	e.Logf("Fetched %s in %s: %q by %s", commit.Short(), roundDur(fetched), info.Subject, info.Author)
	// Reported only now: a head too old to preview is not a deploy.
	l.report(w, c, commit, "pending", p.url, "sitehost is deploying "+commit.Short())
	key, toml, err := buildKey(w, commit, p)
	if err != nil {
		return publish.Pointer{}, err
	}
	e.Update(func(s *journal.Snapshot) { s.Deploy = publish.DeployIDFor(key) })
	m, err := l.opts.Publisher.Reuse(ctx, spec.Name, key)
	cause := publish.Cause{Kind: manifest.Built, Commit: commit, Info: publish.CommitInfo{Subject: info.Subject, Author: info.Author, Time: info.Time}}
	switch {
	case err == nil:
		cause.Kind = manifest.Reused
		w.log.Info("reusing deploy built before: same tree and settings", "channel", c, "commit", commit.Short(), "deploy", m.ID)
		e.Update(func(s *journal.Snapshot) { s.Reused = true })
		e.Logf("Reusing deploy %s, built %s from the same tree and settings: nothing to build", m.ID, m.Created.UTC().Format(time.RFC3339))
		w.mu.Lock()
		w.status.Reused++
		w.mu.Unlock()
	case errors.Is(err, publish.ErrNotFound):
		m, err = l.exportAndBuild(ctx, w, c, p, commit, info, key, toml, false, e)
		if err != nil {
			return publish.Pointer{}, err
		}
	default:
		return publish.Pointer{}, err
	}
	if !spec.Proxy {
		for _, r := range m.Rules.Redirects {
			if r.Proxy {
				w.log.Warn("proxy rules are ignored: the site does not set rules.proxy", "channel", c, "deploy", m.ID, "first", fmt.Sprintf("%s:%d", r.Source, r.Line))
				e.Logf("Proxy rules are ignored: the site does not set rules.proxy (the first: %s:%d)", r.Source, r.Line)
				break
			}
		}
	}
	e.Logf("Rules: %d redirects, %d header rules, %d errors", len(m.Rules.Redirects), len(m.Rules.Headers), len(m.Rules.Errors))
	if n := len(m.Rules.Errors); n > 0 {
		w.log.Warn("rule errors", "channel", c, "deploy", m.ID, "count", n, "first", m.Rules.Errors[0].Error())
		for _, re := range m.Rules.Errors {
			e.Logf("rules: %s", re)
		}
		if spec.StrictRules {
			return publish.Pointer{}, fmt.Errorf("%w: %d in deploy %s, the first: %s", ErrRules, n, m.ID, m.Rules.Errors[0])
		}
	}
	if stale, newer := l.superseded(ctx, w, c, p, commit); stale {
		return publish.Pointer{}, fmt.Errorf("%s is no longer desired (ref now at %s): %w", commit.Short(), newer.Short(), errSuperseded)
	}
	t = time.Now()
	ptr, err := l.opts.Publisher.Activate(ctx, spec.Name, c, m, cause)
	e.Update(func(s *journal.Snapshot) { s.Timings.Publish = time.Since(t) })
	return ptr, err
}

// roundDur rounds for people: 1.234s, 56ms.
func roundDur(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// superseded checks, when a new request for the channel came in during the
// build, that commit is still what the ref names; a build for an old commit
// is not published (the queued request builds the new one).
func (l *Loop) superseded(ctx context.Context, w *worker, c site.Channel, p plan, commit site.Commit) (bool, site.Commit) {
	w.mu.Lock()
	next, pending := w.pending[c]
	w.mu.Unlock()
	if !pending || next.kind == jobDelete || p.pinned {
		return false, ""
	}
	if next.ref != "" {
		p.ref = next.ref
	}
	now, err := w.repo.Resolve(ctx, p.ref)
	if err != nil || now == commit {
		return false, ""
	}
	return true, now
}

// exportAndBuild exports the site's tree into scratch space, builds it and
// uploads the result as a deploy (not yet live).
func (l *Loop) exportAndBuild(ctx context.Context, w *worker, c site.Channel, p plan, commit site.Commit, info gitsrc.CommitInfo, key string, toml []byte, repair bool, e *journal.Entry) (*publish.Manifest, error) {
	spec := w.spec
	scratch, err := os.MkdirTemp(mkdirAll(filepath.Join(l.opts.DataDir, "tmp")), string(spec.Name)+"-")
	if err != nil {
		return nil, fmt.Errorf("making scratch dir: %w", err)
	}
	defer os.RemoveAll(scratch)
	src, out := filepath.Join(scratch, "src"), filepath.Join(scratch, "out")
	exp, err := w.repo.Export(ctx, commit, spec.Path, src)
	if err != nil {
		return nil, fmt.Errorf("exporting %s at %s: %w", spec.Path, commit.Short(), err)
	}
	e.Logf("Exported the site (path %s) at %s", spec.Path, commit.Short())
	t := time.Now()
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	queued := time.Since(t)
	e.Update(func(s *journal.Snapshot) { s.Timings.Queue = queued })
	if queued >= 100*time.Millisecond {
		e.Logf("Waited %s for a build slot (server.build.concurrency)", roundDur(queued))
	}
	l.builds.Add(1)
	w.mu.Lock()
	w.status.Builds++
	w.mu.Unlock()
	w.log.Info("building", "channel", c, "commit", commit.Short(), "tool", p.settings.Tool)
	if v := hugoVersion(p.settings.Tool); v != "" {
		e.Logf("Building with Hugo v%s (base URL %s)", v, p.url)
	}
	res, err := l.opts.Builder.Build(ctx, build.Request{
		Site: string(spec.Name), Src: src, Out: out, BaseURL: p.url,
		CacheDir: filepath.Join(l.opts.DataDir, "cache", string(spec.Name)),
		Settings: p.settings,
		Git:      &build.GitHistory{Dir: w.repo.Dir(), Commit: string(commit), Prefix: spec.Path},
		Log:      e,
	})
	<-l.sem
	e.Update(func(s *journal.Snapshot) { s.Timings.Build = res.Duration })
	if err != nil {
		// The first error goes to the status; the end of the log, where
		// Hugo reports the rest, goes to the server log.
		w.log.Warn("build failed", "channel", c, "commit", commit.Short(), "log_tail", tail(res.Log, 4096))
		return nil, err
	}
	e.Logf("Built in %s%s", roundDur(res.Duration), peak(res.MaxRSS))
	e.Logf("Uploading")
	timings := e.Snapshot().Timings
	m, stats, err := l.opts.Publisher.Upload(ctx, publish.Deploy{
		Site: spec.Name, Channel: c, Commit: commit, Tree: exp.Tree, BuildKey: key, Dir: res.Dir,
		Info: publish.CommitInfo{Subject: info.Subject, Author: info.Author, Time: info.Time},
		Build: publish.BuildSummary{Tool: p.settings.Tool, Hugo: hugoVersion(p.settings.Tool), BaseURL: p.url,
			Duration: res.Duration, MaxRSS: res.MaxRSS, SkippedGit: exp.Skipped, Queue: timings.Queue, Fetch: timings.Fetch},
		Log:         e.Log(),
		NetlifyTOML: toml,
		Repair:      repair,
	})
	if err != nil {
		return nil, err
	}
	e.Update(func(s *journal.Snapshot) {
		s.Timings.Upload, s.Files, s.BytesUploaded = m.Build.Upload, stats.Files, stats.BytesUploaded
	})
	e.Logf("Uploaded deploy %s in %s: %d files (%s), %d new blobs (%s), %d already stored, %d compressed variants made",
		m.ID, roundDur(m.Build.Upload), stats.Files, units.Bytes(stats.Bytes), stats.BlobsUploaded, units.Bytes(stats.BytesUploaded),
		stats.BlobsKnown+stats.BlobsChecked-stats.BlobsUploaded, stats.Variants)
	w.log.Info("uploaded", "channel", c, "deploy", m.ID, "files", stats.Files, "blobs_uploaded", stats.BlobsUploaded, "bytes_uploaded", stats.BytesUploaded, "blobs_known", stats.BlobsKnown, "build", res.Duration.Round(time.Millisecond).String())
	return m, nil
}

// deleteChannel removes a preview or branch channel. It reports whether a
// transient failure wants a retry.
func (l *Loop) deleteChannel(ctx context.Context, w *worker, c site.Channel, why string) bool {
	if c == site.Production {
		return false
	}
	if err := l.opts.Publisher.DeleteChannel(ctx, w.spec.Name, c); err != nil {
		w.log.Error("removing channel", "channel", c, "err", err)
		return true
	}
	w.log.Info("removed channel", "channel", c, "why", why)
	l.report(w, c, "", "removed", "", why)
	w.mu.Lock()
	delete(w.status.Channels, c)
	delete(w.failed, c)
	w.mu.Unlock()
	return false
}

func peak(rss int64) string {
	if rss <= 0 {
		return ""
	}
	return ", peak memory " + units.Bytes(rss)
}

func hugoVersion(tool string) string {
	if tool == build.ToolHugo {
		return build.HugoVersion
	}
	return ""
}

func (l *Loop) report(w *worker, c site.Channel, commit site.Commit, state, url, msg string) {
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

func (w *worker) setLive(c site.Channel, url string, p publish.Pointer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setChannel(c, func(cs *ChannelStatus) {
		cs.URL, cs.LiveCommit, cs.LiveDeploy = url, p.Commit, p.Deploy
		if cs.State == "" {
			cs.State = site.OutOfSync
		}
	})
}

func (l *Loop) done(w *worker, c site.Channel, p publish.Pointer, pinned bool) {
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

// fail records a failed sync. The live deploy is untouched. A user error
// marks the commit so it is not rebuilt until a new one arrives.
func (l *Loop) fail(w *worker, c site.Channel, commit site.Commit, err error, user bool) {
	if errors.Is(err, errSuperseded) {
		w.log.Info("skipped publishing", "channel", c, "err", err)
		return
	}
	w.log.Error("sync failed", "channel", c, "commit", commit.Short(), "user_error", user, "err", err)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setChannel(c, func(cs *ChannelStatus) {
		cs.State, cs.Error, cs.FailedAt, cs.LastSync = site.Failed, err.Error(), commit, l.opts.Now()
	})
	if user {
		w.failed[c] = commit
	}
}

// tail returns the last n bytes of a log, from a line start when it can.
func tail(log []byte, n int) string {
	if len(log) <= n {
		return string(log)
	}
	log = log[len(log)-n:]
	if i := bytes.IndexByte(log, '\n'); i >= 0 {
		log = log[i+1:]
	}
	return string(log)
}

func mkdirAll(dir string) string {
	os.MkdirAll(dir, 0o755) //nolint:errcheck // MkdirTemp reports the failure
	return dir
}

// writeBack records a production publish in the site's own repository, so
// the repository shows what is live and since when: a note on the commit
// or a tag sitehost/<site>/live. The site is live already; a failure is
// logged and the next publish tries again.
func (l *Loop) writeBack(ctx context.Context, w *worker, ptr publish.Pointer, url string) {
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
