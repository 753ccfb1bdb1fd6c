// Package publish turns a built directory into an immutable deploy in the
// object store and makes it live (DESIGN §6): content-addressed blobs first,
// then the manifest, then the channel pointer, whose conditional write is the
// commit point. It is also the read side the data plane serves from.
package publish

import (
	"errors"
	"path"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/rules"
	"github.com/sitehost/sitehost/internal/site"
)

// Sentinel errors.
var (
	// ErrNotFound: no such deploy, channel or build key.
	ErrNotFound = errors.New("publish: not found")
	// ErrTooLarge: the output exceeds the configured limits; the site's
	// to fix, so stalled.
	ErrTooLarge = fault.Stalled(errors.New("publish: deploy too large"))
	// ErrSlowUpload: an upload ran past the time its existence checks are
	// trusted; retrying it is safe.
	ErrSlowUpload = errors.New("publish: upload too slow")
	// ErrCorrupt: a stored manifest or pointer cannot be decoded.
	ErrCorrupt = errors.New("publish: corrupt object")
)

// File is one published file.
type File struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Type   string `json:"type"`
	// Gzip and Brotli are the file's precompressed forms, made at publish
	// time when they are worth it; each is a blob of its own.
	Gzip   *Variant `json:"gzip,omitempty"`
	Brotli *Variant `json:"br,omitempty"`
}

// Variant is a precompressed form of a file.
type Variant struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Fast: made at the fast level; a later deploy with budget to spare
	// makes it again at the best one.
	Fast bool `json:"fast,omitempty"`
}

// fastVariants reports whether any of f's variants was made fast.
func (f File) fastVariants() bool {
	return (f.Gzip != nil && f.Gzip.Fast) || (f.Brotli != nil && f.Brotli.Fast)
}

// blobs calls fn with every blob the file needs: its body and its variants.
func (f File) blobs(fn func(sha string)) {
	fn(f.SHA256)
	if f.Gzip != nil {
		fn(f.Gzip.SHA256)
	}
	if f.Brotli != nil {
		fn(f.Brotli.SHA256)
	}
}

// CommitInfo is what a person wants to see about the commit of a deploy.
type CommitInfo struct {
	Subject string    `json:"subject,omitempty"`
	Author  string    `json:"author,omitempty"`
	Time    time.Time `json:"time,omitzero"`
}

// BuildSummary records how a deploy was built.
type BuildSummary struct {
	Tool     string        `json:"tool"`
	Hugo     string        `json:"hugo,omitempty"`
	BaseURL  string        `json:"base_url,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// Queue, Fetch and Upload are the other phases of the deploy: waiting
	// for a build slot, git fetch, and the upload up to the manifest.
	Queue      time.Duration `json:"queue_ns,omitempty"`
	Fetch      time.Duration `json:"fetch_ns,omitempty"`
	Upload     time.Duration `json:"upload_ns,omitempty"`
	MaxRSS     int64         `json:"max_rss_bytes,omitempty"`
	SkippedGit []string      `json:"skipped,omitempty"` // symlinks and submodules left out of the tree
}

// Manifest is an immutable deploy: every file by path, and where it came from.
type Manifest struct {
	ID       site.DeployID   `json:"id"`
	Site     site.Name       `json:"site"`
	Commit   site.Commit     `json:"commit"`
	Tree     string          `json:"tree"`
	BuildKey string          `json:"build_key"`
	Created  time.Time       `json:"created"`
	Info     CommitInfo      `json:"commit_info"`
	Build    BuildSummary    `json:"build"`
	Files    map[string]File `json:"files"` // "index.html", "posts/a/index.html"
	Bytes    int64           `json:"bytes"`
	// Rules are the deploy's _redirects, _headers and netlify.toml rules,
	// parsed when it was published, with every problem found in them.
	Rules rules.Set `json:"rules,omitzero"`
}

// Lookup finds the file for a clean request path ("posts/a/index.html").
func (m *Manifest) Lookup(p string) (File, bool) {
	f, ok := m.Files[p]
	return f, ok
}

// Pointer is a channel's live deploy. Its write is the commit point.
type Pointer struct {
	Deploy      site.DeployID `json:"deploy"`
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
}

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

// Storage keys (DESIGN §6).

// BlobKey is where a file body lives, by its sha256.
func BlobKey(sha string) string { return "blobs/" + sha[:2] + "/" + sha }

func manifestKey(s site.Name, id site.DeployID) string {
	return path.Join("sites", string(s), "deploys", string(id)+".json")
}
func buildKeyKey(s site.Name, key string) string {
	return path.Join("sites", string(s), "builds", key)
}
func pointerKey(s site.Name, c site.Channel) string {
	return path.Join("sites", string(s), "channels", string(c)+".json")
}
func logKey(s site.Name, id site.DeployID) string {
	return path.Join("sites", string(s), "logs", string(id)+".log")
}

// DeployIDFor derives the deploy ID from a build key: one key, one deploy.
func DeployIDFor(buildKey string) site.DeployID {
	return site.DeployID(buildKey[:site.DeployIDLen])
}

// cleanRel reports whether a relative path from a build is publishable.
func cleanRel(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return false
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." || strings.EqualFold(el, ".git") {
			return false
		}
	}
	return true
}
