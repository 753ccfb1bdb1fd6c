// Package diskuse bounds what a child process writes: it measures folders
// and stops the writer once they pass a limit. A limit, not a quota: it
// looks twice a second, so a writer overshoots by what it writes in that
// time. The kernel's per-file limit (RLIMIT_FSIZE) bounds each file; this
// bounds the sum, which no portable kernel mechanism does for an ordinary
// folder.
package diskuse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/sitehost/sitehost/internal/units"
)

// Interval is how often Watch measures.
const Interval = 500 * time.Millisecond

// OverError is a folder set past its limit.
type OverError struct {
	MaxBytes int64
	MaxFiles int
}

func (e *OverError) Error() string {
	return fmt.Sprintf("wrote more than %s or %d files", units.Bytes(e.MaxBytes), e.MaxFiles)
}

// Check returns an *OverError when the regular files under dirs sum to
// more than maxBytes, or there are more than maxFiles entries. Missing
// dirs, and entries removed while it looks, count as nothing.
func Check(maxBytes int64, maxFiles int, dirs ...string) error {
	var size int64
	var files int
	errStop := errors.New("over")
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			files++
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				size += fi.Size()
			}
			if size > maxBytes || files > maxFiles {
				return errStop
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return &OverError{MaxBytes: maxBytes, MaxFiles: maxFiles}
		}
	}
	return nil
}

// Watch checks dirs every Interval until ctx ends, and calls stop once
// with the *OverError when they pass the limit.
func Watch(ctx context.Context, maxBytes int64, maxFiles int, stop func(error), dirs ...string) {
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := Check(maxBytes, maxFiles, dirs...); err != nil {
			stop(err)
			return
		}
	}
}
