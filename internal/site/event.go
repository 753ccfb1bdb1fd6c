package site

// EventKind is what happened in a repository, normalised across forges.
type EventKind string

// Event kinds.
const (
	EventPing          EventKind = "ping"           // the forge testing the hook
	EventPush          EventKind = "push"           // a branch or tag moved (or was created)
	EventBranchDeleted EventKind = "branch_deleted" // a branch (or tag) was deleted
	EventPROpened      EventKind = "pr_opened"
	EventPRUpdated     EventKind = "pr_updated" // new commits on the head (synchronize, synchronized, update)
	EventPRReopened    EventKind = "pr_reopened"
	EventPRClosed      EventKind = "pr_closed" // closed without merging
	EventPRMerged      EventKind = "pr_merged"
)

// Event is one webhook delivery, normalised. Forge-specific parsing lives in
// package hooks; the reconcile loop acts on events.
type Event struct {
	Forge    string    // github, gitlab, gitea, forgejo, bitbucket, generic
	Kind     EventKind //
	Delivery string    // the forge's delivery ID, for deduplication ("" if none)

	// RepoURLs are every URL the payload gives for the (base) repository:
	// web, https clone, ssh clone. A site matches if its repo equals any.
	// A Bitbucket Data Center payload without clone links gives the
	// host-less path /projects/KEY/repos/slug instead (see hooks.RepoKey).
	RepoURLs []string

	// Ref is the full ref that moved or was deleted (refs/heads/main,
	// refs/tags/v1.0) for pushes; for pull requests, the head branch
	// (refs/heads/feature) in the head repository.
	Ref    string
	Commit Commit // the new head commit ("" for deletions)

	// Pull requests only.
	PR       int      // number (GitHub, Gitea, Bitbucket) or IID (GitLab)
	HeadRepo []string // URLs of the head repository (differs from RepoURLs for forks)
	Fork     bool     // the head repository is not the base repository
	Title    string
}

// IsPR reports whether e is about a pull or merge request.
func (e Event) IsPR() bool {
	switch e.Kind {
	case EventPROpened, EventPRUpdated, EventPRReopened, EventPRClosed, EventPRMerged:
		return true
	}
	return false
}
