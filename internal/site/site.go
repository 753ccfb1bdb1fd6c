// Package site is the leaf vocabulary shared by every other package: site
// names, channels, commits, deploy IDs and the events that drive a sync.
// It does no I/O.
package site

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Name is a site's name from sites.yaml. It appears in hostnames
// (<label>--<name>.<preview_domain>) and storage keys, so it is a DNS label
// without "--", which separates the label from the site in preview hosts.
type Name string

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ErrBadName reports a site name that cannot be used in hostnames and keys.
var ErrBadName = errors.New("site: bad name")

// Valid reports why n cannot be a site name, or nil.
func (n Name) Valid() error {
	s := string(n)
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(s) > 40:
		return fmt.Errorf("%w %q: longer than 40 characters", ErrBadName, s)
	case !nameRE.MatchString(s):
		return fmt.Errorf("%w %q: use lowercase letters, digits and single hyphens, starting and ending with a letter or digit", ErrBadName, s)
	case strings.Contains(s, "--"):
		return fmt.Errorf("%w %q: \"--\" is reserved as the separator in preview hostnames", ErrBadName, s)
	}
	return nil
}

// Channel names a pointer to a live deploy of a site: production, a pull
// request preview (pr-N) or a branch deploy (branch-<slug>).
type Channel string

// Production is the channel served on a site's domains.
const Production Channel = "production"

// PullRequest returns the channel of pull request n.
func PullRequest(n int) Channel { return Channel("pr-" + strconv.Itoa(n)) }

// Branch returns the channel of a branch deploy.
func Branch(branch string) Channel { return Channel("branch-" + Slug(branch)) }

var channelRE = regexp.MustCompile(`^(production|pr-[1-9][0-9]*|branch-[a-z0-9]([a-z0-9-]*[a-z0-9])?)$`)

// Valid reports whether c is a well-formed channel name.
func (c Channel) Valid() bool { return channelRE.MatchString(string(c)) }

// ChannelKind is what a channel deploys: the site's ref, a pull request's
// head or a branch. Its value is the channel name's prefix.
type ChannelKind string

// The kinds of channel; a malformed channel has none ("").
const (
	KindProduction  ChannelKind = "production"
	KindPullRequest ChannelKind = "pr"
	KindBranch      ChannelKind = "branch"
)

// Kind says what c deploys, "" when c is not a valid channel name.
func (c Channel) Kind() ChannelKind {
	switch {
	case !c.Valid():
		return ""
	case c == Production:
		return KindProduction
	case strings.HasPrefix(string(c), "pr-"):
		return KindPullRequest
	}
	return KindBranch
}

// PullRequest is the number of a pull request's channel; ok is false for
// other channels.
func (c Channel) PullRequest() (n int, ok bool) {
	if c.Kind() != KindPullRequest {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(c), "pr-"))
	return n, err == nil
}

// BranchSlug is the slug of a branch deploy's branch (see Slug); ok is
// false for other channels.
func (c Channel) BranchSlug() (slug string, ok bool) {
	if c.Kind() != KindBranch {
		return "", false
	}
	return strings.TrimPrefix(string(c), "branch-"), true
}

// CompareChannels orders channels as people read them: production
// first, then the others by name.
func CompareChannels(a, b Channel) int {
	if (a == Production) != (b == Production) {
		if a == Production {
			return -1
		}
		return 1
	}
	return strings.Compare(string(a), string(b))
}

// Slug turns a branch name into a DNS-safe label: lowercase, [a-z0-9-],
// no leading, trailing or doubled hyphens.
func Slug(s string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			hyphen = false
			continue
		}
		if !hyphen && b.Len() > 0 {
			b.WriteByte('-')
			hyphen = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 40 {
		out = strings.TrimRight(out[:40], "-")
	}
	return out
}

// Commit is a full git commit SHA in lowercase hex.
type Commit string

// Short returns the first 7 characters, as git prints them.
func (c Commit) Short() string {
	if len(c) > 7 {
		return string(c[:7])
	}
	return string(c)
}

// DeployID identifies an immutable deploy. It is derived from the build key,
// so one build key never yields two deploys.
type DeployID string

// DeployIDLen is the number of hex characters in a deploy ID.
const DeployIDLen = 16

var deployIDRE = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

// Valid reports whether d looks like a deploy ID (12+ lowercase hex).
func (d DeployID) Valid() bool { return deployIDRE.MatchString(string(d)) }

// Outcome is where one deploy attempt stands, or how it ended: the
// journal's state of an attempt, the API's state of a deploy, what the
// loop reports to forges and notifications. Its values are what the API
// shows.
type Outcome string

// The outcomes.
const (
	OutcomeBuilding   Outcome = "building"   // fetching, building or uploading now
	OutcomeLive       Outcome = "live"       // published: the channel serves it
	OutcomeReady      Outcome = "ready"      // built, not live (replaced, or never published)
	OutcomeFailed     Outcome = "failed"     // the attempt failed
	OutcomeSuperseded Outcome = "superseded" // a newer commit arrived before it went live
	OutcomeRemoved    Outcome = "removed"    // the channel was deleted
)

// State is a site's or channel's sync state (DESIGN §9).
type State string

// The sync states.
const (
	Synced      State = "Synced"
	OutOfSync   State = "OutOfSync"
	Progressing State = "Progressing"
	Failed      State = "Failed"
	Pinned      State = "Pinned"
)
