// Package store is the object-storage interface deploys live in, with the
// errors every backend reports. Backends: fsstore (a local folder) and, later,
// an S3 backend; storetest holds the conformance suite they all pass.
package store

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"
)

// Sentinel errors. Backends wrap them; callers match with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrPrecondition: a conditional Put lost (If-Match did not match, or
	// If-None-Match found the key already there).
	ErrPrecondition = errors.New("store: precondition failed")
)

// PreconditionError is the typed error of a conditional Put that lost. It
// matches ErrPrecondition with errors.Is.
type PreconditionError struct {
	Key string
	// Want is the ETag the caller required, or "" for create-only.
	Want string
}

func (e *PreconditionError) Error() string {
	if e.Want == "" {
		return "store: precondition failed: " + e.Key + " already exists"
	}
	return "store: precondition failed: " + e.Key + " changed (want etag " + e.Want + ")"
}

// Is makes errors.Is(err, ErrPrecondition) true.
func (e *PreconditionError) Is(target error) bool { return target == ErrPrecondition }

// Info describes a stored object.
type Info struct {
	Key  string
	Size int64
	// ETag is opaque and changes whenever the content changes. A rewrite
	// with identical bytes may keep it (S3's ETag is the content's MD5);
	// If-Match stays safe, as the caller then saw the current content.
	ETag    string
	ModTime time.Time
}

// PutOptions make a Put conditional. At most one of IfMatch and IfNoneMatch
// may be set.
type PutOptions struct {
	// IfMatch: write only if the object's current ETag equals this.
	IfMatch string
	// IfNoneMatch: write only if the key does not exist yet (create-only).
	IfNoneMatch bool
	// ContentType is stored where the backend keeps metadata.
	ContentType string
}

// Object is an open object body. Seek gives ranged reads, so it can be
// handed straight to http.ServeContent.
type Object interface {
	io.ReadSeekCloser
}

// Store is the storage of deploys, blobs, pointers and logs.
//
// Keys are slash-separated relative paths ("blobs/ab/ab12…"); backends must
// reject keys that are absolute, empty, or contain "." or ".." elements.
// Every method honours ctx cancellation. Implementations are safe for
// concurrent use. Writes are atomic: a reader sees the whole old object or
// the whole new one, never a partial write.
type Store interface {
	// Put writes the object, reading exactly size bytes from r (size < 0:
	// until EOF). A lost condition returns a *PreconditionError.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Info, error)
	// Get opens the object; ErrNotFound if absent.
	Get(ctx context.Context, key string) (Object, Info, error)
	// Stat describes the object; ErrNotFound if absent.
	Stat(ctx context.Context, key string) (Info, error)
	// List yields every object whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string) iter.Seq2[Info, error]
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// ValidKey reports whether key is an acceptable object key.
func ValidKey(key string) bool {
	if key == "" || key[0] == '/' || key[len(key)-1] == '/' {
		return false
	}
	start := 0
	for i := 0; i <= len(key); i++ {
		if i == len(key) || key[i] == '/' {
			el := key[start:i]
			if el == "" || el == "." || el == ".." {
				return false
			}
			start = i + 1
		} else if key[i] == '\\' || key[i] == 0 {
			return false
		}
	}
	return true
}
