package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/hugomod"
	"github.com/sitehost/sitehost/internal/hugorelease"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/rules"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/units"
)

// attempt is one try at making a commit live on a channel: what its steps
// share. Each step reads what the ones before it left and adds its own.
type attempt struct {
	l      *Loop
	w      *worker
	c      site.Channel
	p      plan
	e      *journal.Entry
	start  time.Time
	maxAge time.Duration    // skip heads committed longer ago (0: any age)
	repair bool             // self-heal: build again and rewrite every object
	reused bool             // the deploy was built before: nothing was built
	live   manifest.Pointer // the channel's pointer before this attempt

	commit   site.Commit // the commit resolved, then the one fetched
	info     gitsrc.CommitInfo
	tree     string            // the site path's tree hash
	toml     []byte            // the netlify.toml that applies (nil: none)
	tomlKey  string            // what the key adds for a netlify.toml outside the tree
	tomlEnv  map[string]string // the environment netlify.toml sets for this deploy's contexts
	envNote  []string          // for the build log: what of tomlEnv the build got, and what not
	hugoFrom string            // who asked for the Hugo version ("": the compiled-in default)
	buildKey string
	scratch  string // export and build output, removed when the attempt ends
	export   gitsrc.ExportResult
	result   build.Result
	manifest *manifest.Manifest // the deploy, reused or uploaded
	ptr      manifest.Pointer   // the channel's pointer once published
}

// step is one named, timed step of an attempt. The journal, the API and
// the build log name the steps as they are named here.
type step struct {
	name string
	run  func(*attempt, context.Context) error
}

// deploySteps bring a channel to a new commit.
var deploySteps = []step{
	{journal.StepFetch, (*attempt).fetch},
	{journal.StepSources, (*attempt).resolveSources},
	{journal.StepKey, (*attempt).computeKey},
	{journal.StepBuild, (*attempt).reuseOrBuild},
	{journal.StepUpload, (*attempt).upload},
	{journal.StepRules, (*attempt).checkRules},
	{journal.StepPublish, (*attempt).activate},
	{journal.StepReport, (*attempt).report},
}

// repairSteps rebuild the commit a channel serves and write it again
// (self-heal): no reuse, no rule check (it passed when first published),
// nothing to report to forges.
var repairSteps = []step{
	{journal.StepFetch, (*attempt).fetch},
	{journal.StepSources, (*attempt).resolveSources},
	{journal.StepKey, (*attempt).computeKey},
	{journal.StepBuild, (*attempt).build},
	{journal.StepUpload, (*attempt).upload},
	{journal.StepPublish, (*attempt).activate},
	{journal.StepReport, (*attempt).reportRepair},
}

// newAttempt starts an attempt at commit on channel c, in the journal.
func (l *Loop) newAttempt(w *worker, c site.Channel, p plan, commit site.Commit) *attempt {
	return &attempt{l: l, w: w, c: c, p: p, commit: commit, start: time.Now(), e: l.opts.Journal.Start(w.spec.Name, c, commit)}
}

// run runs steps in order, each timed in the journal, until one fails.
func (a *attempt) run(ctx context.Context, steps []step) error {
	defer a.removeScratch()
	for _, s := range steps {
		t := time.Now()
		err := s.run(a, ctx)
		a.e.Step(s.name, time.Since(t))
		if err != nil {
			return err
		}
	}
	return nil
}

// end finishes the attempt in the journal: the steps it ran, then how it
// ended.
func (a *attempt) end(err error) {
	steps := a.e.Snapshot().Steps
	parts := make([]string, 0, len(steps))
	for _, s := range steps {
		parts = append(parts, s.Name+" "+roundDur(s.Took).String())
	}
	a.e.Logf("Steps: %s", strings.Join(parts, ", "))
	switch fault.KindOf(err) {
	case "":
		if a.repair {
			a.e.Logf("Repaired: live on %s again", a.c)
		} else {
			a.e.Logf("Live on %s at %s (%s in all)", a.c, a.p.url, roundDur(time.Since(a.start)))
		}
		a.e.Finish(site.OutcomeLive, nil)
	case fault.KindSuperseded:
		a.e.Logf("Not published: %v", err)
		a.e.Finish(site.OutcomeSuperseded, err)
	default:
		a.e.Logf("Failed: %v", err)
		a.e.Finish(site.OutcomeFailed, err)
	}
}

