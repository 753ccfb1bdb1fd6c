package forge

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Bitbucket Cloud: "Create a build status for a commit" in the Commit
// statuses group,
// https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/#api-repositories-workspace-repo-slug-commit-commit-statuses-build-post
//
//	POST /repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build
//	{"key", "state": "INPROGRESS|SUCCESSFUL|FAILED|STOPPED", "name", "url", "description"}
//
// "If the specified key already exists, the existing status object will be
// overwritten", so one key per context keeps one status per channel. "url"
// is required. Access tokens go in "Authorization: Bearer <token>"
// (https://developer.atlassian.com/cloud/bitbucket/rest/intro/#authentication).
// Bitbucket Data Center has a different API and is not supported.
var bitbucketSpec = spec{
	descLimit: otherDescLimit,
	target:    ownerRepo,
	defaultAPI: func(r repoRef, _ target) (string, error) {
		if r.host != "bitbucket.org" {
			return "", fmt.Errorf("%w: none given for Bitbucket host %s (only Bitbucket Cloud is supported)", ErrBadAPI, r.host)
		}
		return "https://api.bitbucket.org/2.0", nil
	},
	request: func(t target, s Status) (string, any) {
		link := s.TargetURL
		if link == "" {
			link = t.web + "/commits/" + url.PathEscape(string(s.Commit))
		}
		path := "/repositories/" + escapedPath(t.segs) + "/commit/" + url.PathEscape(string(s.Commit)) + "/statuses/build"
		return path, bitbucketStatus{
			Key:         bitbucketKey(s.Context),
			State:       bitbucketState(s.State),
			Name:        s.Context,
			URL:         link,
			Description: s.Description,
		}
	},
	auth: func(h http.Header, token string) { h.Set("Authorization", "Bearer "+token) },
}

type bitbucketStatus struct {
	Key         string `json:"key"`
	State       string `json:"state"`
	Name        string `json:"name,omitempty"`
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

func bitbucketState(s State) string {
	switch s {
	case Success:
		return "SUCCESSFUL"
	case Failure:
		return "FAILED"
	}
	return "INPROGRESS"
}

// bitbucketKey turns a context such as "sitehost/pr-7" into a key such as
// "sitehost-pr-7".
func bitbucketKey(ctx string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, ctx)
}
