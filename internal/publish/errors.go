// Package publish turns a built directory into an immutable deploy in the
// object store and makes it live (DESIGN §6): content-addressed blobs first,
// then the manifest, then the channel pointer, whose conditional write is the
// commit point. What it writes, and reading it back, is package manifest.
package publish

import (
	"errors"
	"path"
	"strings"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/manifest"
)

// Sentinel errors.
var (
	// ErrNotFound: no such deploy, channel or build key (manifest.ErrNotFound).
	ErrNotFound = manifest.ErrNotFound
	// ErrTooLarge: the output exceeds the configured limits; the site's
	// to fix, so stalled.
	ErrTooLarge = fault.Stalled(errors.New("publish: deploy too large"))
	// ErrFileTooLarge: one file is over Deploy.MaxFile; stalled too.
	ErrFileTooLarge = fault.Stalled(errors.New("publish: file too large"))
	// ErrSlowUpload: an upload ran past the time its existence checks are
	// trusted; retrying it is safe.
	ErrSlowUpload = errors.New("publish: upload too slow")
	// ErrFenced: this builder does not hold the site's lease, or a pointer
	// carries a newer lease generation; another builder owns the site, so
	// nothing is retried here.
	ErrFenced = fault.Superseded(errors.New("publish: site lease lost"))
)

// fastVariants reports whether any of f's variants was made fast.
func fastVariants(f manifest.File) bool {
	return (f.Gzip != nil && f.Gzip.Fast) || (f.Brotli != nil && f.Brotli.Fast)
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
