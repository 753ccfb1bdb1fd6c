package hooks

import (
	"net/http"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// Bitbucket sends one of two payload families, told apart by X-Event-Key:
// Cloud (repo:push, pullrequest:*) per
// https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/ and
// Data Center (repo:refs_changed, pr:*) per
// https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html.

// parseBitbucket returns one event per ref change of a push.
func parseBitbucket(h http.Header, body []byte) ([]site.Event, error) {
	key := h.Get("X-Event-Key")
	ev := site.Event{Forge: "bitbucket", Delivery: firstHeader(h, "X-Request-UUID", "X-Request-Id")}
	switch {
	case key == "":
		return nil, malformedf("no X-Event-Key header")
	case key == "repo:push" || strings.HasPrefix(key, "pullrequest:"):
		return parseBitbucketCloud(ev, key, body)
	case key == "repo:refs_changed" || strings.HasPrefix(key, "pr:"):
		return parseBitbucketDC(ev, key, body)
	}
	return []site.Event{ev}, ignoref("bitbucket %s event", key)
}

// Bitbucket Cloud.

type bbRepo struct {
	FullName string `json:"full_name"`
	Links    struct {
		HTML struct {
			Href string `json:"href"`
		} `json:"html"`
	} `json:"links"`
}

// urls gives the web URL and the clone URLs, which Cloud payloads do not
// carry but which follow from the full name.
func (r *bbRepo) urls() []string {
	if r == nil {
		return nil
	}
	var https, ssh string
	if r.FullName != "" {
		https = "https://bitbucket.org/" + r.FullName + ".git"
		ssh = "git@bitbucket.org:" + r.FullName + ".git"
	}
	return urls(r.Links.HTML.Href, https, ssh)
}

type bbRefState struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // branch, tag, annotated_tag
	Target struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

type bbEnd struct {
	Branch struct {
		Name string `json:"name"`
	} `json:"branch"`
	Commit struct {
		Hash string `json:"hash"` // abbreviated (12 hex digits)
	} `json:"commit"`
	Repository *bbRepo `json:"repository"`
}

type bbPayload struct {
	Repository *bbRepo `json:"repository"`
	Push       *struct {
		Changes []struct {
			New *bbRefState `json:"new"` // null when the ref was deleted
			Old *bbRefState `json:"old"` // null when the ref was created
		} `json:"changes"`
	} `json:"push"`
	PullRequest *struct {
		ID          int    `json:"id"`
		Title       string `json:"title"`
		Source      bbEnd  `json:"source"`
		Destination bbEnd  `json:"destination"`
	} `json:"pullrequest"`
}

func parseBitbucketCloud(ev site.Event, key string, body []byte) ([]site.Event, error) {
	var p bbPayload
	if err := decode("bitbucket", body, &p); err != nil {
		return nil, err
	}
	ev.RepoURLs = p.Repository.urls()
	if len(ev.RepoURLs) == 0 && p.PullRequest != nil {
		ev.RepoURLs = p.PullRequest.Destination.Repository.urls()
	}
	if key == "repo:push" {
		return p.push(ev)
	}
	kind, ok := bbCloudPRKinds[key]
	if !ok {
		return []site.Event{ev}, ignoref("bitbucket %s event", key)
	}
	ev.Kind = kind
	pr := p.PullRequest
	if pr == nil {
		return nil, malformedf("bitbucket %s payload has no pullrequest", key)
	}
	if len(ev.RepoURLs) == 0 {
		return nil, malformedf("bitbucket %s payload names no repository", key)
	}
	src, dst := pr.Source.Repository, pr.Destination.Repository
	if dst == nil {
		dst = p.Repository
	}
	fork := src == nil || dst == nil || src.FullName == "" || !strings.EqualFold(src.FullName, dst.FullName)
	return one(prEvent(ev, prFields{
		forge: "bitbucket", number: pr.ID, title: pr.Title, branch: pr.Source.Branch.Name,
		sha: pr.Source.Commit.Hash, short: true, head: src.urls(), fork: fork,
	}))
}

func (p *bbPayload) push(ev site.Event) ([]site.Event, error) {
	if p.Push == nil {
		return nil, malformedf("bitbucket repo:push payload has no push")
	}
	if len(ev.RepoURLs) == 0 {
		return nil, malformedf("bitbucket repo:push payload names no repository")
	}
	var evs []site.Event
	for _, c := range p.Push.Changes {
		state, deleted := c.New, false
		if state == nil {
			state, deleted = c.Old, true
		}
		if state == nil {
			continue
		}
		var prefix string
		switch state.Type {
		case "branch":
			prefix = "refs/heads/"
		case "tag", "annotated_tag":
			prefix = "refs/tags/"
		default:
			continue // Mercurial bookmarks and named branches
		}
		e, err := pushEvent(ev, qualify(prefix, state.Name), state.Target.Hash, deleted)
		if err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		return []site.Event{ev}, ignoref("bitbucket push changes no branch or tag")
	}
	return evs, nil
}

// Bitbucket Data Center (formerly Server).

type bsRepo struct {
	ID      int64  `json:"id"`
	Slug    string `json:"slug"`
	Project struct {
		Key string `json:"key"`
	} `json:"project"`
	Links struct {
		Clone []struct {
			Href string `json:"href"`
		} `json:"clone"`
	} `json:"links"`
}

// urls gives the clone URLs (https and ssh); the payload has no web URL
// of the repository itself, only of its browse page. Without clone links
// (payloads of older servers, and of repo:refs_changed on some) it gives
// the host-less path /projects/PROJ/repos/slug, whose RepoKey matches the
// sites whose repository has that project and slug (see RepoKeys).
func (r *bsRepo) urls() []string {
	if r == nil {
		return nil
	}
	var hrefs []string
	for _, c := range r.Links.Clone {
		hrefs = append(hrefs, c.Href)
	}
	if out := urls(hrefs...); len(out) > 0 {
		return out
	}
	if pathElem(r.Project.Key) && pathElem(r.Slug) {
		return []string{"/projects/" + r.Project.Key + "/repos/" + r.Slug}
	}
	return nil
}

// pathElem reports whether s can stand as one element of a URL path.
func pathElem(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/?#%\\ \t\r\n")
}

func (r *bsRepo) same(o *bsRepo) bool {
	if r == nil || o == nil {
		return false
	}
	if r.ID != 0 && o.ID != 0 {
		return r.ID == o.ID
	}
	return r.Slug != "" && strings.EqualFold(r.Slug, o.Slug) && strings.EqualFold(r.Project.Key, o.Project.Key)
}

type bsRef struct {
	ID           string  `json:"id"` // full ref
	DisplayID    string  `json:"displayId"`
	LatestCommit string  `json:"latestCommit"`
	Repository   *bsRepo `json:"repository"`
}

type bsPayload struct {
	Repository *bsRepo `json:"repository"`
	Changes    []struct {
		Ref struct {
			ID string `json:"id"`
		} `json:"ref"`
		RefID  string `json:"refId"`
		ToHash string `json:"toHash"`
		Type   string `json:"type"` // ADD, UPDATE, DELETE
	} `json:"changes"`
	PullRequest *struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		FromRef bsRef  `json:"fromRef"`
		ToRef   bsRef  `json:"toRef"`
	} `json:"pullRequest"`
}

