package forge

import (
	"net/http"
	"net/url"
	"strings"
)

// GitLab: "Set the pipeline status of a commit" in the Commits API,
// https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
//
//	POST /projects/:id/statuses/:sha
//	{"state": "pending|running|success|failed|canceled|skipped", "name", "target_url", "description", "ref"}
//
// :id is the project's numeric ID or its URL-encoded full path
// (https://docs.gitlab.com/api/rest/#namespaced-paths), so
// group/sub/project becomes group%2Fsub%2Fproject. Personal, project and
// group access tokens go in the PRIVATE-TOKEN header
// (https://docs.gitlab.com/api/rest/authentication/). We send no "ref":
// GitLab then finds the pipeline by commit alone.
var gitlabSpec = spec{
	descLimit: otherDescLimit,
	target: func(r repoRef) (target, error) {
		// Any depth of subgroups: the whole path names the project.
		return newTarget(r.web, r.segs), nil
	},
	defaultAPI: func(r repoRef, _ target) (string, error) {
		// gitlab.com and self-managed instances alike serve /api/v4 on the
		// web host; deriving it keeps the token on its own instance.
		return r.web + "/api/v4", nil
	},
	request: func(t target, s Status) (string, any) {
		id := url.PathEscape(strings.Join(t.segs, "/")) // escapes "/" as %2F
		return "/projects/" + id + "/statuses/" + url.PathEscape(string(s.Commit)), gitlabStatus{
			State:       gitlabState(s.State),
			Name:        s.Context,
			TargetURL:   s.TargetURL,
			Description: s.Description,
		}
	},
	auth: func(h http.Header, token string) { h.Set("PRIVATE-TOKEN", token) },
}

type gitlabStatus struct {
	State       string `json:"state"`
	Name        string `json:"name,omitempty"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
}

// gitlabState maps Pending to "running": sitehost reports it when a build
// starts, and GitLab's "pending" means queued and not yet started.
func gitlabState(s State) string {
	switch s {
	case Success:
		return "success"
	case Failure:
		return "failed"
	}
	return "running"
}