// fetch fetches the ref and reads its commit.
func (a *attempt) fetch(ctx context.Context) error {
	t := time.Now()
	got, err := a.w.repo.Fetch(ctx, a.p.ref)
	if err != nil {
		return err
	}
	fetched := time.Since(t)
	a.commit = got // the ref may have moved since it was resolved: take the newer
	if a.info, err = a.w.repo.CommitInfo(a.commit); err != nil {
		return err
	}
	if a.maxAge > 0 && a.l.opts.Now().Sub(a.info.Committed) > a.maxAge {
		return errTooOld
	}
	a.e.Update(func(s *journal.Snapshot) {
		s.Commit, s.Subject, s.Author, s.CommitTime = a.commit, a.info.Subject, a.info.Author, a.info.Time
	})
	a.e.Logf("Fetched %s in %s: %q by %s", a.commit.Short(), roundDur(fetched), a.info.Subject, a.info.Author)
	if !a.repair {
		// Reported only now: a head too old to preview is not a deploy.
		a.l.report(a.w, a.c, a.commit, site.OutcomeBuilding, a.p.url, "sitehost is deploying "+a.commit.Short())
	}
	return nil
}

// resolveSources finds what the build is made of: the tree of the site's
// path and the netlify.toml that applies. Only hashes are needed, which
// the cache has: a tree built before is published without exporting.
func (a *attempt) resolveSources(context.Context) error {
	spec := a.w.spec
	tree, err := a.w.repo.TreeHash(a.commit, spec.Path)
	if err != nil {
		return fmt.Errorf("reading %s at %s: %w", spec.Path, a.commit.Short(), err)
	}
	a.tree = tree
	if a.toml, a.tomlKey, err = netlifyTOML(a.w.repo, a.commit, spec.Path); err != nil {
		return err
	}
	if a.p.settings.NPMLock, err = npmLock(a.w.repo, a.commit, spec.Path); err != nil {
		return err
	}
	if a.p.settings.Tool != build.ToolHugo || a.toml == nil {
		return nil
	}
	ref := a.p.ref
	switch a.c.Kind() {
	case site.KindProduction:
		ref = a.w.spec.Ref // the branch, also while a pin holds production
	case site.KindPullRequest:
		ref = a.p.head // not refs/pull/N/head
	}
	a.tomlEnv = rules.NetlifyEnv(a.toml, netlifyContexts(a.c, ref)...)
	if err := a.pickHugo(); err != nil {
		return err
	}
	a.passNetlifyEnv()
	return nil
}

// pickHugo decides which Hugo builds: build.hugo_version in sites.yaml,
// else HUGO_VERSION from netlify.toml for the channel's deploy context (so
// a Netlify site moves over unchanged), else the compiled-in one.
func (a *attempt) pickHugo() error {
	s := &a.p.settings
	if s.HugoVersion != "" {
		a.hugoFrom = "build.hugo_version in sites.yaml"
		return nil
	}
	v := a.tomlEnv["HUGO_VERSION"]
	if v == "" {
		return nil
	}
	n, err := hugorelease.Check(v)
	if err != nil {
		return fault.Stalled(fmt.Errorf("%s: HUGO_VERSION: %w", rules.NetlifyTOML, err))
	}
	s.HugoVersion, a.hugoFrom = n, "HUGO_VERSION in netlify.toml"
	return nil
}

// netlifyContexts are the netlify.toml contexts whose environment applies
// to channel c built from ref, in rising precedence, as Netlify merges
// them: the deploy context, then the branch's own ([context.<branch>]).
// For a pull request, ref is its head branch ("" when not known: a
// preview polled from a fork): Netlify applies that branch's context to
// its deploy previews too.
func netlifyContexts(c site.Channel, ref string) []string {
	var ctx []string
	switch c.Kind() {
	case site.KindPullRequest:
		ctx = []string{rules.ContextDeployPreview}
	case site.KindBranch:
		ctx = []string{rules.ContextBranchDeploy}
	default:
		ctx = []string{rules.ContextProduction}
	}
	if b := branchName(ref); b != "" {
		ctx = append(ctx, b)
	}
	return ctx
}

