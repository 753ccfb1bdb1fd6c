// Package manifest is the stored format of deploys (DESIGN §6): the shapes
// the publisher writes to the object store — manifests, channel pointers
// and the publish events a pointer carries — where each lives, and reading
// them back. It writes nothing, so the data plane reads deploys through it
// without linking the publisher's write code.
package manifest

import (
	"errors"
	"time"

	"github.com/sitehost/sitehost/internal/rules"
	"github.com/sitehost/sitehost/internal/site"
)

// Sentinel errors.
var (
	// ErrNotFound: no such deploy, channel, log, blob or build key.
	ErrNotFound = errors.New("manifest: not found")
	// ErrCorrupt: a stored manifest or pointer cannot be decoded.
	ErrCorrupt = errors.New("manifest: corrupt object")
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

// Blobs calls fn with every blob the file needs: its body and its variants.
func (f File) Blobs(fn func(sha string)) {
	fn(f.SHA256)
	if f.Gzip != nil {
		fn(f.Gzip.SHA256)
	}
	if f.Brotli != nil {
		fn(f.Brotli.SHA256)
	}
}

// Variant is a precompressed form of a file.
type Variant struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Fast: made at the fast level; a later deploy with budget to spare
	// makes it again at the best one.
	Fast bool `json:"fast,omitempty"`
}

// CommitInfo is what a person wants to see about a commit.
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
	Sandbox    string        `json:"sandbox,omitempty"` // the build sandbox's mechanisms in force (build.Result.Sandbox)
	SkippedGit []string      `json:"skipped,omitempty"` // symlinks, .git entries and submodules without a .gitmodules entry (or with update = none) left out of the tree
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

// DeployIDFor derives the deploy ID from a build key: one key, one deploy.
func DeployIDFor(buildKey string) site.DeployID {
	return site.DeployID(buildKey[:site.DeployIDLen])
}

// ValidSHA256 reports whether s is a blob name: 64 lowercase hex characters.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
