// Package download copies what an http(s) or file URL holds into a
// writer, size-limited: module zips from a Go module proxy, Hugo release
// tarballs from a mirror. It says why a download failed in the ways its
// callers decide on (not found, refused, too large).
package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
)

var (
	// ErrNotFound is a 404 or 410, or a file URL naming nothing.
	ErrNotFound = errors.New("not found")
	// ErrForbidden is a 401 or 403.
	ErrForbidden = errors.New("forbidden")
	// ErrTooLarge is a body over the caller's limit.
	ErrTooLarge = errors.New("too large")
)

// Get copies what raw names into w, at most limit bytes. Errors name the
// URL and wrap ErrNotFound, ErrForbidden or ErrTooLarge where one applies.
// A file URL's host must be empty or localhost; its path is unescaped
// (file://localhost/srv/a%20b is /srv/a b).
func Get(ctx context.Context, client *http.Client, raw string, w io.Writer, limit int64) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	var body io.ReadCloser
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("%s: a file URL's host must be empty or localhost", raw)
		}
		f, err := os.Open(filepath.FromSlash(u.Path))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", raw, ErrNotFound)
		}
		if err != nil {
			return err
		}
		body = f
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			return err
		}
		if client == nil {
			client = http.DefaultClient
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound, http.StatusGone:
			resp.Body.Close()
			return fmt.Errorf("%s: %s: %w", raw, resp.Status, ErrNotFound)
		case http.StatusUnauthorized, http.StatusForbidden:
			resp.Body.Close()
			return fmt.Errorf("%s: %s: %w", raw, resp.Status, ErrForbidden)
		default:
			resp.Body.Close()
			return fmt.Errorf("%s: %s", raw, resp.Status)
		}
		body = resp.Body
	default:
		return fmt.Errorf("%s: want an https, http or file URL", raw)
	}
	defer body.Close()
	n, err := io.Copy(w, io.LimitReader(body, limit+1))
	if err != nil {
		return fmt.Errorf("%s: %w", raw, err)
	}
	if n > limit {
		return fmt.Errorf("%s: larger than %d bytes: %w", raw, limit, ErrTooLarge)
	}
	return nil
}