// branchName is the branch ref names, "" when it names a tag, a range of
// tags or a commit.
func branchName(ref string) string {
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return b
	}
	if strings.HasPrefix(ref, "refs/") || strings.ContainsAny(ref, "*^~ ") || commitSHA.MatchString(ref) {
		return ""
	}
	return ref
}

var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// computeKey is the build key of the sources with the channel's settings,
// and so the deploy's ID.
func (a *attempt) computeKey(context.Context) error {
	a.buildKey = build.Key(a.tree+a.tomlKey, a.p.settings, a.p.url)
	a.e.Update(func(s *journal.Snapshot) { s.Deploy = manifest.DeployIDFor(a.buildKey) })
	return nil
}

// reuseOrBuild takes the deploy an earlier identical build made, or
// builds one.
func (a *attempt) reuseOrBuild(ctx context.Context) error {
	w := a.w
	m, err := a.l.opts.Publisher.Reuse(ctx, w.spec.Name, a.buildKey)
	switch {
	case errors.Is(err, manifest.ErrNotFound):
		return a.build(ctx)
	case err != nil:
		return err
	}
	w.log.Info("reusing deploy built before: same tree and settings", "channel", a.c, "commit", a.commit.Short(), "deploy", m.ID)
	a.reused = true
	a.e.Update(func(s *journal.Snapshot) { s.Reused = true })
	a.e.Logf("Reusing deploy %s, built %s from the same tree and settings: nothing to build", m.ID, m.Created.UTC().Format(time.RFC3339))
	w.mu.Lock()
	w.status.Reused++
	w.mu.Unlock()
	a.manifest = m
	return nil
}

// build exports the site's tree into scratch space and builds it, in a
// build slot.
func (a *attempt) build(ctx context.Context) error {
	l, w, spec := a.l, a.w, a.w.spec
	scratch, err := os.MkdirTemp(mkdirAll(filepath.Join(l.opts.DataDir, "tmp")), string(spec.Name)+"-")
	if err != nil {
		return fmt.Errorf("making scratch dir: %w", err)
	}
	a.scratch = scratch
	src, out := filepath.Join(scratch, "src"), filepath.Join(scratch, "out")
	if a.export, err = w.repo.Export(ctx, a.commit, spec.Path, src); err != nil {
		return err // gitsrc names the commit, the path and the folder
	}
	a.e.Logf("Exported the site (path %s) at %s", spec.Path, a.commit.Short())
	mods, err := hugomod.Vendor(ctx, src, l.opts.Modules)
	if err != nil {
		return fmt.Errorf("hugo modules: %w", err)
	}
	logModules(a.e, mods)
	if err := a.installNPM(ctx, src); err != nil {
		return err
	}
	t := time.Now()
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	queued := time.Since(t)
	a.e.Update(func(s *journal.Snapshot) { s.Queue = queued })
	if queued >= 100*time.Millisecond {
		a.e.Logf("Waited %s for a build slot (server.build.concurrency)", roundDur(queued))
	}
	l.builds.Add(1)
	w.mu.Lock()
	w.status.Builds++
	w.mu.Unlock()
	w.log.Info("building", "channel", a.c, "commit", a.commit.Short(), "tool", a.p.settings.Tool)
	if v := hugoVersion(a.p.settings); v != "" {
		from := "compiled in"
		if v != build.HugoVersion {
			from = "a release, asked for by " + a.hugoFrom
		}
		a.e.Logf("Building with Hugo v%s (%s; base URL %s)", v, from, a.p.url)
	}
	for _, line := range a.envNote {
		a.e.Logf("%s", line)
	}
	res, err := l.opts.Builder.Build(ctx, build.Request{
		Site: string(spec.Name), Src: src, Out: out, BaseURL: a.p.url,
		CacheDir: filepath.Join(l.opts.DataDir, "cache", "hugo", string(spec.Name)), Untrusted: a.p.untrusted,
		Settings: a.p.settings,
		Git:      &build.GitHistory{Dir: w.repo.Dir(), Commit: string(a.commit), Prefix: spec.Path},
		Log:      a.e,
	})
	<-l.sem
	if err != nil {
		// The first error goes to the status; the end of the log, where
		// Hugo reports the rest, goes to the server log.
		w.log.Warn("build failed", "channel", a.c, "commit", a.commit.Short(), "log_tail", tail(res.Log, 4096))
		return err
	}
	a.result = res
	a.e.Logf("Built in %s%s", roundDur(res.Duration), peak(res.MaxRSS))
	return nil
}

