package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/sitehost/sitehost/internal/store"
)

// object is the store.Object of Get. It reads the body of Get's response
// while reads are sequential from where it stands; after a Seek elsewhere
// the next Read opens a ranged GET there. Ranged GETs carry If-Match with
// the object's ETag, so a body never mixes bytes of two versions: if the
// object was replaced since Get, reads fail instead.
//
// Seek itself does no I/O, so http.ServeContent's size probe
// (Seek(0, io.SeekEnd), then back to 0) costs nothing. Reads use Get's ctx.
// Not safe for concurrent use.
type object struct {
	s    *Store
	ctx  context.Context
	info store.Info

	body    io.ReadCloser // nil when none is open
	bodyOff int64         // offset of body's next byte
	off     int64         // offset of the next Read
	closed  bool
}

func (o *object) Read(p []byte) (int, error) {
	if o.closed {
		return 0, fmt.Errorf("reading %s: %w", o.info.Key, fs.ErrClosed)
	}
	if o.off >= o.info.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if o.body == nil || o.bodyOff != o.off {
		if err := o.reopen(); err != nil {
			return 0, err
		}
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	o.bodyOff += int64(n)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		if o.off < o.info.Size {
			o.closeBody()
			return n, fmt.Errorf("reading %s: body ended at %d of %d bytes: %w", o.info.Key, o.off, o.info.Size, io.ErrUnexpectedEOF)
		}
		return n, io.EOF
	default:
		// The next Read reopens at o.off, so a caller may retry.
		o.closeBody()
		return n, o.s.wrap(o.ctx, "reading", o.info.Key, err)
	}
}

// reopen replaces the body with a ranged GET from o.off.
func (o *object) reopen() error {
	o.closeBody()
	var opts minio.GetObjectOptions
	if o.off > 0 {
		if err := opts.SetRange(o.off, 0); err != nil {
			return fmt.Errorf("reading %s: %w", o.info.Key, err)
		}
	}
	if o.info.ETag != "" {
		if err := opts.SetMatchETag(o.info.ETag); err != nil {
			return fmt.Errorf("reading %s: %w", o.info.Key, err)
		}
	}
	body, _, _, err := o.s.core.GetObject(o.ctx, o.s.bucket, o.info.Key, opts)
	if err != nil {
		var er minio.ErrorResponse
		if o.ctx.Err() == nil && errors.As(err, &er) && er.StatusCode == http.StatusPreconditionFailed {
			return fmt.Errorf("reading %s: the object changed since it was opened (etag %s): %w", o.info.Key, o.info.ETag, err)
		}
		return o.s.wrap(o.ctx, "reading", o.info.Key, err)
	}
	o.body, o.bodyOff = body, o.off
	return nil
}

// Seek sets the offset of the next Read, like os.File: seeking before the
// start is an error, past the end is not (Read then reports io.EOF).
func (o *object) Seek(offset int64, whence int) (int64, error) {
	if o.closed {
		return 0, fmt.Errorf("seeking %s: %w", o.info.Key, fs.ErrClosed)
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.info.Size + offset
	default:
		return 0, fmt.Errorf("seeking %s: invalid whence %d", o.info.Key, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seeking %s: negative offset %d", o.info.Key, abs)
	}
	o.off = abs
	return abs, nil
}

// Close ends the response body. Closing twice is not an error.
func (o *object) Close() error {
	o.closed = true
	o.closeBody()
	return nil
}

func (o *object) closeBody() {
	if o.body != nil {
		_ = o.body.Close()
		o.body = nil
	}
}
