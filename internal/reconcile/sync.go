package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/site"
)

// syncProduction brings the production channel to the commit the site's ref
// (or pin) names. It reports whether a transient failure wants a retry.
func (l *Loop) syncProduction(ctx context.Context, w *worker) (retry bool) {
	spec := w.spec
	ref := spec.Ref
	if spec.Pin != "" {
		ref = spec.Pin
	}
	live, err := l.opts.Publisher.Pointer(ctx, spec.Name, site.Production)
	if err != nil && !errors.Is(err, publish.ErrNotFound) {
		l.fail(w, "", fmt.Errorf("reading live pointer: %w", err), false)
		return true
	}
	w.setLive(live)

	desired, err := w.repo.Resolve(ctx, ref)
	if err != nil {
		// A ref that does not exist is the user's to fix; a network error is not.
		user := errors.Is(err, gitsrc.ErrRefNotFound)
		l.fail(w, "", fmt.Errorf("resolving %s: %w", ref, err), user)
		return !user
	}
	w.mu.Lock()
	w.status.Desired = desired
	failed := w.failed
	w.mu.Unlock()

	switch {
	case live.Commit == desired:
		l.done(w, live, spec.Pin != "")
		return false
	case desired == failed:
		return false // still the commit that failed; wait for a new one
	}

	w.setState(site.Progressing)
	start := time.Now()
	ptr, err := l.deploy(ctx, w, ref, desired)
	if err != nil {
		user := build.IsUserError(err) || errors.Is(err, gitsrc.ErrPathNotFound) ||
			errors.Is(err, gitsrc.ErrTooLarge) || errors.Is(err, publish.ErrTooLarge)
		l.fail(w, desired, err, user)
		return !user && ctx.Err() == nil
	}
	w.log.Info("live", "commit", ptr.Commit.Short(), "deploy", ptr.Deploy, "url", spec.BaseURL, "took", time.Since(start).Round(time.Millisecond).String())
	l.done(w, ptr, spec.Pin != "")
	return false
}

// deploy fetches commit, reuses or builds it, and flips production to it.
func (l *Loop) deploy(ctx context.Context, w *worker, ref string, commit site.Commit) (publish.Pointer, error) {
	spec := w.spec
	got, err := w.repo.Fetch(ctx, ref)
	if err != nil {
		return publish.Pointer{}, err
	}
	if got != commit {
		commit = got // the ref moved between resolve and fetch: take the newer
	}
	// The build key needs only the tree hash, which the cache has: a tree
	// built before is published without exporting anything.
	tree, err := w.repo.TreeHash(commit, spec.Path)
	if err != nil {
		return publish.Pointer{}, fmt.Errorf("reading %s at %s: %w", spec.Path, commit.Short(), err)
	}
	key := build.Key(tree, spec.Build, spec.BaseURL)
	m, err := l.opts.Publisher.Reuse(ctx, spec.Name, key)
	switch {
	case err == nil:
		w.log.Info("reusing deploy built before: same tree and settings", "commit", commit.Short(), "deploy", m.ID)
		w.mu.Lock()
		w.status.Reused++
		w.mu.Unlock()
	case errors.Is(err, publish.ErrNotFound):
		m, err = l.exportAndBuild(ctx, w, commit, key)
		if err != nil {
			return publish.Pointer{}, err
		}
	default:
		return publish.Pointer{}, err
	}
	if stale, newer := l.superseded(ctx, w, ref, commit); stale {
		return publish.Pointer{}, fmt.Errorf("%s is no longer desired (ref now at %s): %w", commit.Short(), newer.Short(), errSuperseded)
	}
	return l.opts.Publisher.Activate(ctx, spec.Name, site.Production, m, commit)
}

var errSuperseded = errors.New("superseded by a newer commit")

// superseded checks, when a request came in during the build, that commit
// is still what the ref names; a build for an old commit is not published.
func (l *Loop) superseded(ctx context.Context, w *worker, ref string, commit site.Commit) (bool, site.Commit) {
	w.mu.Lock()
	pending := w.requested > w.inflight
	w.mu.Unlock()
	if !pending || w.spec.Pin != "" {
		return false, ""
	}
	now, err := w.repo.Resolve(ctx, ref)
	if err != nil || now == commit {
		return false, ""
	}
	return true, now
}

