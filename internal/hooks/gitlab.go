package hooks

import (
	"net/http"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// GitLab payloads: https://docs.gitlab.com/user/project/integrations/webhook_events/

type glProject struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	WebURL            string `json:"web_url"`
	GitHTTPURL        string `json:"git_http_url"`
	GitSSHURL         string `json:"git_ssh_url"`
}

func (p *glProject) urls() []string {
	if p == nil {
		return nil
	}
	return urls(p.WebURL, p.GitHTTPURL, p.GitSSHURL)
}

type glPayload struct {
	ObjectKind  string     `json:"object_kind"`
	Ref         string     `json:"ref"`
	After       string     `json:"after"`
	CheckoutSHA string     `json:"checkout_sha"`
	Project     *glProject `json:"project"`
	Attrs       *struct {
		IID             int        `json:"iid"`
		Action          string     `json:"action"`
		Title           string     `json:"title"`
		OldRev          string     `json:"oldrev"`
		SourceBranch    string     `json:"source_branch"`
		SourceProjectID int64      `json:"source_project_id"`
		TargetProjectID int64      `json:"target_project_id"`
		Source          *glProject `json:"source"`
		Target          *glProject `json:"target"`
		LastCommit      struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
}

// parseGitLab maps push, tag_push and merge_request payloads. It goes by
// object_kind, which GitLab sends in every payload (X-Gitlab-Event says the
// same in words, and is "System Hook" for instance-wide hooks).
func parseGitLab(h http.Header, body []byte) (site.Event, error) {
	var p glPayload
	if err := decode("gitlab", body, &p); err != nil {
		return site.Event{}, err
	}
	ev := site.Event{
		Forge: "gitlab",
		// Idempotency-Key stays the same across retries of one event;
		// X-Gitlab-Webhook-UUID names the hook, not the delivery.
		Delivery: firstHeader(h, "Idempotency-Key", "X-Gitlab-Event-UUID", "Webhook-Id"),
		RepoURLs: p.Project.urls(),
	}
	var err error
	switch p.ObjectKind {
	case "push", "tag_push":
		after := p.After
		if !zeroSHA(after) && p.CheckoutSHA != "" {
			after = p.CheckoutSHA // the commit, also for annotated tags
		}
		ev, err = pushEvent(ev, p.Ref, after, false)
	case "merge_request":
		ev, err = p.mergeRequest(ev)
	case "":
		return ev, malformedf("gitlab payload has no object_kind")
	default:
		return ev, ignoref("gitlab %s event", p.ObjectKind)
	}
	if err == nil && len(ev.RepoURLs) == 0 {
		err = malformedf("gitlab %s payload names no project", p.ObjectKind)
	}
	return ev, err
}

func (p *glPayload) mergeRequest(ev site.Event) (site.Event, error) {
	a := p.Attrs
	if a == nil {
		return ev, malformedf("gitlab merge_request payload has no object_attributes")
	}
	switch a.Action {
	case "open":
		ev.Kind = site.EventPROpened
	case "update":
		// GitLab says "update" for title, label and assignee edits too;
		// only an update that carries oldrev moved the head.
		if a.OldRev == "" {
			return ev, ignoref("gitlab merge_request update without new commits")
		}
		ev.Kind = site.EventPRUpdated
	case "reopen":
		ev.Kind = site.EventPRReopened
	case "merge":
		ev.Kind = site.EventPRMerged
	case "close":
		ev.Kind = site.EventPRClosed
	default:
		return ev, ignoref("gitlab merge_request %q", a.Action)
	}
	if len(ev.RepoURLs) == 0 {
		ev.RepoURLs = a.Target.urls()
	}
	fork := a.SourceProjectID != a.TargetProjectID
	if a.SourceProjectID == 0 || a.TargetProjectID == 0 {
		// Trimmed payloads: compare the projects' paths instead.
		fork = a.Source == nil || a.Target == nil || a.Source.PathWithNamespace == "" ||
			!strings.EqualFold(a.Source.PathWithNamespace, a.Target.PathWithNamespace)
	}
	return prEvent(ev, prFields{
		forge: "gitlab", number: a.IID, title: a.Title,
		branch: a.SourceBranch, sha: a.LastCommit.ID, head: a.Source.urls(), fork: fork,
	})
}
