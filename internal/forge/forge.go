package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sitehost/sitehost/internal/site"
)

// State is the outcome reported for a commit, in sitehost's vocabulary.
// Each forge maps it onto its own states.
type State string

// The states sitehost reports.
const (
	Pending State = "pending" // a build of the commit has started
	Success State = "success" // the commit is built and published
	Failure State = "failure" // the build or publish failed
)

func (s State) valid() bool { return s == Pending || s == Success || s == Failure }

// StateOf is the commit status a deploy outcome is reported as; ok is
// false for outcomes a commit status does not tell (a channel removed, a
// build a newer commit replaced).
func StateOf(o site.Outcome) (s State, ok bool) {
	switch o {
	case site.OutcomeBuilding:
		return Pending, true
	case site.OutcomeLive:
		return Success, true
	case site.OutcomeFailed:
		return Failure, true
	}
	return "", false
}

// Status is one commit status report.
type Status struct {
	Commit      site.Commit
	State       State
	TargetURL   string // the preview or production URL the forge links to
	Description string // truncated to the forge's limit
	Context     string // e.g. "sitehost/production", "sitehost/pr-7"; "sitehost" if empty
}

// Config selects a forge and a repository on it.
type Config struct {
	Kind  string // github, gitlab, gitea, forgejo or bitbucket
	API   string // base API URL; empty = the forge's default for the repo's host
	Token string // API token; sent only in request headers
	// Repo is the site's repository URL: https, ssh:// or scp-like
	// (git@host:owner/repo.git). The owner and repository (GitLab: the
	// full group path; Bitbucket: workspace and slug) are parsed from it.
	Repo string
}

// Client sets commit statuses on one repository of one forge.
type Client interface {
	SetStatus(ctx context.Context, s Status) error
}

// Errors returned by New.
var (
	ErrUnknownKind = errors.New("forge: unknown kind")
	ErrBadRepo     = errors.New("forge: repo URL has no owner/repo")
	ErrNoToken     = errors.New("forge: empty token")
	ErrBadAPI      = errors.New("forge: bad API URL")
)

const defaultContext = "sitehost"

// New returns a Client for cfg. A nil httpClient means http.DefaultClient.
// Redirects are followed only within the same host, so the token is never
// sent elsewhere.
func New(cfg Config, httpClient *http.Client) (Client, error) {
	kind := strings.ToLower(strings.TrimSpace(cfg.Kind))
	sp, ok := specFor(kind)
	if !ok {
		return nil, fmt.Errorf("%w %q: want github, gitlab, gitea, forgejo or bitbucket", ErrUnknownKind, cfg.Kind)
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, ErrNoToken
	}
	t, api, err := sp.resolve(cfg)
	if err != nil {
		return nil, err
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	hc := *httpClient
	hc.CheckRedirect = sameHostRedirects
	return &client{kind: kind, api: api, t: t, token: cfg.Token, hc: &hc, spec: sp}, nil
}

// Check reports whether cfg can make a client, whatever its token: the
// kind is known, the repository URL names a project on that forge and the
// API URL resolves. It is what New checks, so a config that passes it can
// be applied.
func Check(cfg Config) error {
	sp, ok := specFor(strings.ToLower(strings.TrimSpace(cfg.Kind)))
	if !ok {
		return fmt.Errorf("%w %q: want github, gitlab, gitea, forgejo or bitbucket", ErrUnknownKind, cfg.Kind)
	}
	_, _, err := sp.resolve(cfg)
	return err
}

// resolve finds the project cfg.Repo names and the API to reach it at.
func (sp spec) resolve(cfg Config) (target, string, error) {
	ref, err := parseRepo(cfg.Repo)
	if err != nil {
		return target{}, "", err
	}
	t, err := sp.target(ref)
	if err != nil {
		return target{}, "", err
	}
	api, err := resolveAPI(cfg.API, func() (string, error) { return sp.defaultAPI(ref, t) })
	if err != nil {
		return target{}, "", err
	}
	return t, api, nil
}

// sameHostRedirects stops at redirects to another host: net/http drops
// Authorization there but would forward GitLab's PRIVATE-TOKEN header.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 || req.URL.Host != via[0].URL.Host {
		return http.ErrUseLastResponse
	}
	return nil
}

// client implements Client for every kind; spec holds what differs.
type client struct {
	kind  string
	api   string // base URL without a trailing slash
	t     target
	token string
	hc    *http.Client
	spec  spec
}

// String describes the client without its token.
func (c *client) String() string { return c.kind + " " + c.t.name }

// GoString keeps %#v from printing the token.
func (c *client) GoString() string { return "forge.client{" + c.String() + "}" }

// LogValue keeps the token out of structured logs.
func (c *client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("forge", c.kind), slog.String("repo", c.t.name))
}

func (c *client) forgeName() string { return c.kind }
func (c *client) repoName() string  { return c.t.name }

// SetStatus sends s to the forge. Errors for non-2xx answers carry the HTTP
// status and up to 512 bytes of the response body.
func (c *client) SetStatus(ctx context.Context, s Status) error {
	if err := c.setStatus(ctx, s); err != nil {
		return fmt.Errorf("setting %s status on %s@%s: %w", c.kind, c.t.name, s.Commit.Short(), err)
	}
	return nil
}

func (c *client) setStatus(ctx context.Context, s Status) error {
	if s.Commit == "" {
		return errors.New("empty commit")
	}
	if !s.State.valid() {
		return fmt.Errorf("unknown state %q", s.State)
	}
	if s.Context == "" {
		s.Context = defaultContext
	}
	s.Description = truncate(s.Description, c.spec.descLimit)
	path, body := c.spec.request(c.t, s)
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+path, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("creating request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sitehost")
	c.spec.auth(req.Header, c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	return newAPIError(resp, c.token)
}

// truncate shortens s to at most n runes, ending in "…" when cut.
func truncate(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
