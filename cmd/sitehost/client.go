package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/site"
)

// console is what client commands take from the process besides their
// arguments and environment: the clock, whether a writer is a terminal
// (progress is drawn only there), the first wait before reconnecting a
// log stream and the timer that waits. Tests fix them.
type console struct {
	now        func() time.Time
	isTerminal func(w io.Writer) bool
	backoff    time.Duration
	after      func(time.Duration) <-chan time.Time
}

func systemConsole() console {
	return console{now: time.Now, isTerminal: isTerminal, backoff: 250 * time.Millisecond, after: time.After}
}

// isTerminal reports whether w is a terminal (not merely a character
// device: /dev/null is one too, and wants JSON logs like a file).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// client talks to the admin API of a running server.
type client struct {
	endpoint, token string
	http            *http.Client
}

// requestTimeout bounds every call except the log stream and a waited sync.
const requestTimeout = 30 * time.Second

// newClient finds the admin API as adminClient does.
func newClient(path string, getenv func(string) string) (*client, error) {
	endpoint, token, err := adminClient(path, getenv)
	if err != nil {
		return nil, err
	}
	return &client{endpoint: endpoint, token: token, http: &http.Client{}}, nil
}

// adminClient finds the admin API and its token: SITEHOST_ADMIN and
// SITEHOST_API_TOKEN when set, else the config's server.admin and
// api_token_env.
func adminClient(path string, getenv func(string) string) (endpoint, token string, err error) {
	addr, token := getenv("SITEHOST_ADMIN"), getenv("SITEHOST_API_TOKEN")
	if addr == "" || token == "" {
		if path == "" {
			path = "sites.yaml"
		}
		cfg, err := config.Load(path)
		if err != nil {
			if addr == "" {
				return "", "", fmt.Errorf("finding the admin API: set SITEHOST_ADMIN, or give the config with -c: %w", err)
			}
		} else {
			if addr == "" {
				addr = cfg.Server.Admin
			}
			if token == "" {
				token = getenv(cfg.Server.APITokenEnv)
			}
		}
	}
	if !strings.Contains(addr, "://") {
		if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/"), token, nil
}

// sitePath is the API path of a site, with more path elements appended.
func sitePath(name string, elem ...string) string {
	p := api.Prefix + "/sites/" + url.PathEscape(name)
	for _, e := range elem {
		p += "/" + url.PathEscape(e)
	}
	return p
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Message string // api.Error's message; may be empty
	URL     string
}

func (e *apiError) Error() string {
	switch {
	case e.Status == http.StatusUnauthorized:
		return "the admin API refused the token: set SITEHOST_API_TOKEN (or the config's api_token_env) to the server's token"
	case e.Status == http.StatusNotFound && e.Message != "":
		return e.Message
	case e.Message == "":
		return fmt.Sprintf("%s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	case e.Status >= 500:
		return fmt.Sprintf("sitehost answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("%s: %d %s: %s", e.URL, e.Status, http.StatusText(e.Status), e.Message)
}

// get GETs an API path and returns the body; v, when not nil, receives it
// decoded.
func (c *client) get(ctx context.Context, path string, v any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return c.call(ctx, http.MethodGet, path, v)
}

// post POSTs to an API path with no body, within ctx's deadline.
func (c *client) post(ctx context.Context, path string, v any) (json.RawMessage, error) {
	return c.call(ctx, http.MethodPost, path, v)
}

func (c *client) call(ctx context.Context, method, path string, v any) (json.RawMessage, error) {
	resp, err := c.do(ctx, method, path, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", resp.Request.URL, err)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return nil, fmt.Errorf("reading %s: %w", resp.Request.URL, err)
		}
	}
	return body, nil
}

// do sends a request and answers a 2xx response, or an error a person
// can act on: the server is not there, the token is refused, or the
// API's error message.
func (c *client) do(ctx context.Context, method, path string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if _, ok := errors.AsType[*net.OpError](err); ok {
			return nil, fmt.Errorf("sitehost is not reachable at %s (is it running? SITEHOST_ADMIN / server.admin): %w", req.URL.Host, err)
		}
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e api.Error
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	json.Unmarshal(body, &e) //nolint:errcheck // the status says enough without it
	return nil, &apiError{Status: resp.StatusCode, Message: e.Error, URL: req.URL.String()}
}

// errNotStream is an answer that is not an event stream.
var errNotStream = errors.New("not an event stream")

// stream opens an SSE stream at path, resuming after lastID when set.
// The caller closes the body.
func (c *client) stream(ctx context.Context, path, lastID string) (io.ReadCloser, error) {
	h := http.Header{"Accept": {api.MediaSSE}}
	if lastID != "" {
		h.Set("Last-Event-ID", lastID)
	}
	resp, err := c.do(ctx, http.MethodGet, path, h)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, api.MediaSSE) {
		resp.Body.Close()
		return nil, fmt.Errorf("%s answered %q, %w: is the server older than this sitehost?", resp.Request.URL, ct, errNotStream)
	}
	return resp.Body, nil
}

// printJSON writes an API answer as received, ending in one newline.
func printJSON(w io.Writer, raw json.RawMessage) error {
	_, err := fmt.Fprintf(w, "%s\n", strings.TrimRight(string(raw), "\n"))
	return err
}

// parseArgs parses flags wherever they stand among the arguments, so
// `sitehost logs blog -f` works as well as `sitehost logs -f blog`, and
// returns the positional arguments. Everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// usageError prints the command's usage and makes run exit 1.
func usageError(fs *flag.FlagSet, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
	fs.Usage()
	return exitError{err}
}

// clientFlags are the flags of every client command; synopsis is the
// command's usage line.
func clientFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := newFlags(name, stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sitehost %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	path := fs.String("c", "", "config file, for the admin address and token (default: SITEHOST_ADMIN and SITEHOST_API_TOKEN, else sites.yaml)")
	return fs, path
}

// short is a commit as git abbreviates it, or "-".
func short(c site.Commit) string {
	if c == "" {
		return "-"
	}
	return c.Short()
}

// oneLine makes s fit one table cell of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// ago says how long before now t was: "40s ago", "5m ago", "2h ago",
// "3d ago"; "-" for no time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// took humanises a duration: "850ms", "1.2s", "2m05s", "1h03m"; "-" for
// zero.
func took(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}
