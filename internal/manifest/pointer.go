package manifest

import (
	"time"

	"github.com/sitehost/sitehost/internal/site"
)

// Pointer is a channel's live deploy. Its write is the commit point.
type Pointer struct {
	Deploy site.DeployID `json:"deploy"`
	// Commit is the commit that made the channel what it is: the one its
	// ref named when the pointer was written, which for a revert is the
	// revert, not the commit Deploy was built from.
	Commit      site.Commit   `json:"commit"`
	PublishedAt time.Time     `json:"published_at"`
	Previous    site.DeployID `json:"previous,omitempty"`
	// History lists the deploys this channel has served, newest (the live
	// one) first, each once, at most 100: retention keeps the first N.
	History []site.DeployID `json:"history,omitempty"`
	// Since says when each deploy of History last went live, so History[i]
	// was replaced at Since[i-1]: skew protection serves the assets of
	// recently replaced deploys for a while.
	Since []time.Time `json:"history_since,omitempty"`
	// Events tell what happened to the channel, newest first, at most
	// MaxEvents. They are written with the pointer, so every replica and
	// every restart reads the same story. Pointers written before events
	// were recorded have none.
	Events []Event `json:"events,omitempty"`
	// Generation is the lease generation of the builder that wrote the
	// pointer (0: written without leases). A builder refuses to write a
	// pointer carrying a newer generation than its own: that fences a
	// builder that lost the site's lease (internal/lease).
	Generation uint64 `json:"lease_generation,omitempty"`
}

// MaxEvents bounds Pointer.Events: the oldest go first.
const MaxEvents = 50

// Event is one change of what a channel serves.
type Event struct {
	Kind EventKind `json:"kind"`
	// Commit caused the event (a revert's own commit for Reused), and Info
	// describes it: the deploy's manifest describes the commit it was
	// built from, which may be another.
	Commit site.Commit `json:"commit"`
	Info   CommitInfo  `json:"commit_info,omitzero"`
	// Deploy is what the channel serves from then on; Previous what it
	// served before ("" for a new channel, or when the deploy stayed).
	Deploy   site.DeployID `json:"deploy"`
	Previous site.DeployID `json:"previous,omitempty"`
	At       time.Time     `json:"at"`
}

// EventKind says how a deploy came to be live.
type EventKind string

// Event kinds.
const (
	// Built: a new deploy was built and made live.
	Built EventKind = "built"
	// Reused: a deploy built before, from the same tree and settings, was
	// made live again without a build (a git revert, a merge of a tree a
	// preview had built).
	Reused EventKind = "reused"
	// RolledBack: an earlier deploy was made live by an explicit rollback
	// rather than by a commit.
	RolledBack EventKind = "rolled_back"
	// Repaired: self-heal rebuilt the live deploy, found damaged in the
	// store, and wrote it again.
	Repaired EventKind = "repaired"
)

// Replaced returns the deploys this channel served before its live one,
// newest first, with when each stopped being live, as far as the pointer
// knows: one written before Since only knows it for the previous deploy.
func (p Pointer) Replaced() []Replacement {
	var out []Replacement
	for i := 1; i < len(p.History); i++ {
		var at time.Time
		switch {
		case len(p.Since) == len(p.History):
			at = p.Since[i-1]
		case i == 1:
			at = p.PublishedAt
		}
		if !at.IsZero() {
			out = append(out, Replacement{Deploy: p.History[i], At: at})
		}
	}
	return out
}

// Replacement is a deploy a channel no longer serves, and since when.
type Replacement struct {
	Deploy site.DeployID
	At     time.Time
}

// Current is the event that made the channel what it is now, if the
// pointer records it.
func (p Pointer) Current() (Event, bool) {
	if len(p.Events) > 0 && p.Events[0].Deploy == p.Deploy && p.Events[0].Commit == p.Commit {
		return p.Events[0], true
	}
	return Event{}, false
}