// upload writes what the build made as a deploy, not yet live; a reused
// deploy has nothing to upload.
func (a *attempt) upload(ctx context.Context) error {
	if a.manifest != nil {
		return nil
	}
	w, res, exp := a.w, a.result, a.export
	a.e.Logf("Uploading")
	snap := a.e.Snapshot()
	m, stats, err := a.l.opts.Publisher.Upload(ctx, publish.Deploy{
		Site: w.spec.Name, Channel: a.c, Commit: a.commit, Tree: exp.Tree, BuildKey: a.buildKey, Dir: res.Dir,
		Info: manifest.CommitInfo{Subject: a.info.Subject, Author: a.info.Author, Time: a.info.Time},
		Build: manifest.BuildSummary{Tool: a.p.settings.Tool, Hugo: hugoVersion(a.p.settings), BaseURL: a.p.url,
			Duration: res.Duration, MaxRSS: res.MaxRSS, Sandbox: res.Sandbox, SkippedGit: exp.Skipped, Queue: snap.Queue, Fetch: snap.Took(journal.StepFetch)},
		Log:         a.e.Log(),
		NetlifyTOML: a.toml,
		Repair:      a.repair,
		MaxFile:     w.spec.MaxFile,
	})
	a.removeScratch()
	if err != nil {
		return err
	}
	a.manifest = m
	a.e.Update(func(s *journal.Snapshot) { s.Files, s.BytesUploaded = stats.Files, stats.BytesUploaded })
	a.e.Logf("Uploaded deploy %s in %s: %d files (%s), %d new blobs (%s), %d already stored, %d compressed variants made",
		m.ID, roundDur(m.Build.Upload), stats.Files, units.Bytes(stats.Bytes), stats.BlobsUploaded, units.Bytes(stats.BytesUploaded),
		stats.BlobsKnown+stats.BlobsChecked-stats.BlobsUploaded, stats.Variants)
	w.log.Info("uploaded", "channel", a.c, "deploy", m.ID, "files", stats.Files, "blobs_uploaded", stats.BlobsUploaded, "bytes_uploaded", stats.BytesUploaded, "blobs_known", stats.BlobsKnown, "build", res.Duration.Round(time.Millisecond).String())
	return nil
}

// ErrRules: the deploy's rules have errors and the site has rules.strict;
// the site's to fix.
var ErrRules = fault.Stalled(errors.New("rule errors (rules.strict is on)"))

// checkRules tells the log what rules the deploy has and what is wrong
// with them; with rules.strict, errors keep it from going live.
func (a *attempt) checkRules(context.Context) error {
	w, m := a.w, a.manifest
	if !w.spec.Proxy {
		for _, r := range m.Rules.Redirects {
			if r.Proxy {
				w.log.Warn("proxy rules are ignored: the site does not set rules.proxy", "channel", a.c, "deploy", m.ID, "first", fmt.Sprintf("%s:%d", r.Source, r.Line))
				a.e.Logf("Proxy rules are ignored: the site does not set rules.proxy (the first: %s:%d)", r.Source, r.Line)
				break
			}
		}
	}
	a.e.Logf("Rules: %d redirects, %d header rules, %d errors", len(m.Rules.Redirects), len(m.Rules.Headers), len(m.Rules.Errors))
	n := len(m.Rules.Errors)
	if n == 0 {
		return nil
	}
	w.log.Warn("rule errors", "channel", a.c, "deploy", m.ID, "count", n, "first", m.Rules.Errors[0].Error())
	for _, re := range m.Rules.Errors {
		a.e.Logf("rules: %s", re)
	}
	if w.spec.StrictRules {
		return fmt.Errorf("%w: %d in deploy %s, the first: %s", ErrRules, n, m.ID, m.Rules.Errors[0].Error())
	}
	return nil
}

