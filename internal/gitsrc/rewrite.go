package gitsrc

import "strings"

// Rewrite maps URLs that start with From to start with To instead, as
// git's url.<To>.insteadOf = <From> does: a mirror, an internal forge or
// an air-gapped copy stands in for the URL the config or .gitmodules says.
type Rewrite struct {
	From, To string
}

// Rewrites apply to every URL sitehost fetches: site repositories,
// submodules and the config repository.
type Rewrites []Rewrite

// Apply rewrites url by the rule with the longest matching From, as git
// does; a URL no rule matches is returned as it is.
func (rs Rewrites) Apply(url string) string {
	best := -1
	for i, r := range rs {
		if r.From != "" && strings.HasPrefix(url, r.From) && (best < 0 || len(r.From) > len(rs[best].From)) {
			best = i
		}
	}
	if best < 0 {
		return url
	}
	return rs[best].To + url[len(rs[best].From):]
}
