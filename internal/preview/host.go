// Package preview names the hosts of previews, branch deploys and deploy
// permalinks (DESIGN §5): <label>--<site>.<preview_domain>.
package preview

import (
	"strconv"
	"strings"

	"github.com/sitehost/sitehost/internal/site"
)

// Kind is what a preview host points at.
type Kind int

// Kinds of preview hosts.
const (
	KindNone      Kind = iota
	KindPull           // pr-<N>: a pull request's channel
	KindBranch         // <branch-slug>: a branch deploy's channel
	KindPermalink      // <deploy-id>: one immutable deploy
)

// Target is what a preview host resolves to.
type Target struct {
	Kind    Kind
	Site    site.Name
	Channel site.Channel  // KindPull, KindBranch
	Deploy  site.DeployID // KindPermalink
}

// ParseHost splits a host under previewDomain into its target. host must be
// lowercase without port. ok is false for hosts that are not preview hosts.
func ParseHost(host, previewDomain string) (Target, bool) {
	suffix := "." + previewDomain
	if previewDomain == "" || !strings.HasSuffix(host, suffix) {
		return Target{}, false
	}
	first := strings.TrimSuffix(host, suffix)
	if strings.Contains(first, ".") {
		return Target{}, false
	}
	i := strings.LastIndex(first, "--")
	if i <= 0 {
		return Target{}, false
	}
	label, name := first[:i], site.Name(first[i+2:])
	if name.Valid() != nil || label == "" {
		return Target{}, false
	}
	if n, ok := strings.CutPrefix(label, "pr-"); ok {
		if num, err := strconv.Atoi(n); err == nil && num > 0 && strconv.Itoa(num) == n {
			return Target{Kind: KindPull, Site: name, Channel: site.PullRequest(num)}, true
		}
	}
	if id := site.DeployID(label); id.Valid() {
		return Target{Kind: KindPermalink, Site: name, Deploy: id}, true
	}
	if site.Slug(label) == label {
		return Target{Kind: KindBranch, Site: name, Channel: site.Branch(label)}, true
	}
	return Target{}, false
}

// PermalinkHost is the host of one deploy.
func PermalinkHost(id site.DeployID, s site.Name, previewDomain string) string {
	return string(id) + "--" + string(s) + "." + previewDomain
}

// ChannelHost is the host of a preview or branch channel ("" for production).
func ChannelHost(c site.Channel, s site.Name, previewDomain string) string {
	label := string(c) // pr-<N>
	switch c.Kind() {
	case site.KindPullRequest:
	case site.KindBranch:
		label, _ = c.BranchSlug()
	default:
		return ""
	}
	return label + "--" + string(s) + "." + previewDomain
}
