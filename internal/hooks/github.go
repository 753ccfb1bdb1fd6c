package hooks

import (
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// GitHub payloads: https://docs.github.com/en/webhooks/webhook-events-and-payloads

type ghRepo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	GitURL   string `json:"git_url"`
}

func (r *ghRepo) urls() []string {
	if r == nil {
		return nil
	}
	return urls(r.HTMLURL, r.CloneURL, r.SSHURL, r.GitURL)
}

type ghBranch struct {
	Ref  string  `json:"ref"`
	SHA  string  `json:"sha"`
	Repo *ghRepo `json:"repo"` // null when the head fork was deleted
}

type ghPayload struct {
	Action      string  `json:"action"`
	Ref         string  `json:"ref"`
	After       string  `json:"after"`
	Deleted     bool    `json:"deleted"`
	Repository  *ghRepo `json:"repository"`
	PullRequest *struct {
		Number int      `json:"number"`
		Title  string   `json:"title"`
		Merged bool     `json:"merged"`
		Head   ghBranch `json:"head"`
		Base   ghBranch `json:"base"`
	} `json:"pull_request"`
}

// parseGitHub maps X-GitHub-Event push, pull_request and ping.
func parseGitHub(h http.Header, body []byte) (site.Event, error) {
	kind := h.Get("X-GitHub-Event")
	if kind == "" {
		return site.Event{}, malformedf("no X-GitHub-Event header")
	}
	body, err := formPayload("github", h, body)
	if err != nil {
		return site.Event{}, err
	}
	var p ghPayload
	if err := decode("github", body, &p); err != nil {
		return site.Event{}, err
	}
	ev := site.Event{Forge: "github", Delivery: h.Get("X-GitHub-Delivery"), RepoURLs: p.Repository.urls()}
	switch kind {
	case "ping":
		if len(ev.RepoURLs) == 0 {
			return ev, ignoref("github ping without a repository (an organization or app hook)")
		}
		ev.Kind = site.EventPing
		return ev, nil
	case "push":
		ev, err = pushEvent(ev, p.Ref, p.After, p.Deleted)
	case "pull_request":
		ev, err = p.pullRequest(ev)
	default:
		return ev, ignoref("github %s event", kind)
	}
	if err == nil && len(ev.RepoURLs) == 0 {
		err = malformedf("github %s payload names no repository", kind)
	}
	return ev, err
}

func (p *ghPayload) pullRequest(ev site.Event) (site.Event, error) {
	pr := p.PullRequest
	if pr == nil {
		return ev, malformedf("github pull_request payload has no pull_request")
	}
	kind, ok := prActionKind(p.Action, pr.Merged, "synchronize")
	if !ok {
		return ev, ignoref("github pull_request %q", p.Action)
	}
	ev.Kind = kind
	if len(ev.RepoURLs) == 0 {
		ev.RepoURLs = pr.Base.Repo.urls()
	}
	base := pr.Base.Repo
	if base == nil {
		base = p.Repository
	}
	fork := pr.Head.Repo == nil || base == nil ||
		!strings.EqualFold(pr.Head.Repo.FullName, base.FullName) ||
		pr.Head.Repo.ID != 0 && base.ID != 0 && pr.Head.Repo.ID != base.ID
	return prEvent(ev, prFields{
		forge: "github", number: pr.Number, title: pr.Title,
		branch: pr.Head.Ref, sha: pr.Head.SHA, head: pr.Head.Repo.urls(), fork: fork,
	})
}

// prFields are what every forge's pull request payload yields.
type prFields struct {
	forge  string
	number int
	title  string
	branch string   // head branch, bare or full
	sha    string   // head commit
	short  bool     // the forge sends abbreviated SHAs (Bitbucket Cloud)
	head   []string // head repository URLs
	fork   bool
}

// prEvent fills in ev, whose Kind is set, from f.
func prEvent(ev site.Event, f prFields) (site.Event, error) {
	if f.number <= 0 {
		return ev, malformedf("%s pull request has no number", f.forge)
	}
	ref, err := needRef(f.forge, qualify("refs/heads/", f.branch))
	if err != nil {
		return ev, err
	}
	if f.short {
		// An abbreviation is no site.Commit: leave it to whoever
		// resolves Ref to find the full SHA.
		ev.Commit, _ = fullCommit(f.sha)
	} else if ev.Commit, err = needCommit(f.forge, "pull request head commit", f.sha); err != nil {
		return ev, err
	}
	ev.PR, ev.Title, ev.Ref, ev.HeadRepo, ev.Fork = f.number, f.title, ref, f.head, f.fork
	return ev, nil
}

// formPayload returns the JSON of a delivery sent with content type
// application/x-www-form-urlencoded (payload=<urlencoded JSON>), which is
// the default for hooks created through GitHub's REST API; any other body
// is returned as it is. The signature covers the body as sent, so Verify
// is given the raw body, never this.
func formPayload(forge string, h http.Header, body []byte) ([]byte, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		return body, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return body, nil // JSON, or a type we do not know: let decode judge
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, malformedf("%s form-encoded delivery: %w", forge, err)
	}
	if !form.Has("payload") {
		return nil, malformedf("%s form-encoded delivery has no payload field", forge)
	}
	return []byte(form.Get("payload")), nil
}
