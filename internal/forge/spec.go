package forge

import "net/http"

// spec is what differs between forges.
type spec struct {
	descLimit  int                                              // description length in characters; 0 = none
	target     func(r repoRef) (target, error)                  // the repository as the API names it
	defaultAPI func(r repoRef, t target) (string, error)        // used when Config.API is empty
	request    func(t target, s Status) (path string, body any) // path below the API base, JSON body
	auth       func(h http.Header, token string)
}

func specFor(kind string) (spec, bool) {
	switch kind {
	case "github":
		return githubSpec, true
	case "gitlab":
		return gitlabSpec, true
	case "gitea", "forgejo":
		return giteaSpec, true
	case "bitbucket":
		return bitbucketSpec, true
	}
	return spec{}, false
}

// otherDescLimit caps descriptions on forges that document no limit, to
// keep them readable and under common database column sizes.
const otherDescLimit = 255
