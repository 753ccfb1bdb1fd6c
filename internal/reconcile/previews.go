package reconcile

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// Dispatch acts on a forge webhook for one site: a push syncs production
// and any branch deploy it moves, a pull request event updates or removes
// its preview. It only enqueues: the webhook answers at once.
func (l *Loop) Dispatch(_ context.Context, name site.Name, ev site.Event) error {
	w, ok := l.worker(name)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSite, name)
	}
	spec := w.spec
	switch ev.Kind {
	case site.EventPush:
		w.request(func() {
			w.pending[site.Production] = job{}
			if b, ok := configuredBranch(spec, ev.Ref); ok {
				w.pending[site.Branch(b)] = job{}
			}
		})
	case site.EventBranchDeleted:
		if b, ok := configuredBranch(spec, ev.Ref); ok {
			w.request(func() { w.pending[site.Branch(b)] = job{kind: jobDelete} })
		}
	case site.EventPROpened, site.EventPRUpdated, site.EventPRReopened:
		if !spec.Previews.Enabled || ev.PR <= 0 {
			return nil
		}
		if ev.Fork && spec.Previews.Forks == ForksOff {
			w.log.Info("no preview for a pull request from a fork (previews.forks: off)", "pr", ev.PR)
			return nil
		}
		ref := pullRef(ev)
		if ref == "" {
			w.log.Warn("no preview: cannot fetch this pull request's head", "pr", ev.PR, "forge", ev.Forge)
			return nil
		}
		w.request(func() { w.pending[site.PullRequest(ev.PR)] = job{ref: ref, head: ev.Ref, fork: ev.Fork} })
	case site.EventPRClosed, site.EventPRMerged:
		if ev.PR > 0 {
			w.request(func() { w.pending[site.PullRequest(ev.PR)] = job{kind: jobDelete} })
		}
	}
	return nil
}

// configuredBranch returns the branch of ref if the site deploys it.
func configuredBranch(spec Spec, ref string) (string, bool) {
	b, ok := strings.CutPrefix(ref, "refs/heads/")
	return b, ok && slices.Contains(spec.Branches, b)
}

// pullRef is where the forge keeps a pull request's head in the base
// repository, so fork heads can be fetched without a second remote.
func pullRef(ev site.Event) string {
	switch ev.Forge {
	case "github", "gitea", "forgejo":
		return "refs/pull/" + strconv.Itoa(ev.PR) + "/head"
	case "gitlab":
		return "refs/merge-requests/" + strconv.Itoa(ev.PR) + "/head"
	}
	// Bitbucket has no such refs: a same-repository head is a branch.
	if !ev.Fork && strings.HasPrefix(ev.Ref, "refs/heads/") {
		return ev.Ref
	}
	return ""
}

var pullRefRE = regexp.MustCompile(`^refs/(?:pull|merge-requests)/([1-9][0-9]*)/head$`)

// pollNewest is how many of the highest-numbered pull request refs a poll
// considers besides those already previewed: GitHub and GitLab keep the
// refs of closed requests forever, and old ones must not all be built.
const pollNewest = 20

// pollPreviews finds pull request heads with ls-remote (poll mode has no
// webhooks) and brings their previews up to date. Heads that are also a
// branch tip in the repository are treated as same-repository requests;
// the rest as forks, since ls-remote cannot tell. It returns the
// failures.
func (l *Loop) pollPreviews(ctx context.Context, w *worker) (failures []error) {
	refs, err := w.repo.ListRefs(ctx)
	if err != nil {
		w.log.Warn("listing pull request refs", "err", err)
		return []error{fmt.Errorf("listing pull request refs: %w", err)}
	}
	live, err := l.opts.Publisher.Channels(ctx, w.spec.Name)
	if err != nil {
		w.log.Warn("listing channels", "err", err)
		return []error{fmt.Errorf("listing channels: %w", err)}
	}
	// The branches at each commit: a head that is a branch tip is no fork's,
	// and when one branch alone is there, it is the head branch.
	branchTips := map[site.Commit][]string{}
	type pull struct {
		n   int
		ref string
	}
	var pulls []pull
	for ref, commit := range refs {
		if strings.HasPrefix(ref, "refs/heads/") {
			branchTips[commit] = append(branchTips[commit], ref)
		}
		if m := pullRefRE.FindStringSubmatch(ref); m != nil {
			n, _ := strconv.Atoi(m[1])
			pulls = append(pulls, pull{n, ref})
		}
	}
	slices.SortFunc(pulls, func(a, b pull) int { return b.n - a.n })
	for i, p := range pulls {
		c := site.PullRequest(p.n)
		ptr, previewed := live[c]
		if !previewed && i >= pollNewest {
			continue
		}
		if ptr.Commit == refs[p.ref] {
			continue
		}
		tips := branchTips[refs[p.ref]]
		j := job{ref: p.ref, fork: len(tips) == 0, maxAge: w.spec.Previews.TTL}
		if len(tips) == 1 {
			j.head = tips[0]
		}
		if previewed {
			j.maxAge = 0 // keep updating a preview that exists
		}
		if err := l.syncChannel(ctx, w, c, j); err != nil {
			failures = append(failures, err)
		}
	}
	return failures
}

// expirePreviews removes previews not updated within the TTL, and branch
// deploys of branches no longer configured.
func (l *Loop) expirePreviews(ctx context.Context, w *worker) {
	chans, err := l.opts.Publisher.Channels(ctx, w.spec.Name)
	if err != nil {
		w.log.Warn("listing channels", "err", err)
		return
	}
	now := l.opts.Now()
	for c, ptr := range chans {
		switch c.Kind() {
		case site.KindPullRequest:
			if ttl := w.spec.Previews.TTL; ttl > 0 && now.Sub(ptr.PublishedAt) > ttl {
				l.deleteChannel(ctx, w, c, fmt.Sprintf("no update for longer than previews.ttl (%s)", ttl)) //nolint:errcheck // logged; the next run tries again
			}
		case site.KindBranch:
			if !slices.ContainsFunc(w.spec.Branches, func(b string) bool { return site.Branch(b) == c }) {
				l.deleteChannel(ctx, w, c, "the branch is no longer in the site's branches") //nolint:errcheck // logged; the next run tries again
			}
		}
	}
}
