package forge

import (
	"net/http"
	"net/url"
	"strings"
)

// Gitea and Forgejo (a Gitea fork with the same endpoint): "Create a commit
// status", operation repoCreateStatus in the Swagger docs served at
// /api/swagger (https://gitea.com/api/swagger#/repository/repoCreateStatus,
// https://codeberg.org/api/swagger#/repository/repoCreateStatus):
//
//	POST /repos/{owner}/{repo}/statuses/{sha}
//	CreateStatusOption {"state": "pending|success|error|failure|warning", "target_url", "description", "context"}
//
// Tokens go in "Authorization: token <token>"
// (https://docs.gitea.com/development/api-usage#authentication).
var giteaSpec = spec{
	descLimit: otherDescLimit,
	target: func(r repoRef) (target, error) {
		// An instance may live under a sub-path (https://host/git/owner/repo):
		// the last two segments name the repository.
		n := len(r.segs)
		prefix := r.segs[:n-2]
		web := r.web
		if len(prefix) > 0 {
			web += "/" + strings.Join(prefix, "/")
		}
		return newTarget(web, r.segs[n-2:]), nil
	},
	defaultAPI: func(r repoRef, _ target) (string, error) {
		// No public default: self-hosted instances serve /api/v1 below
		// their root URL.
		base := r.web
		if prefix := r.segs[:len(r.segs)-2]; len(prefix) > 0 {
			base += "/" + strings.Join(prefix, "/")
		}
		return base + "/api/v1", nil
	},
	// Gitea's status API copies GitHub's: same body, same states.
	request: func(t target, s Status) (string, any) {
		return "/repos/" + escapedPath(t.segs) + "/statuses/" + url.PathEscape(string(s.Commit)), githubStatus{
			State:       githubState(s.State),
			TargetURL:   s.TargetURL,
			Description: s.Description,
			Context:     s.Context,
		}
	},
	auth: func(h http.Header, token string) { h.Set("Authorization", "token "+token) },
}
