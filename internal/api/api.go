// Package api holds the admin API's wire types (DESIGN §10): what the
// server sends, and what the CLI and the dashboard read. It has no logic,
// so every side of the API compiles against one definition.
package api

import (
	"errors"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/site"
)

// Paths of the API, relative to the admin listener.
const (
	Prefix = "/api/v1"
)

// ErrNotFound is what a data source wraps when the site, deploy or log
// asked for does not exist (a 404, not a 503).
var ErrNotFound = errors.New("not found")

// Error is every error answer: {"error": "what went wrong and what to do"}.
type Error struct {
	Error string `json:"error"`
}

// SiteList is GET /api/v1/sites.
type SiteList struct {
	Sites []Site `json:"sites"`
	// Config says which config the sites come from (nil: not reported).
	Config *Config `json:"config,omitempty"`
}

// Config is GET /api/v1/config: which version of the config is live, and
// why the last one offered since was refused. A reload applies completely
// or not at all, so the live version is the whole truth.
type Config struct {
	Source    string    `json:"source"`         // "file" or "git" (serve --config-repo)
	Path      string    `json:"path"`           // the file, or its path in the repository
	Repo      string    `json:"repo,omitempty"` // the config repository, credentials masked
	Version   string    `json:"version"`        // "sha256:<12 hex>" of the file, or the commit
	AppliedAt time.Time `json:"applied_at"`
	Sites     int       `json:"sites"`
	// Refused is the last version refused since Version was applied: the
	// running config stayed. Nil when none was.
	Refused *ConfigRefusal `json:"last_refused,omitempty"`
}

