package hugorelease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/sitehost/sitehost/internal/download"
)

// CheckURL says whether base is a usable releases URL
// (server.build.hugo_releases): it has {version}, and it is https, file://
// (no host or localhost), or plain http to a loopback host. Plain http
// elsewhere is refused: the checksums file comes from the same server, so
// it proves the tarball arrived whole, not that Hugo published it, and the
// binary then runs as sitehost's user.
func CheckURL(base string) error {
	if !strings.Contains(base, "{version}") {
		return fmt.Errorf("%q has no {version} (e.g. %s)", base, DefaultReleases)
	}
	u, err := url.Parse(strings.ReplaceAll(base, "{version}", "0.0.0"))
	if err != nil {
		return fmt.Errorf("bad URL %q: %w", base, err)
	}
	if u.Scheme == "file" {
		if u.Path == "" {
			return fmt.Errorf("bad URL %q: a file URL needs an absolute path, such as file:///srv/hugo/v{version}/", base)
		}
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("bad URL %q: a file URL's host must be empty or localhost, not %q", base, u.Host)
		}
		return nil
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("bad URL %q: want an https, http or file URL", base)
	}
	if err := transportProblem(u); err != nil {
		return fmt.Errorf("%q: %w", base, err)
	}
	return nil
}

// transportProblem refuses what a release may not be fetched over: plain
// http to anything but this machine.
func transportProblem(u *url.URL) error {
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("plain http to %s: a checksums file from the same server proves integrity, not authenticity, and the fetched hugo runs as sitehost's user; use https (plain http only to a loopback host)", u.Hostname())
	default:
		return errors.New("want an https URL")
	}
}

// loopback: localhost, 127.0.0.0/8 or ::1.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// guardRedirects returns a copy of c that also refuses to follow a
// redirect to where transportProblem would not fetch from (https to http).
func guardRedirects(c *http.Client) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := transportProblem(req.URL); err != nil {
			return fmt.Errorf("redirected to %s: %w", req.URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 { // as http.Client does without CheckRedirect
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

var errNotFound = download.ErrNotFound

// get copies raw (an http(s) or file URL) into w, at most limit bytes;
// plain http only to loopback (CheckURL).
func (s *Store) get(ctx context.Context, raw string, w io.Writer, limit int64) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "file" {
		if err := transportProblem(u); err != nil {
			return fmt.Errorf("%s: %w", raw, err)
		}
	}
	return download.Get(ctx, s.opts.Client, raw, w, limit)
}
