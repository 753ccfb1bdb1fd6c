// Package hooks receives webhooks and turns them into sync requests.
//
// Forge is the handler of POST /hooks/{github,gitlab,gitea,bitbucket} (and
// forgejo): it authenticates each delivery with the secret of every site
// that declares the repository (HMAC signatures or GitLab's token, see
// Verify), normalises the payload into a site.Event (Parse) and hands it
// to an EventDispatcher, answering 202 at once. RepoKey is how repository
// URLs are matched.
//
// Generic, in this file, is the generic hook: POST /hooks/generic
// {"site": "blog"} with the admin bearer token, for CI systems and scripts.
package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/site"
)

// MaxBody bounds every webhook body.
const MaxBody = 1 << 20

// ErrUnknownSite is what a Dispatcher returns for a site it does not know.
var ErrUnknownSite = errors.New("hooks: unknown site")

// Dispatcher takes sync requests; the reconcile loop is one.
type Dispatcher interface {
	Trigger(name site.Name) error
}

// Generic is the handler of POST /hooks/generic.
type Generic struct {
	// Guard checks the admin bearer token (shared with the admin API, so
	// wrong tokens count once per client); nil refuses every request.
	Guard    *bearer.Guard
	Dispatch Dispatcher
	Logger   *slog.Logger
}

type genericBody struct {
	Site site.Name `json:"site"`
}

func (g *Generic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	v := bearer.Wrong
	var retry time.Duration
	if g.Guard != nil {
		v, retry, _ = g.Guard.Header(r)
	}
	switch v {
	case bearer.Limited:
		bearer.SetRetryAfter(w.Header(), retry)
		writeJSON(w, http.StatusTooManyRequests, "too many wrong tokens from this address; try again after Retry-After seconds")
		return
	case bearer.Wrong:
		w.Header().Set("WWW-Authenticate", `Bearer realm="sitehost"`)
		writeJSON(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	body, ok := readBody(w, r, g.Logger)
	if !ok {
		return
	}
	var b genericBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeJSON(w, http.StatusBadRequest, `malformed JSON: want {"site": "<name>"}: `+err.Error())
		return
	}
	if b.Site == "" {
		writeJSON(w, http.StatusBadRequest, `missing "site"`)
		return
	}
	if err := g.Dispatch.Trigger(b.Site); err != nil {
		if g.Logger != nil {
			g.Logger.Warn("generic hook for unknown site", "site", b.Site, "err", err)
		}
		writeJSON(w, http.StatusNotFound, fmt.Sprintf("no site named %q is configured", b.Site))
		return
	}
	writeJSON(w, http.StatusAccepted, "sync of "+string(b.Site)+" requested")
}

// readBody reads a webhook body of at most MaxBody bytes, answering 413 or
// 400 itself when it cannot. The 400 says no more than that: the read
// error names socket addresses ("read tcp 127.0.0.1:9090->…: i/o
// timeout"), so it goes to the log only.
func readBody(w http.ResponseWriter, r *http.Request, log *slog.Logger) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeJSON(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", MaxBody))
		return nil, false
	}
	if err != nil {
		if log != nil {
			log.Info("webhook body not read", "remote", r.RemoteAddr, "err", err)
		}
		writeJSON(w, http.StatusBadRequest, ErrBodyUnread.Error())
		return nil, false
	}
	return body, true
}

// ErrBodyUnread is the whole answer to a body that could not be read (cut
// short, or too slow).
var ErrBodyUnread = errors.New("the request body could not be read (cut short or too slow)")

func writeJSON(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	key := "message"
	if status >= 400 {
		key = "error"
	}
	json.NewEncoder(w).Encode(map[string]string{key: msg}) //nolint:errcheck // client gone
}