// ConfigRefusal is a config version that was not applied.
type ConfigRefusal struct {
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	// Step is where it failed: validate (the file's own problems), compile
	// (settings that cannot be used here), workers, notifications or
	// certificates.
	Step     string   `json:"step"`
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

// Site is one site (GET /api/v1/sites/{site}, POST …/sync?wait=true): its
// configuration, and its production channel's sync state mirrored at the
// top level, as `sitehost status` shows it.
type Site struct {
	Name    site.Name `json:"name"`
	Repo    string    `json:"repo"` // credentials in the URL are masked
	Ref     string    `json:"ref"`
	Domains []string  `json:"domains"`
	URL     string    `json:"url"` // production URL

	State      site.State    `json:"state"`
	Desired    site.Commit   `json:"desired_commit,omitempty"`
	LiveCommit site.Commit   `json:"live_commit,omitempty"`
	LiveDeploy site.DeployID `json:"live_deploy,omitempty"`
	Error      string        `json:"error,omitempty"`
	FailedAt   site.Commit   `json:"failed_commit,omitempty"`
	LastSync   time.Time     `json:"last_sync,omitzero"`
	// Builds, Reused and Repairs count, since the server started, the
	// deploys built, published by reusing an earlier build (a revert), and
	// rebuilt by self-heal.
	Builds  int `json:"builds"`
	Reused  int `json:"reused"`
	Repairs int `json:"repairs"`

	// Channels: production first, then branch deploys and previews by name.
	Channels []Channel `json:"channels"`
	// Certificates of the site's domains, when sitehost serves HTTPS.
	Certificates []any `json:"certificates,omitempty"`
}

// Channel is one channel of a site: production, pr-<N> or branch-<slug>.
type Channel struct {
	Name       site.Channel  `json:"name"`
	State      site.State    `json:"state"`
	URL        string        `json:"url,omitempty"`
	Desired    site.Commit   `json:"desired_commit,omitempty"`
	LiveCommit site.Commit   `json:"live_commit,omitempty"`
	LiveDeploy site.DeployID `json:"live_deploy,omitempty"`
	Error      string        `json:"error,omitempty"`
	FailedAt   site.Commit   `json:"failed_commit,omitempty"`
	LastSync   time.Time     `json:"last_sync,omitzero"`
	// Live describes the commit the channel is live at: the pointer's
	// (LiveCommit), which after a revert is the revert, not the commit the
	// deploy was built from. Nil when nothing is live or the store could
	// not be read.
	Live *Commit `json:"live,omitempty"`
	// Hugo is the Hugo version that built the live deploy (empty for
	// build.tool none, or when the store could not be read).
	Hugo string `json:"hugo,omitempty"`
	// Sandbox is what contained the live deploy's build (the mechanisms
	// in force), empty for build.tool none.
	Sandbox string `json:"sandbox,omitempty"`
}

// Commit is what a person recognises a commit by.
type Commit struct {
	SHA     site.Commit `json:"sha"`
	Subject string      `json:"subject,omitempty"`
	Author  string      `json:"author,omitempty"`
	Time    time.Time   `json:"time,omitzero"`
}

// DeployList is GET /api/v1/sites/{site}/deploys[?channel=C&limit=N]:
// newest first. Entries come from the store — every publish event a
// channel's pointer records (a deploy made live again by a revert is an
// entry of its own), and every deploy a pointer written before events
// remembers — and from this server's recent attempts that did not go live
// (builds under way, failures), one per deploy ID.
type DeployList struct {
	Deploys []Deploy `json:"deploys"`
}

// Deploy is one deploy, or one attempt at one.
type Deploy struct {
	// ID is the deploy's ID: a permalink host and the key of its log. A
	// failed attempt carries the ID its deploy would have had.
	ID      site.DeployID `json:"id"`
	Site    site.Name     `json:"site"`
	Channel site.Channel  `json:"channel"` // the channel it was built for
	// State is site.OutcomeBuilding, OutcomeLive (on at least one
	// channel: LiveOn), OutcomeReady, OutcomeFailed (Error says why) or
	// OutcomeSuperseded.
	State site.Outcome `json:"state"`
	// LiveOn lists the channels serving it now.
	LiveOn []site.Channel `json:"live_on,omitempty"`
	Commit Commit         `json:"commit"`
	// Created is when its build started (or the manifest was written);
	// PublishedAt when it last went live, or for an event when it happened.
	Created     time.Time `json:"created,omitzero"`
	PublishedAt time.Time `json:"published_at,omitzero"`
	// Reused: published without a build, from an earlier identical one.
	Reused bool `json:"reused,omitempty"`
	// Event is what happened to Channel, for an entry of a channel's
	// story: "built" (a new deploy went live), "reused" (a deploy built
	// before went live again, as a revert does), "rolled_back" or
	// "repaired" (self-heal wrote the live deploy again). Commit is then
	// the commit that caused it, which for a revert is the revert, and
	// Previous the deploy the channel served before. Empty for attempts
	// that did not go live and for deploys published before events were
	// recorded.
	Event    string        `json:"event,omitempty"`
	Previous site.DeployID `json:"previous,omitempty"`
	Timings  Timings       `json:"timings"`
	// Steps are the steps of this server's attempt, in order, as its
	// build log names them (fetch, sources, key, build, upload, rules,
	// publish, report); a failed attempt's last step is the one that
	// failed. Empty for a deploy known only from the store.
	Steps []Step `json:"steps,omitempty"`
	Error string `json:"error,omitempty"`
	// ErrorKind says what a failure asks for: "stalled" waits for a new
	// commit (the site's to fix), "transient" is retried.
	ErrorKind fault.Kind `json:"error_kind,omitempty"`
	// URL is the permalink (<id>--<site>.<preview_domain>); empty until
	// the deploy exists.
	URL string `json:"url,omitempty"`
	// LogURL is the API path of the build log.
	LogURL string `json:"log_url"`
}

// Timings are the phases of a deploy in milliseconds; zero when not run
// or not known (a deploy from before this server started has only Build
// and Upload).
type Timings struct {
	Queue   int64 `json:"queue_ms"`   // waiting for a build slot
	Fetch   int64 `json:"fetch_ms"`   // git fetch
	Build   int64 `json:"build_ms"`   // Hugo
	Upload  int64 `json:"upload_ms"`  // hashing, compressing, writing blobs and manifest
	Publish int64 `json:"publish_ms"` // the pointer flip
	Total   int64 `json:"total_ms"`
}

// Step is one step of a deploy attempt.
type Step struct {
	Name string `json:"name"`
	Took int64  `json:"took_ms"`
}

// DeployDetail is GET /api/v1/sites/{site}/deploys/{id}.
type DeployDetail struct {
	Deploy
	Tree     string `json:"tree,omitempty"`
	BuildKey string `json:"build_key,omitempty"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"bytes"`
	Build    Build  `json:"build"`
	Rules    Rules  `json:"rules"`
}

// Build is how a deploy was built.
type Build struct {
	Tool    string `json:"tool,omitempty"`
	Hugo    string `json:"hugo,omitempty"`
	BaseURL string `json:"base_url,omitempty"`
	MaxRSS  int64  `json:"max_rss_bytes,omitempty"`
	Sandbox string `json:"sandbox,omitempty"` // the mechanisms the build ran under
	// Skipped lists what the export left out: symlinks, .git entries and
	// submodules without a .gitmodules entry or with update = none.
	Skipped []string `json:"skipped,omitempty"`
}

// Rules counts a deploy's _redirects/_headers/netlify.toml rules and lists
// every problem found in them.
type Rules struct {
	Redirects int         `json:"redirects"`
	Headers   int         `json:"headers"`
	Errors    []RuleError `json:"errors"`
}

// RuleError is one problem in a rules file.
type RuleError struct {
	Source  string `json:"source"` // "_redirects", "_headers", "netlify.toml"
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// Build logs: GET /api/v1/sites/{site}/deploys/{id}/log answers the log
// so far as text/plain, with the deploy's state in the LogState header.
// With "Accept: text/event-stream" it streams Server-Sent Events until
// the attempt ends:
//
//	id: <byte offset after this chunk>
//	event: log
//	data: {"text": "<chunk of the log, whole lines>"}
//
//	event: end
//	data: {"state": "live", "error": ""}
//
// A reconnect with Last-Event-ID resumes after that offset; ": ping"
// comments keep idle connections open.
const (
	LogState  = "X-Sitehost-Deploy-State"
	EventLog  = "log"
	EventEnd  = "end"
	MediaSSE  = "text/event-stream"
	MediaJSON = "application/json"
)

// LogChunk is the data of a "log" event.
type LogChunk struct {
	Text string `json:"text"`
}

// LogEnd is the data of the "end" event.
type LogEnd struct {
	State site.Outcome `json:"state"`
	Error string       `json:"error,omitempty"`
}

// SyncAccepted is POST /api/v1/sites/{site}/sync without wait (202).
type SyncAccepted struct {
	Message string `json:"message"`
}
