package forge

import (
	"net/http"
	"net/url"
)

// GitHub: "Create a commit status", REST API version 2022-11-28,
// https://docs.github.com/en/rest/commits/statuses#create-a-commit-status
//
//	POST /repos/{owner}/{repo}/statuses/{sha}
//	{"state": "error|failure|pending|success", "target_url", "description", "context"}
//
// Authentication and headers: https://docs.github.com/en/rest/authentication
// and https://docs.github.com/en/rest/about-the-rest-api/api-versions.
var githubSpec = spec{
	descLimit: 140, // "A short description of the status." GitHub rejects longer ones.
	target:    ownerRepo,
	defaultAPI: func(r repoRef, _ target) (string, error) {
		if r.host == "github.com" || r.host == "www.github.com" {
			return "https://api.github.com", nil
		}
		// GitHub Enterprise Server serves the REST API under /api/v3. Deriving
		// it keeps the token on the host it was issued for.
		return r.web + "/api/v3", nil
	},
	request: func(t target, s Status) (string, any) {
		return "/repos/" + escapedPath(t.segs) + "/statuses/" + url.PathEscape(string(s.Commit)), githubStatus{
			State:       githubState(s.State),
			TargetURL:   s.TargetURL,
			Description: s.Description,
			Context:     s.Context,
		}
	},
	auth: func(h http.Header, token string) {
		h.Set("Authorization", "Bearer "+token)
		h.Set("Accept", "application/vnd.github+json")
		h.Set("X-GitHub-Api-Version", "2022-11-28")
	},
}

type githubStatus struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context,omitempty"`
}

func githubState(s State) string {
	switch s {
	case Success:
		return "success"
	case Failure:
		return "failure"
	}
	return "pending"
}
