package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

func (f *fixture) settle(t *testing.T) reconcile.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := f.loop.Settle(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) pointer(t *testing.T, c site.Channel) (manifest.Pointer, bool) {
	t.Helper()
	p, err := f.pub.Pointer(context.Background(), "s", c)
	if errors.Is(err, manifest.ErrNotFound) {
		return p, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return p, true
}

// pushPR pushes the work tree's HEAD to refs/pull/n/head, as GitHub does.
func (f *fixture) pushPR(t *testing.T, n string, content string) string {
	t.Helper()
	f.repo.Git(f.repo.Work, "checkout", "-q", "-B", "feature")
	f.repo.Write("index.html", content)
	f.repo.Git(f.repo.Work, "add", "-A")
	f.repo.Git(f.repo.Work, "commit", "-q", "-m", content)
	f.repo.Git(f.repo.Work, "push", "-q", "-f", "origin", "HEAD:refs/pull/"+n+"/head")
	sha := f.repo.Git(f.repo.Work, "rev-parse", "HEAD")
	f.repo.Git(f.repo.Work, "checkout", "-q", "main")
	return sha
}

func prEvent(kind site.EventKind, n int, fork bool) site.Event {
	return site.Event{Forge: "github", Kind: kind, PR: n, Ref: "refs/heads/feature", Fork: fork}
}

func TestPreviewLifecycle(t *testing.T) {
	f := newFixture(t, reconcile.Spec{Previews: reconcile.Previews{Enabled: true, Forks: reconcile.ForksNoSecrets}}, 0)
	prod := f.sync(t)
	head := f.pushPR(t, "7", "<h1>preview</h1>")
	if err := f.loop.Dispatch(context.Background(), "s", prEvent(site.EventPROpened, 7, false)); err != nil {
		t.Fatal(err)
	}
	st := f.settle(t)
	ptr, ok := f.pointer(t, "pr-7")
	if !ok || ptr.Commit != site.Commit(head) {
		t.Fatalf("pr-7 pointer %+v, %v; want commit %s\nstatus %+v", ptr, ok, head, st)
	}
	m, err := f.pub.Manifest(context.Background(), "s", ptr.Deploy)
	if err != nil || m.Build.BaseURL != "http://pr-7--s.test/" {
		t.Errorf("preview base URL %q, %v; want the preview's own URL", m.Build.BaseURL, err)
	}
	if cs := st.Channels["pr-7"]; cs.State != site.Synced || cs.URL != "http://pr-7--s.test/" {
		t.Errorf("pr-7 status %+v", cs)
	}
	if got := f.reports.states("pr-7"); !slices.Equal(got, []site.Outcome{site.OutcomeBuilding, site.OutcomeLive}) {
		t.Errorf("reported %v for pr-7, want pending then success", got)
	}

	// synchronize: a new head.
	head2 := f.pushPR(t, "7", "<h1>preview two</h1>")
	f.loop.Dispatch(context.Background(), "s", prEvent(site.EventPRUpdated, 7, false))
	f.settle(t)
	if ptr, _ := f.pointer(t, "pr-7"); ptr.Commit != site.Commit(head2) {
		t.Errorf("pr-7 after update at %s, want %s", ptr.Commit, head2)
	}

	// closed: the preview goes away, production stays.
	f.loop.Dispatch(context.Background(), "s", prEvent(site.EventPRMerged, 7, false))
	st = f.settle(t)
	if _, ok := f.pointer(t, "pr-7"); ok {
		t.Error("pr-7 still exists after the pull request was merged")
	}
	if _, ok := st.Channels["pr-7"]; ok {
		t.Error("pr-7 still in the status")
	}
	if live, _ := f.pointer(t, site.Production); live.Deploy != prod.LiveDeploy {
		t.Errorf("production moved to %s during the preview's life, want %s", live.Deploy, prod.LiveDeploy)
	}
}

func TestForkPolicy(t *testing.T) {
	for _, tt := range []struct {
		forks       string
		wantPreview bool
		wantSecrets bool
	}{
		{reconcile.ForksNoSecrets, true, false},
		{reconcile.ForksOff, false, false},
		{reconcile.ForksOn, true, true},
	} {
		t.Run(tt.forks, func(t *testing.T) {
			f := newFixture(t, reconcile.Spec{
				Previews: reconcile.Previews{Enabled: true, Forks: tt.forks},
				Build:    build.Settings{SecretEnv: map[string]string{"API_KEY": "s3cret"}},
			}, 0)
			f.builder.reqs = make(chan build.Request, 10)
			f.sync(t)
			if req := <-f.builder.reqs; req.Untrusted {
				t.Error("the production build is untrusted")
			}
			f.pushPR(t, "3", "fork content")
			f.loop.Dispatch(context.Background(), "s", prEvent(site.EventPROpened, 3, true))
			f.settle(t)
			_, ok := f.pointer(t, "pr-3")
			if ok != tt.wantPreview {
				t.Fatalf("preview exists = %v, want %v", ok, tt.wantPreview)
			}
			if !ok {
				return
			}
			req := <-f.builder.reqs
			if got := req.Settings.SecretEnv["API_KEY"] == "s3cret"; got != tt.wantSecrets {
				t.Errorf("fork build had secrets = %v, want %v", got, tt.wantSecrets)
			}
			if !req.Untrusted {
				t.Error("a fork's build may write the site's Hugo cache (Request.Untrusted not set)")
			}
		})
	}
}

func TestPollFindsPreviewsAndTTLExpires(t *testing.T) {
	f := newFixture(t, reconcile.Spec{Previews: reconcile.Previews{Enabled: true, TTL: time.Hour, Forks: reconcile.ForksNoSecrets}}, 0)
	f.sync(t)
	f.repo.Now() // the head must be younger than the TTL to be previewed
	head := f.pushPR(t, "12", "polled")
	f.sync(t) // a poll: ls-remote finds refs/pull/12/head
	if ptr, ok := f.pointer(t, "pr-12"); !ok || ptr.Commit != site.Commit(head) {
		t.Fatalf("poll did not preview pr-12: %+v %v", ptr, ok)
	}
	f.clock.Store(int64(2 * time.Hour / time.Second))
	f.sync(t)
	if _, ok := f.pointer(t, "pr-12"); ok {
		t.Error("pr-12 outlived previews.ttl")
	}
	// Its head is now older than the TTL: polling does not bring it back.
	f.sync(t)
	if _, ok := f.pointer(t, "pr-12"); ok {
		t.Error("an expired preview came back on the next poll")
	}
}

func TestBranchDeploys(t *testing.T) {
	f := newFixture(t, reconcile.Spec{Branches: []string{"staging"}}, 0)
	f.sync(t)
	f.repo.Git(f.repo.Work, "checkout", "-q", "-b", "staging")
	f.repo.Write("index.html", "staging")
	staging := f.repo.Commit("staging")
	f.loop.Dispatch(context.Background(), "s", site.Event{Forge: "github", Kind: site.EventPush, Ref: "refs/heads/staging", Commit: site.Commit(staging)})
	st := f.settle(t)
	if ptr, ok := f.pointer(t, "branch-staging"); !ok || ptr.Commit != site.Commit(staging) {
		t.Fatalf("branch-staging %+v %v; status %+v", ptr, ok, st)
	}
	if st.LiveCommit == site.Commit(staging) {
		t.Error("a branch push reached production")
	}
	f.loop.Dispatch(context.Background(), "s", site.Event{Forge: "github", Kind: site.EventBranchDeleted, Ref: "refs/heads/staging"})
	f.settle(t)
	if _, ok := f.pointer(t, "branch-staging"); ok {
		t.Error("branch deploy survived the branch's deletion")
	}
}
