package hooks

import (
	"net/http"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// Gitea and Forgejo payloads: https://docs.gitea.com/usage/webhooks,
// https://forgejo.org/docs/latest/user/webhooks/. Forgejo sends the Gitea
// headers too, plus its own X-Forgejo-* ones.

type gtRepo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
}

func (r *gtRepo) urls() []string {
	if r == nil {
		return nil
	}
	return urls(r.HTMLURL, r.CloneURL, r.SSHURL)
}

type gtBranch struct {
	Ref    string  `json:"ref"`
	SHA    string  `json:"sha"`
	RepoID int64   `json:"repo_id"`
	Repo   *gtRepo `json:"repo"`
}

type gtPayload struct {
	Action      string  `json:"action"`
	Ref         string  `json:"ref"`
	RefType     string  `json:"ref_type"` // create and delete events
	SHA         string  `json:"sha"`      // create events
	After       string  `json:"after"`
	Number      int     `json:"number"`
	Repository  *gtRepo `json:"repository"`
	PullRequest *struct {
		Number int      `json:"number"`
		Title  string   `json:"title"`
		Merged bool     `json:"merged"`
		Head   gtBranch `json:"head"`
		Base   gtBranch `json:"base"`
	} `json:"pull_request"`
}

// parseGitea maps push, create, delete and pull_request payloads of Gitea
// and Forgejo; the X-Forgejo-Event header makes the event Forgejo's.
func parseGitea(h http.Header, body []byte) (site.Event, error) {
	ev := site.Event{Forge: "gitea", Delivery: h.Get("X-Gitea-Delivery")}
	kind, typ := h.Get("X-Gitea-Event"), h.Get("X-Gitea-Event-Type")
	if k := h.Get("X-Forgejo-Event"); k != "" {
		ev.Forge, ev.Delivery = "forgejo", firstHeader(h, "X-Forgejo-Delivery", "X-Gitea-Delivery")
		kind, typ = k, firstHeader(h, "X-Forgejo-Event-Type", "X-Gitea-Event-Type")
	}
	if kind == "" {
		return ev, malformedf("no X-Gitea-Event or X-Forgejo-Event header")
	}
	var p gtPayload
	if err := decode(ev.Forge, body, &p); err != nil {
		return ev, err
	}
	ev.RepoURLs = p.Repository.urls()
	var err error
	switch kind {
	case "push":
		ev, err = pushEvent(ev, p.Ref, p.After, false)
	case "create", "delete":
		ev, err = p.createDelete(ev, kind)
	case "pull_request":
		ev, err = p.pullRequest(ev, typ)
	default:
		return ev, ignoref("%s %s event", ev.Forge, kind)
	}
	if err == nil && len(ev.RepoURLs) == 0 {
		err = malformedf("%s %s payload names no repository", ev.Forge, kind)
	}
	return ev, err
}

// createDelete maps a branch or tag created or deleted; ref is bare there.
func (p *gtPayload) createDelete(ev site.Event, kind string) (site.Event, error) {
	var prefix string
	switch p.RefType {
	case "branch":
		prefix = "refs/heads/"
	case "tag":
		prefix = "refs/tags/"
	default:
		return ev, ignoref("%s %s of a %q", ev.Forge, kind, p.RefType)
	}
	ref := qualify(prefix, p.Ref)
	if kind == "delete" {
		return pushEvent(ev, ref, "", true)
	}
	if p.SHA == "" {
		// Older Gitea sends no sha: the ref moved, resolve it.
		full, err := needRef(ev.Forge, ref)
		ev.Kind, ev.Ref = site.EventPush, full
		return ev, err
	}
	return pushEvent(ev, ref, p.SHA, false)
}

func (p *gtPayload) pullRequest(ev site.Event, typ string) (site.Event, error) {
	pr := p.PullRequest
	if pr == nil {
		return ev, malformedf("%s pull_request payload has no pull_request", ev.Forge)
	}
	switch {
	case typ != "" && typ != "pull_request" && typ != "pull_request_sync":
		// pull_request_label, _assign, _milestone, _review_request
		return ev, ignoref("%s %s event", ev.Forge, typ)
	case typ == "pull_request_sync":
		ev.Kind = site.EventPRUpdated
	default:
		kind, ok := prActionKind(p.Action, pr.Merged, "synchronized")
		if !ok {
			return ev, ignoref("%s pull_request %q", ev.Forge, p.Action)
		}
		ev.Kind = kind
	}
	if len(ev.RepoURLs) == 0 {
		ev.RepoURLs = pr.Base.Repo.urls()
	}
	number := pr.Number
	if number == 0 {
		number = p.Number
	}
	return prEvent(ev, prFields{
		forge: ev.Forge, number: number, title: pr.Title,
		branch: pr.Head.Ref, sha: pr.Head.SHA, head: pr.Head.Repo.urls(), fork: giteaFork(pr.Head, pr.Base),
	})
}

// giteaFork reports whether head lives in another repository than base:
// by repository ID when both are known, else by full name.
func giteaFork(head, base gtBranch) bool {
	hid, bid := head.RepoID, base.RepoID
	if hid == 0 && head.Repo != nil {
		hid = head.Repo.ID
	}
	if bid == 0 && base.Repo != nil {
		bid = base.Repo.ID
	}
	if hid != 0 && bid != 0 {
		return hid != bid
	}
	return head.Repo == nil || base.Repo == nil || head.Repo.FullName == "" ||
		!strings.EqualFold(head.Repo.FullName, base.Repo.FullName)
}

// prActionKind maps the pull request actions GitHub and Gitea/Forgejo share
// (they differ only in the word for new commits: synced); ok is false for
// actions we do not act on (edited, labeled, assigned…).
func prActionKind(action string, merged bool, synced string) (site.EventKind, bool) {
	switch {
	case action == "opened":
		return site.EventPROpened, true
	case action == synced:
		return site.EventPRUpdated, true
	case action == "reopened":
		return site.EventPRReopened, true
	case action == "closed" && merged:
		return site.EventPRMerged, true
	case action == "closed":
		return site.EventPRClosed, true
	}
	return "", false
}