// exportAndBuild exports the site's tree into scratch space, builds it and
// uploads the result as a deploy (not yet live).
func (l *Loop) exportAndBuild(ctx context.Context, w *worker, commit site.Commit, key string) (*publish.Manifest, error) {
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
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.builds.Add(1)
	w.mu.Lock()
	w.status.Builds++
	w.mu.Unlock()
	w.log.Info("building", "commit", commit.Short(), "tool", spec.Build.Tool)
	res, err := l.opts.Builder.Build(ctx, build.Request{
		Site: string(spec.Name), Src: src, Out: out, BaseURL: spec.BaseURL,
		CacheDir: filepath.Join(l.opts.DataDir, "cache", string(spec.Name)),
		Settings: spec.Build,
		Git:      &build.GitHistory{Dir: w.repo.Dir(), Commit: string(commit), Prefix: spec.Path},
	})
	<-l.sem
	if err != nil {
		// The first error goes to the status; the end of the log, where
		// Hugo reports the rest, goes to the server log.
		w.log.Warn("build failed", "commit", commit.Short(), "log_tail", tail(res.Log, 4096))
		return nil, err
	}
	info, err := w.repo.CommitInfo(commit)
	if err != nil {
		return nil, err
	}
	m, stats, err := l.opts.Publisher.Upload(ctx, publish.Deploy{
		Site: spec.Name, Commit: commit, Tree: exp.Tree, BuildKey: key, Dir: res.Dir,
		Info:  publish.CommitInfo{Subject: info.Subject, Author: info.Author, Time: info.Time},
		Build: publish.BuildSummary{Tool: spec.Build.Tool, Hugo: hugoVersion(spec.Build.Tool), BaseURL: spec.BaseURL, Duration: res.Duration, MaxRSS: res.MaxRSS, SkippedGit: exp.Skipped},
		Log:   res.Log,
	})
	if err != nil {
		return nil, err
	}
	w.log.Info("uploaded", "deploy", m.ID, "files", stats.Files, "blobs_uploaded", stats.BlobsUploaded, "bytes_uploaded", stats.BytesUploaded, "build", res.Duration.Round(time.Millisecond).String())
	return m, nil
}

func hugoVersion(tool string) string {
	if tool == build.ToolHugo {
		return build.HugoVersion
	}
	return ""
}

func (w *worker) setLive(p publish.Pointer) {
	w.mu.Lock()
	w.status.LiveCommit, w.status.LiveDeploy = p.Commit, p.Deploy
	w.mu.Unlock()
}

func (w *worker) setState(s site.State) {
	w.mu.Lock()
	w.status.State = s
	w.mu.Unlock()
}

func (l *Loop) done(w *worker, p publish.Pointer, pinned bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status.LiveCommit, w.status.LiveDeploy = p.Commit, p.Deploy
	w.status.State = site.Synced
	if pinned {
		w.status.State = site.Pinned
	}
	w.status.Error, w.status.FailedAt = "", ""
	w.status.LastSync = time.Now()
	w.failed = ""
}

// fail records a failed sync. The live deploy is untouched. A user error
// marks the commit so it is not rebuilt until a new one arrives.
func (l *Loop) fail(w *worker, commit site.Commit, err error, user bool) {
	if errors.Is(err, errSuperseded) {
		w.log.Info("skipped publishing", "err", err)
		return
	}
	w.log.Error("sync failed", "commit", commit.Short(), "user_error", user, "err", err)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status.State = site.Failed
	w.status.Error = err.Error()
	w.status.FailedAt = commit
	w.status.LastSync = time.Now()
	if user {
		w.failed = commit
	}
}

func mkdirAll(dir string) string {
	os.MkdirAll(dir, 0o755) //nolint:errcheck // MkdirTemp reports the failure
	return dir
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