func parseBitbucketDC(ev site.Event, key string, body []byte) ([]site.Event, error) {
	var p bsPayload
	if err := decode("bitbucket", body, &p); err != nil {
		return nil, err
	}
	ev.RepoURLs = p.Repository.urls()
	if p.PullRequest != nil && len(ev.RepoURLs) == 0 {
		ev.RepoURLs = p.PullRequest.ToRef.Repository.urls()
	}
	if key == "repo:refs_changed" {
		return p.refsChanged(ev)
	}
	kind, ok := bbDCPRKinds[key]
	if !ok {
		// pr:modified (title, description, target), reviewers, comments
		return []site.Event{ev}, ignoref("bitbucket %s event", key)
	}
	ev.Kind = kind
	pr := p.PullRequest
	if pr == nil {
		return nil, malformedf("bitbucket %s payload has no pullRequest", key)
	}
	if len(ev.RepoURLs) == 0 {
		return nil, malformedf("bitbucket %s payload names no repository (no clone links, project key or slug)", key)
	}
	from := pr.FromRef
	branch := from.ID
	if branch == "" {
		branch = from.DisplayID
	}
	return one(prEvent(ev, prFields{
		forge: "bitbucket", number: pr.ID, title: pr.Title, branch: branch, sha: from.LatestCommit,
		head: from.Repository.urls(), fork: !from.Repository.same(pr.ToRef.Repository),
	}))
}

func (p *bsPayload) refsChanged(ev site.Event) ([]site.Event, error) {
	if len(ev.RepoURLs) == 0 {
		return nil, malformedf("bitbucket repo:refs_changed payload names no repository (no clone links, project key or slug)")
	}
	var evs []site.Event
	for _, c := range p.Changes {
		ref := c.Ref.ID
		if ref == "" {
			ref = c.RefID
		}
		e, err := pushEvent(ev, ref, c.ToHash, c.Type == "DELETE")
		if err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		return []site.Event{ev}, ignoref("bitbucket push changes no branch or tag")
	}
	return evs, nil
}

// The pull request events of Bitbucket Cloud and Data Center (X-Event-Key).
var (
	bbCloudPRKinds = map[string]site.EventKind{
		"pullrequest:created":   site.EventPROpened,
		"pullrequest:updated":   site.EventPRUpdated,
		"pullrequest:fulfilled": site.EventPRMerged,
		"pullrequest:rejected":  site.EventPRClosed,
	}
	bbDCPRKinds = map[string]site.EventKind{
		"pr:opened":           site.EventPROpened,
		"pr:from_ref_updated": site.EventPRUpdated,
		"pr:merged":           site.EventPRMerged,
		"pr:declined":         site.EventPRClosed,
		"pr:deleted":          site.EventPRClosed,
	}
)