// activate flips the channel's pointer to the deploy, unless a newer
// commit has come in meanwhile (a repair puts back what was live).
func (a *attempt) activate(ctx context.Context) error {
	if !a.repair {
		if stale, newer := a.l.superseded(ctx, a.w, a.c, a.p, a.commit); stale {
			return fault.Superseded(fmt.Errorf("%s is no longer desired (ref now at %s): superseded by a newer commit", a.commit.Short(), newer.Short()))
		}
	}
	// The pointer records why it moved, with the commit that caused it
	// (for a revert, the revert), so the channel's story reads the same
	// on every replica and after a restart.
	cause := publish.Cause{Kind: manifest.Built, Commit: a.commit,
		Info: manifest.CommitInfo{Subject: a.info.Subject, Author: a.info.Author, Time: a.info.Time}}
	switch {
	case a.repair:
		cause = publish.Cause{Kind: manifest.Repaired, Commit: a.commit}
	case a.reused:
		cause.Kind = manifest.Reused
	}
	ptr, err := a.l.opts.Publisher.Activate(ctx, a.w.spec.Name, a.c, a.manifest, cause)
	if err != nil {
		return err
	}
	a.ptr = ptr
	return nil
}

// report tells the status, the repository (write-back) and the reporter
// that the deploy is live.
func (a *attempt) report(ctx context.Context) error {
	l, w, ptr := a.l, a.w, a.ptr
	w.log.Info("live", "channel", a.c, "commit", ptr.Commit.Short(), "deploy", ptr.Deploy, "url", a.p.url, "took", time.Since(a.start).Round(time.Millisecond).String())
	if a.c == site.Production {
		l.writeBack(ctx, w, ptr, a.p.url)
	}
	l.done(w, a.c, ptr, a.p.pinned)
	if l.opts.Reporter != nil {
		l.opts.Reporter.Report(w.spec.Name, Report{Channel: a.c, Commit: ptr.Commit, State: site.OutcomeLive, URL: a.p.url, Message: "live at " + a.p.url,
			Deploy: ptr.Deploy, Previous: a.live.Deploy, Subject: a.info.Subject,
			Rollback: a.live.Deploy != "" && a.live.Deploy != ptr.Deploy && slices.Contains(a.live.History, ptr.Deploy)})
	}
	return nil
}

// reportRepair counts the repair.
func (a *attempt) reportRepair(context.Context) error {
	a.w.mu.Lock()
	a.w.status.Repairs++
	a.w.mu.Unlock()
	a.w.log.Info("self-heal repaired the live deploy", "channel", a.c, "deploy", a.ptr.Deploy)
	return nil
}

func (a *attempt) removeScratch() {
	if a.scratch != "" {
		os.RemoveAll(a.scratch)
		a.scratch = ""
	}
}

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

// errTooOld: a polled pull request head is older than the preview TTL;
// not a deploy at all, so not a failure of any kind.
var errTooOld = errors.New("head older than the preview TTL")

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

// roundDur rounds for people: 1.234s, 56ms.
func roundDur(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func peak(rss int64) string {
	if rss <= 0 {
		return ""
	}
	return ", peak memory " + units.Bytes(rss)
}

func hugoVersion(s build.Settings) string {
	if s.Tool == build.ToolHugo {
		return s.Hugo()
	}
	return ""
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

// logModules says where the site's Hugo Modules came from.
func logModules(e *journal.Entry, mods hugomod.Result) {
	if len(mods.Modules) == 0 {
		return
	}
	if mods.Committed {
		e.Logf("Hugo Modules: using the repository's _vendor/ (%d modules)", len(mods.Modules))
		return
	}
	for _, m := range mods.Modules {
		from := "cached"
		if m.Downloaded {
			from = "downloaded"
		}
		e.Logf("Hugo Module %s (%s)", m, from)
	}
}
